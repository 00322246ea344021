package trailseal

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Problem kinds found by comparing a store with a witness (CheckWitness):
// what the store alone cannot show, because whoever rewrote it could also
// rewrite (and re-sign) its checkpoints.
const (
	// KindTenantDeleted: the witness holds checkpoints of a log the store
	// no longer has at all.
	KindTenantDeleted Kind = "tenant_deleted"
	// KindRolledBack: the store's log is smaller than a witnessed
	// checkpoint (a restored backup, a truncated log).
	KindRolledBack Kind = "rolled_back"
	// KindCheckpointsDeleted: the store has none of the log's witnessed
	// checkpoints (its checkpoint history was deleted).
	KindCheckpointsDeleted Kind = "checkpoints_deleted"
	// KindCheckpointMissing: some witnessed checkpoints are not in the
	// store's history, though its tree still has their roots.
	KindCheckpointMissing Kind = "checkpoint_missing"
	// KindHeadRolledBack: the store's newest deployment head is older than
	// the witness's, or missing.
	KindHeadRolledBack Kind = "head_rolled_back"
	// KindWitnessBad: an object on the witness is malformed or not signed
	// by a trusted key.
	KindWitnessBad Kind = "witness_bad"
	// KindForked (verify.go) is also reported: the store's tree or
	// checkpoint at a witnessed size has another root (a tail rewritten
	// with re-signed checkpoints).
)

// WitnessReport is what CheckWitness found.
type WitnessReport struct {
	Witness string `json:"witness"`
	// Logs and Checkpoints count the witnessed logs and checkpoints
	// compared with the store.
	Logs        int `json:"logs"`
	Checkpoints int `json:"checkpoints"`
	// Head is the time of the newest witnessed head (zero: none).
	Head time.Time `json:"head,omitzero"`
	// Unwitnessed counts the store's logs whose newest checkpoint is not on
	// the witness yet (signed after the witness last took one, or while it
	// was unreachable): not a problem, but not vouched for by the witness.
	Unwitnessed int       `json:"unwitnessed"`
	Problems    []Problem `json:"problems"`
}

// OK reports whether nothing was found wrong.
func (r *WitnessReport) OK() bool { return len(r.Problems) == 0 }

type witnessedState struct {
	size int64
	root tlog.Hash
	key  string // "" for a state known from a head entry only
}

// CheckWitness compares store with what witness holds: every witnessed
// checkpoint and the newest witnessed head (both checked with verifiers,
// for origin) must still be in the store — the log present, at least that
// large, with that root at that size, the checkpoint in its history — and
// the store's newest head must not be older than the witness's. logs
// limits the check to those logs (the head is then checked only for them).
// Tampering is reported in the report; an error means the check could not
// run.
func CheckWitness(ctx context.Context, store Store, witness WitnessReader, verifiers note.Verifiers, origin string, logs []string) (*WitnessReport, error) {
	if origin == "" {
		origin = DefaultOrigin
	}
	rep := &WitnessReport{Witness: witness.String()}
	want := func(log string) bool { return len(logs) == 0 || slices.Contains(logs, log) }
	bad := func(log string, kind Kind, size int64, format string, args ...any) {
		tenant := TenantOf(log)
		if log == HeadLog {
			tenant = ""
		}
		rep.Problems = append(rep.Problems, Problem{Tenant: tenant, Log: log, Seq: -1, With: -1, Kind: kind,
			Checkpoint: size, Detail: fmt.Sprintf(format, args...)})
	}
	// With logs given, only their prefixes are listed: a witness of a
	// busy deployment holds a checkpoint per log every few seconds.
	var keys []string
	prefixes := []string{WitnessCheckpoints}
	if len(logs) > 0 {
		prefixes = prefixes[:0]
		for _, log := range logs {
			prefixes = append(prefixes, WitnessCheckpoints+log+"/")
		}
	}
	for _, p := range prefixes {
		ks, err := witness.List(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("trailseal: witness %s: %w", witness, err)
		}
		keys = append(keys, ks...)
	}
	states := map[string][]witnessedState{}
	for _, k := range keys {
		w, err := ParseWitnessCheckpointKey(k)
		if err != nil {
			bad(HeadLog, KindWitnessBad, 0, "%v", err)
			continue
		}
		if want(w.Log) {
			states[w.Log] = append(states[w.Log], witnessedState{size: w.Size, root: w.Root, key: k})
		}
	}
	// The newest head, and the store's.
	heads, err := witness.List(ctx, WitnessHeads)
	if err != nil {
		return nil, fmt.Errorf("trailseal: witness %s: %w", witness, err)
	}
	var wh *Head
	for i := len(heads) - 1; i >= 0 && wh == nil; i-- {
		b, err := witness.Get(ctx, heads[i])
		if err != nil {
			return nil, fmt.Errorf("trailseal: witness %s: %w", witness, err)
		}
		h, err := ParseHead(b, verifiers, origin)
		if err != nil {
			bad(HeadLog, KindWitnessBad, 0, "%s: %v", heads[i], err)
			continue
		}
		wh = &h
	}
	if wh != nil {
		rep.Head = wh.Time
		for _, e := range wh.Entries {
			if want(e.Log) {
				states[e.Log] = append(states[e.Log], witnessedState{size: e.Size, root: e.Root})
			}
		}
		// The store's own head (CheckStoreHead) is not compared with itself.
		_, own := witness.(storeHead)
		if hs, ok := store.(HeadStore); ok && len(logs) == 0 && !own {
			sh, err := hs.LatestHead(ctx)
			switch {
			case errors.Is(err, ErrNoHead):
				bad(HeadLog, KindHeadRolledBack, 0, "the witness holds a head of %s; the store has none", wh.Time.Format(time.RFC3339Nano))
			case err != nil:
				return nil, err
			case sh.Time.Before(wh.Time):
				bad(HeadLog, KindHeadRolledBack, 0, "the store's newest head is of %s, the witness holds one of %s", sh.Time.Format(time.RFC3339Nano), wh.Time.Format(time.RFC3339Nano))
			case sh.Time.Equal(wh.Time) && sh.Note != wh.Note:
				bad(HeadLog, KindForked, 0, "the store's head of %s differs from the witness's", sh.Time.Format(time.RFC3339Nano))
			}
		}
	}
	names := make([]string, 0, len(states))
	for log := range states {
		names = append(names, log)
	}
	slices.Sort(names)
	for _, log := range names {
		if err := checkWitnessedLog(ctx, store, witness, verifiers, origin, log, states[log], rep, bad); err != nil {
			return nil, err
		}
	}
	// The store's logs the witness has not caught up with.
	all, err := store.Logs(ctx)
	if err != nil {
		return nil, fmt.Errorf("trailseal: logs: %w", err)
	}
	for _, log := range all {
		if !want(log) {
			continue
		}
		cp, err := store.LatestCheckpoint(ctx, log)
		if errors.Is(err, ErrNoCheckpoint) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(states[log], func(w witnessedState) bool { return w.size == cp.Size && w.root == cp.Root }) {
			rep.Unwitnessed++
		}
	}
	return rep, nil
}

func checkWitnessedLog(ctx context.Context, store Store, witness WitnessReader, verifiers note.Verifiers, origin, log string,
	ws []witnessedState, rep *WitnessReport, bad func(string, Kind, int64, string, ...any)) error {
	rep.Logs++
	slices.SortFunc(ws, func(a, b witnessedState) int { return int(max(-1, min(1, a.size-b.size))) })
	size, err := store.TreeSize(ctx, log)
	if err != nil {
		return fmt.Errorf("trailseal: tree size of %q: %w", log, err)
	}
	cps, err := store.Checkpoints(ctx, log)
	if err != nil {
		return fmt.Errorf("trailseal: checkpoints of %q: %w", log, err)
	}
	top := ws[len(ws)-1]
	if size == 0 && len(cps) == 0 {
		bad(log, KindTenantDeleted, top.size, "the witness holds checkpoints of this log up to size %d; the store has no such log", top.size)
		return nil
	}
	if size < top.size {
		bad(log, KindRolledBack, top.size, "the store's log has %d leaves; the witness holds a checkpoint of size %d", size, top.size)
	}
	inStore := map[int64][]tlog.Hash{}
	for _, cp := range cps {
		inStore[cp.Size] = append(inStore[cp.Size], cp.Root)
	}
	var missing []int64
	forked := false
	for _, w := range ws {
		if w.key != "" {
			rep.Checkpoints++
		}
		roots, ok := inStore[w.size]
		switch {
		case ok && slices.Contains(roots, w.root):
			continue
		case ok:
			bad(log, KindForked, w.size, "the store's checkpoint of size %d has root %s; the witness's has %s", w.size, roots[0], w.root)
			forked = true
			continue
		}
		if w.size <= size && !forked {
			root, err := tlog.TreeHash(w.size, storeHashes(ctx, store, log))
			if err != nil {
				bad(log, KindForked, w.size, "the store's tree cannot give its root at size %d: %v", w.size, err)
				forked = true
				continue
			}
			if root != w.root {
				bad(log, KindForked, w.size, "the store's tree at size %d has root %s; the witness's checkpoint has %s (events rewritten and re-signed?)", w.size, root, w.root)
				forked = true
				continue
			}
		}
		if w.key != "" && w.size <= size && !slices.Contains(missing, w.size) {
			missing = append(missing, w.size)
		}
	}
	if len(missing) > 0 {
		// A witnessed checkpoint the store lacks is checked for its signature
		// before it is reported: a forged object on the witness is the
		// witness's problem, not the store's.
		for _, w := range ws {
			if w.key == "" || w.size != missing[len(missing)-1] {
				continue
			}
			b, err := witness.Get(ctx, w.key)
			if err != nil {
				return fmt.Errorf("trailseal: witness %s: %w", witness, err)
			}
			if _, err := OpenCheckpoint(b, verifiers, CheckpointOrigin(origin, log)); err != nil {
				bad(log, KindWitnessBad, w.size, "%s: %v", w.key, err)
				return nil
			}
		}
		kind := KindCheckpointMissing
		if len(cps) == 0 {
			kind = KindCheckpointsDeleted
		}
		bad(log, kind, missing[len(missing)-1], "%d witnessed checkpoint(s) of sizes %s are not in the store's history (%d kept)", len(missing), sizesText(missing), len(cps))
	}
	return nil
}

func sizesText(s []int64) string {
	if len(s) <= 4 {
		parts := make([]string, len(s))
		for i, n := range s {
			parts[i] = fmt.Sprint(n)
		}
		return strings.Join(parts, ", ")
	}
	return fmt.Sprintf("%d, %d, …, %d", s[0], s[1], s[len(s)-1])
}

// Undetectable is what `trail verify` says when no witness is given: what
// the store alone cannot show.
const Undetectable = "no witness given (--witness): a deleted tenant, a database rolled back to an earlier backup, " +
	"a tail rewritten together with re-signed checkpoints, and deleted checkpoints are undetectable without a witness; " +
	"the store was checked only against itself"

// CheckStoreHead compares store with its own newest deployment head, as
// CheckWitness does with a witness's: a tenant deleted or a log rolled
// back without the heads being deleted or re-signed too shows here. It is
// no defence against whoever holds the signing key (re-signed heads pass):
// that is what witnesses are for. A store without heads gets an empty
// report.
func CheckStoreHead(ctx context.Context, store Store, verifiers note.Verifiers, origin string, logs []string) (*WitnessReport, error) {
	hs, ok := store.(HeadStore)
	if !ok {
		return &WitnessReport{Witness: "the store's own head"}, nil
	}
	h, err := hs.LatestHead(ctx)
	if errors.Is(err, ErrNoHead) {
		return &WitnessReport{Witness: "the store's own head"}, nil
	}
	if err != nil {
		return nil, err
	}
	return CheckWitness(ctx, store, storeHead{h}, verifiers, origin, logs)
}

// storeHead is a WitnessReader holding one head and no checkpoints.
type storeHead struct{ h Head }

func (s storeHead) String() string { return "the store's own head" }

func (s storeHead) List(ctx context.Context, prefix string) ([]string, error) {
	if k := WitnessHeadKey(s.h); strings.HasPrefix(k, prefix) {
		return []string{k}, nil
	}
	return nil, nil
}

func (s storeHead) Get(ctx context.Context, key string) ([]byte, error) {
	return MarshalHead(s.h), nil
}

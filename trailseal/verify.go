package trailseal

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Kind classifies a Problem.
type Kind string

// Problem kinds. The first six are what tampering with the tables produces;
// the rest describe damage to the tree or the checkpoint history itself.
const (
	// KindModified: the stored event no longer hashes to its leaf (a field
	// was edited).
	KindModified Kind = "modified"
	// KindMissing: a leaf names an event that is gone, or a leaf row is gone.
	KindMissing Kind = "missing"
	// KindInserted: an event is stored with neither a leaf nor a pending row
	// (it was written around the store's Append).
	KindInserted Kind = "inserted"
	// KindReordered: the event at this seq belongs at another seq (With).
	KindReordered Kind = "reordered"
	// KindTruncated: the log has fewer leaves than a signed checkpoint says.
	KindTruncated Kind = "truncated"
	// KindBadSignature: a kept checkpoint's signature does not verify with
	// the trusted keys (edited text, or signed by another key).
	KindBadSignature Kind = "bad_signature"
	// KindBadCheckpoint: a checkpoint is malformed, belongs to another log,
	// or its stored size/root disagree with its signed text.
	KindBadCheckpoint Kind = "bad_checkpoint"
	// KindForked: the checkpoint history contradicts itself (a later
	// checkpoint is smaller, or two of one size differ).
	KindForked Kind = "forked"
	// KindRootMismatch: the tree rebuilt from the events does not have the
	// root a signed checkpoint states, while every leaf matched the stored
	// tree: leaves and tree were rewritten together.
	KindRootMismatch Kind = "root_mismatch"
	// KindHashMismatch: the stored tree hashes or leaf rows disagree with
	// each other (the stored tree itself was edited).
	KindHashMismatch Kind = "hash_mismatch"
	// KindUnreadable: an event could not be canonically encoded.
	KindUnreadable Kind = "unreadable"
	// KindKeyNotValid: a checkpoint is signed by a trusted key that was not
	// the signing key at the checkpoint's time (a retired key used after its
	// rotation, or a new key before it); checked with Verifier.KeyWindows.
	KindKeyNotValid Kind = "key_not_valid_at_time"
)

// Problem is one thing found wrong, precisely placed.
type Problem struct {
	Tenant string `json:"tenant"`
	Log    string `json:"log"`
	// Seq is the leaf's sequence number; -1 when the problem is not about
	// one leaf (an inserted event, a checkpoint).
	Seq  int64 `json:"seq"`
	Kind Kind  `json:"kind"`
	// EventID is the event concerned, when there is one.
	EventID uuid.UUID `json:"event_id,omitzero"`
	// With is the other seq of a reordered pair, else -1.
	With int64 `json:"with_seq"`
	// Checkpoint is the size of the checkpoint concerned, else 0.
	Checkpoint int64  `json:"checkpoint_size,omitempty"`
	Detail     string `json:"detail"`
}

func (p Problem) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "log %s", p.Log)
	if p.Seq >= 0 {
		fmt.Fprintf(&b, " seq %d", p.Seq)
	}
	fmt.Fprintf(&b, ": %s", p.Kind)
	if p.EventID != uuid.Nil {
		fmt.Fprintf(&b, " (event %s)", p.EventID)
	}
	if p.Detail != "" {
		b.WriteString(": " + p.Detail)
	}
	return b.String()
}

// LogReport summarizes one verified log.
type LogReport struct {
	Log         string `json:"log"`
	Tenant      string `json:"tenant"`
	Size        int64  `json:"size"`
	Checkpoints int    `json:"checkpoints"` // checkpoints that verified
	// Covered is the size of the largest checkpoint that verified: leaves
	// Covered..Size-1 are vouched for by no signature yet (normal for the
	// newest few; a log whose checkpoints were all deleted shows 0).
	Covered  int64 `json:"covered"`
	Problems int   `json:"problems"`
	// Purged counts the leaves whose events retention removed (see
	// PurgeRecorder): their tree hashes still verify, their events cannot.
	Purged int64 `json:"purged,omitempty"`
}

// Report is the result of Verify. The store is intact (as far as the
// checked checkpoints can tell) exactly when Problems is empty.
type Report struct {
	Logs     []LogReport `json:"logs"`
	Problems []Problem   `json:"problems"`
	Events   int64       `json:"events"`
	Bytes    int64       `json:"bytes"` // canonical bytes hashed
	// Omitted counts problems found beyond Verifier.MaxProblems: they were
	// counted, not kept.
	Omitted int64 `json:"omitted,omitempty"`
}

// OK reports whether nothing was found wrong.
func (r *Report) OK() bool { return len(r.Problems) == 0 && r.Omitted == 0 }

// Progress is passed to Verifier.Progress after every batch of leaves.
type Progress struct {
	Log         string
	Done, Total int64 // leaves verified / to verify, over all logs
}

// Verifier checks a store's logs against the events they seal and the
// checkpoints signed over them.
type Verifier struct {
	Store Store
	// Verifiers are the trusted checkpoint keys (note.VerifierList).
	Verifiers note.Verifiers
	// Origin is the deployment's checkpoint origin (Config.Origin).
	// Default: DefaultOrigin.
	Origin string
	// Progress, when set, is called as verification advances.
	Progress func(Progress)
	// BatchSize is how many leaves are read at a time. Default: 1000.
	BatchSize int
	// MaxProblems bounds the problems kept in the report (a store verified
	// with the wrong key or origin has one per checkpoint, a wrong encoding
	// one per event). Default: 10,000.
	MaxProblems int
	// KeyWindows, with two or more (a signing-key history), also checks
	// that each kept checkpoint was signed by the key whose window holds its
	// time (SignedAt): one that was not is KindKeyNotValid. It is checked on
	// the checkpoints verification reads anyway, not on a second read.
	KeyWindows []KeyWindow
}

// VerifyOptions narrow or extend a verification.
type VerifyOptions struct {
	// Logs to verify (LogName(tenant)); empty means every log.
	Logs []string
	// Checkpoints are signed checkpoints held outside the store (e.g. a
	// tenant's saved copy, `trail verify --checkpoint FILE`), checked like
	// kept ones: a store rolled back below one of them shows as truncated.
	Checkpoints [][]byte
}

type signedCP struct {
	Checkpoint
	external bool
}

// Verify recomputes every leaf from the stored events, rebuilds each log's
// tree, compares it with the stored tree and every checkpoint, and returns
// what is wrong. An error means verification could not run (a store
// failure); tampering is reported in the Report, never as an error.
func (v *Verifier) Verify(ctx context.Context, opt *VerifyOptions) (*Report, error) {
	if v.Store == nil || v.Verifiers == nil {
		return nil, errors.New("trailseal: Verifier needs a Store and Verifiers")
	}
	if opt == nil {
		opt = &VerifyOptions{}
	}
	origin := v.Origin
	if origin == "" {
		origin = DefaultOrigin
	}
	rep := &Report{}
	logs := slices.Clone(opt.Logs)
	if len(logs) == 0 {
		var err error
		if logs, err = v.Store.Logs(ctx); err != nil {
			return nil, fmt.Errorf("trailseal: verify: %w", err)
		}
	}
	extra := map[string][]signedCP{}
	for i, raw := range opt.Checkpoints {
		body, err := OpenCheckpoint(raw, v.Verifiers, "")
		if err == nil {
			log, ok := strings.CutPrefix(body.Origin, origin+"/")
			switch {
			case !ok:
				err = badCheckpoint("wrong_log", "origin %q is not of this deployment (%q)", clip(body.Origin), origin)
			case len(opt.Logs) > 0 && !slices.Contains(opt.Logs, log):
				// Never let a checkpoint of another tenant pass unchecked.
				err = badCheckpoint("wrong_log", "checkpoint is for log %q, which is not being verified", clip(log))
			default:
				extra[log] = append(extra[log], signedCP{Checkpoint{Log: log, Size: body.Size, Root: body.Root, Note: string(raw)}, true})
				if !slices.Contains(logs, log) {
					logs = append(logs, log)
				}
				continue
			}
		}
		rep.Problems = append(rep.Problems, Problem{Seq: -1, With: -1, Kind: cpKind(err),
			Detail: fmt.Sprintf("checkpoint file %d: %v", i+1, err)})
	}
	sizes, err := v.treeSizes(ctx, logs)
	if err != nil {
		return nil, err
	}
	var total, done int64
	for _, n := range sizes {
		total += n
	}
	batch := int64(v.BatchSize)
	if batch <= 0 {
		batch = 1000
	}
	_, batched := v.Store.(BatchReader)
	units := planUnits(logs, sizes, batch, batched)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &run{sem: make(chan struct{}, verifyReads(v.Store)), // verify_reads.go
		cache:  &cpCache{m: map[string]openedCP{}},
		origin: origin, extra: extra, batch: batch}
	slots := ordered(ctx, len(units), cap(r.sem), func(ctx context.Context, i int) unitResult {
		in, err := v.readUnit(ctx, r, units[i])
		return unitResult{in: in, err: err}
	})
	for c := range slots {
		var res unitResult
		select {
		case res = <-c:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if res.err != nil {
			return nil, res.err
		}
		for _, in := range res.in {
			lr, err := v.verifyLog(ctx, rep, r, in, &done, &total)
			if err != nil {
				return nil, err
			}
			rep.Logs = append(rep.Logs, lr)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return rep, nil
}

type unitResult struct {
	in  []*logInput
	err error
}

// treeSizes reads every log's size, in one query when the store can.
func (v *Verifier) treeSizes(ctx context.Context, logs []string) ([]int64, error) {
	sizes := make([]int64, len(logs))
	if br, ok := v.Store.(BatchReader); ok {
		for lo := 0; lo < len(logs); lo += maxGroupLogs {
			part := logs[lo:min(lo+maxGroupLogs, len(logs))]
			m, err := br.TreeSizes(ctx, part)
			if err != nil {
				return nil, fmt.Errorf("trailseal: verify: tree sizes: %w", err)
			}
			for i, log := range part {
				sizes[lo+i] = m[log]
			}
		}
		return sizes, nil
	}
	for i, log := range logs {
		n, err := v.Store.TreeSize(ctx, log)
		if err != nil {
			return nil, fmt.Errorf("trailseal: verify %q: %w", log, err)
		}
		sizes[i] = n
	}
	return sizes, nil
}

// signatureError reports whether err is a note's unknown key or bad
// signature, which the checkpoint pass reports as KindBadSignature.
func signatureError(err error) bool {
	var unknown *note.UnknownVerifierError
	var invalid *note.InvalidSignatureError
	return errors.As(err, &unknown) || errors.As(err, &invalid)
}

func cpKind(err error) Kind {
	var ce *CheckpointError
	if errors.As(err, &ce) && (ce.Reason == "bad_signature" || ce.Reason == "unknown_key") {
		return KindBadSignature
	}
	return KindBadCheckpoint
}

// frontier is the right edge of a Merkle tree being built leaf by leaf: the
// roots of its perfect subtrees, largest first.
type frontier []tlog.Hash

// push adds leaf n (n leaves already) and returns the stored hashes record n
// creates, in tlog's order (the leaf, then each completed parent).
func (f *frontier) push(n int64, h tlog.Hash, out []tlog.Hash) []tlog.Hash {
	out = append(out[:0], h)
	for ; n&1 == 1; n >>= 1 {
		left := (*f)[len(*f)-1]
		*f = (*f)[:len(*f)-1]
		h = tlog.NodeHash(left, h)
		out = append(out, h)
	}
	*f = append(*f, h)
	return out
}

// root returns the RFC 6962 root of the leaves pushed so far.
func (f frontier) root() tlog.Hash {
	h := f[len(f)-1]
	for i := len(f) - 2; i >= 0; i-- {
		h = tlog.NodeHash(f[i], h)
	}
	return h
}

// parallelLeafHashes hashes n events (event(i) nil: skipped) on every core
// with the validating encoder (the sealer's write path).
func parallelLeafHashes(n int, event func(int) *trail.Event) []leafHash {
	return parallelLeafHashesWith(n, event, appendCanonical)
}

// parallelLeafHashesWith hashes n events with enc on every core.
func parallelLeafHashesWith(n int, event func(int) *trail.Event, enc func([]byte, *trail.Event) ([]byte, error)) []leafHash {
	out := make([]leafHash, n)
	workers := min(runtime.GOMAXPROCS(0), (n+63)/64)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var buf []byte
			for i := w; i < n; i += workers {
				ev := event(i)
				if ev == nil {
					continue
				}
				b, err := enc(buf[:0], ev)
				if err != nil {
					out[i].err = err
					continue
				}
				out[i] = leafHash{hash: tlog.RecordHash(b), n: len(b)}
				buf = b
			}
		})
	}
	wg.Wait()
	return out
}

type mismatch struct {
	seq       int64
	id        uuid.UUID
	got, want tlog.Hash
}

func (v *Verifier) verifyLog(ctx context.Context, rep *Report, r *run, in *logInput, done, total *int64) (LogReport, error) {
	log, size := in.log, in.cur
	tenant := TenantOf(log)
	lr := LogReport{Log: log, Tenant: tenant, Size: size}
	before, omittedBefore := len(rep.Problems), rep.Omitted
	maxProblems := v.MaxProblems
	if maxProblems <= 0 {
		maxProblems = 10000
	}
	problem := func(p Problem) {
		if len(rep.Problems) >= maxProblems {
			rep.Omitted++
			return
		}
		p.Tenant, p.Log = tenant, log
		rep.Problems = append(rep.Problems, p)
	}
	*total += in.cur - in.size

	// 1. Checkpoints: signatures, origin, agreement with their rows, history
	// (opened by the read-ahead).
	var good []signedCP // verified, in history order
	for _, o := range in.cps {
		cp, body, err := o.signedCP, o.body, o.err
		where := "kept checkpoint"
		if cp.external {
			where = "checkpoint file"
		}
		if err != nil {
			problem(Problem{Seq: -1, With: -1, Kind: cpKind(err), Checkpoint: cp.Size,
				Detail: fmt.Sprintf("%s of size %d: %v", where, cp.Size, err)})
			continue
		}
		if !cp.external && (body.Size != cp.Size || body.Root != cp.Root) {
			problem(Problem{Seq: -1, With: -1, Kind: KindBadCheckpoint, Checkpoint: cp.Size,
				Detail: fmt.Sprintf("stored size %d root %s, but the signed text says size %d root %s", cp.Size, cp.Root, body.Size, body.Root)})
			continue
		}
		cp.Size, cp.Root = body.Size, body.Root
		good = append(good, cp)
		if !cp.external && len(v.KeyWindows) >= 2 {
			if _, err := SignedAt([]byte(cp.Note), v.KeyWindows, cp.Time); err != nil && !signatureError(err) {
				problem(Problem{Seq: -1, With: -1, Kind: KindKeyNotValid, Checkpoint: cp.Size, Detail: err.Error()})
			}
		}
	}
	var prev *signedCP
	for i := range good {
		cp := &good[i]
		if cp.external {
			continue
		}
		if prev != nil && cp.Size < prev.Size {
			problem(Problem{Seq: -1, With: -1, Kind: KindForked, Checkpoint: cp.Size,
				Detail: fmt.Sprintf("checkpoint of size %d follows one of size %d", cp.Size, prev.Size)})
		}
		prev = cp
	}
	bySize := map[int64][]signedCP{}
	var maxCP *signedCP
	for i, cp := range good {
		for _, o := range bySize[cp.Size] {
			if o.Root != cp.Root {
				problem(Problem{Seq: -1, With: -1, Kind: KindForked, Checkpoint: cp.Size,
					Detail: fmt.Sprintf("two signed checkpoints of size %d with roots %s and %s", cp.Size, o.Root, cp.Root)})
			}
		}
		bySize[cp.Size] = append(bySize[cp.Size], cp)
		if maxCP == nil || cp.Size > maxCP.Size {
			maxCP = &good[i]
		}
	}
	if maxCP != nil && maxCP.Size > size {
		problem(Problem{Seq: size, With: -1, Kind: KindTruncated, Checkpoint: maxCP.Size,
			Detail: fmt.Sprintf("the log has %d leaves but a signed checkpoint covers %d: leaves %d..%d are gone", size, maxCP.Size, size, maxCP.Size-1)})
	}

	// 2. Leaves: recompute, rebuild, compare.
	var (
		rebuilt, stored frontier
		created         []tlog.Hash
		mism            []mismatch
		firstBad        int64 = -1 // lowest seq with a leaf-level problem
		storedOK              = true
		sameTree              = true // stored tree == rebuilt tree so far
	)
	leafBad := func(seq int64) {
		if firstBad < 0 {
			firstBad = seq
		}
	}
	// Events retention removed: read before the leaves, and once more
	// before calling a gone event missing (a purge may run meanwhile).
	purged := newSeqSet(in.purged)
	reread := false
	isPurged := func(seq int64) (bool, error) {
		if !in.canPurge {
			return false, nil
		}
		if !purged.contains(seq) && !reread {
			reread = true // at most once per log
			rs, err := v.Store.(PurgeRecorder).PurgedRanges(ctx, log)
			if err != nil {
				return false, fmt.Errorf("trailseal: verify %q: purged ranges: %w", log, err)
			}
			purged = newSeqSet(rs)
		}
		return purged.contains(seq), nil
	}
	next := func() (leafBatch, bool) {
		if len(in.batches) == 0 {
			return leafBatch{}, false
		}
		lb := in.batches[0]
		in.batches = in.batches[1:]
		return lb, true
	}
	if in.stream {
		bctx, cancel := context.WithCancel(ctx)
		defer cancel()
		slots := v.readBatches(bctx, r, log, size)
		next = func() (leafBatch, bool) {
			c, ok := <-slots
			if !ok {
				return leafBatch{}, false
			}
			return <-c, true
		}
	}
	for {
		lb, ok := next()
		if !ok {
			break
		}
		if err := ctx.Err(); err != nil {
			return lr, err
		}
		if lb.err != nil {
			return lr, fmt.Errorf("trailseal: verify %q: leaves %d..%d: %w", log, lb.from, lb.to, lb.err)
		}
		from := lb.from
		to, ses, hashes := lb.to, lb.ses, lb.hashes
		lo := tlog.StoredHashIndex(0, from)
		if lb.hashErr != nil {
			problem(Problem{Seq: from, With: -1, Kind: KindHashMismatch,
				Detail: fmt.Sprintf("stored tree hashes for seq %d..%d cannot be read: %v", from, to-1, lb.hashErr)})
			hashes = nil
		}
		k := 0
		for seq := from; seq < to; seq++ {
			var se *SealedEvent
			var lh *leafHash
			for k < len(ses) && ses[k].Seq < seq {
				k++
			}
			if k < len(ses) && ses[k].Seq == seq {
				se, lh = &ses[k], &lb.leaves[k]
			}
			nh := 1 + int64(bits.TrailingZeros64(^uint64(seq))) // hashes record seq stores
			var st []tlog.Hash
			if hashes != nil {
				off := tlog.StoredHashIndex(0, seq) - lo
				st = hashes[off : off+nh]
			}
			// The leaf hash the tree committed to.
			var want tlog.Hash
			switch {
			case st != nil:
				want = st[0]
			case se != nil:
				want = se.Hash
			}
			got, known := want, false
			gone := se != nil && se.Event == nil
			if gone {
				p, err := isPurged(seq)
				if err != nil {
					return lr, err
				}
				if p {
					lr.Purged++
					gone = false
				}
			}
			switch {
			case se != nil && se.Event == nil && !gone: // purged by retention
			case se == nil:
				problem(Problem{Seq: seq, With: -1, Kind: KindMissing, Detail: "the leaf row is gone"})
				leafBad(seq)
			case se.Event == nil:
				problem(Problem{Seq: seq, With: -1, Kind: KindMissing, EventID: se.EventID, Detail: "the sealed event is gone"})
				leafBad(seq)
			case lh.err != nil:
				problem(Problem{Seq: seq, With: -1, Kind: KindUnreadable, EventID: se.EventID, Detail: lh.err.Error()})
				leafBad(seq)
			default:
				rep.Bytes += int64(lh.n)
				got, known = lh.hash, true
			}
			if known && got != want {
				if len(mism) < maxProblems {
					mism = append(mism, mismatch{seq: seq, id: se.EventID, got: got, want: want})
				} else {
					rep.Omitted++
				}
				leafBad(seq)
			} else if known && se.Hash != want {
				problem(Problem{Seq: seq, With: -1, Kind: KindHashMismatch, EventID: se.EventID,
					Detail: fmt.Sprintf("leaf row says %s, the stored tree %s", se.Hash, want)})
			}
			// Rebuild from the events (falling back to the committed hash
			// where the event is unusable, so one problem is not reported
			// again at every later checkpoint).
			created = rebuilt.push(seq, got, created)
			// Check the stored tree locally: each stored parent must be the
			// hash of its stored children (so a damaged node is reported once,
			// not at every ancestor).
			//
			// While the stored tree equals the rebuilt one (sameTree: equal
			// frontiers so far, and this record's stored hashes equal the
			// ones just rebuilt), each stored parent is already known to be
			// the hash of its stored children, since the rebuilt one was
			// computed from the same children: the check costs no hashing
			// then. From the first difference on, every parent is hashed.
			if sameTree && (st == nil || !slices.Equal(st, created)) {
				sameTree = false
			}
			if st == nil {
				storedOK = false
			} else if storedOK {
				bad := false
				for l := 1; l < len(st); l++ {
					left := stored[len(stored)-1]
					stored = stored[:len(stored)-1]
					if !sameTree && tlog.NodeHash(left, st[l-1]) != st[l] {
						bad = true
					}
				}
				stored = append(stored, st[len(st)-1])
				if bad {
					problem(Problem{Seq: seq, With: -1, Kind: KindHashMismatch,
						Detail: "a stored tree hash is not the hash of its children"})
				}
			}
			n := seq + 1
			for _, cp := range bySize[n] {
				if r := rebuilt.root(); r != cp.Root && (firstBad < 0 || firstBad >= n) {
					problem(Problem{Seq: -1, With: -1, Kind: KindRootMismatch, Checkpoint: n,
						Detail: fmt.Sprintf("the events rebuild root %s, the signed checkpoint of size %d says %s (leaves and tree rewritten)", r, n, cp.Root)})
				} else if r == cp.Root {
					lr.Checkpoints++
					lr.Covered = n
				}
			}
		}
		rep.Events += to - from
		*done += to - from
		if v.Progress != nil {
			v.Progress(Progress{Log: log, Done: *done, Total: *total})
		}
	}

	if err := ctx.Err(); err != nil {
		return lr, err
	}

	// 3. Classify leaf mismatches: a hash the tree committed at another
	// mismatched seq means the events were reordered; otherwise modified.
	wantAt := make(map[tlog.Hash]int64, len(mism))
	for _, m := range mism {
		wantAt[m.want] = m.seq
	}
	for _, m := range mism {
		if j, ok := wantAt[m.got]; ok && j != m.seq {
			problem(Problem{Seq: m.seq, With: j, Kind: KindReordered, EventID: m.id,
				Detail: fmt.Sprintf("this event was sealed at seq %d", j)})
			continue
		}
		problem(Problem{Seq: m.seq, With: -1, Kind: KindModified, EventID: m.id,
			Detail: fmt.Sprintf("the stored event hashes to %s, sealed as %s", m.got, m.want)})
	}

	// 4. Events that bypassed the store's Append.
	ids := in.unsealed
	if !in.haveUnsealed {
		var err error
		if ids, err = v.Store.Unsealed(ctx, log); err != nil {
			return lr, fmt.Errorf("trailseal: verify %q: unsealed: %w", log, err)
		}
	}
	for _, id := range ids {
		problem(Problem{Seq: -1, With: -1, Kind: KindInserted, EventID: id,
			Detail: "stored without a leaf or a pending row"})
	}
	slices.SortStableFunc(rep.Problems[before:], func(a, b Problem) int {
		if (a.Seq < 0) != (b.Seq < 0) { // leaf problems first
			return cmp.Compare(b.Seq, a.Seq)
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
	lr.Problems = len(rep.Problems) - before + int(rep.Omitted-omittedBefore)
	return lr, nil
}

package trailseal

import (
	"context"
	"fmt"
	"sync"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"golang.org/x/mod/sumdb/tlog"
)

// Verify reads ahead of its tree pass, which must see each log's leaves in
// order. Everything that only reads the store or burns CPU on one leaf or
// one checkpoint at a time runs on GOMAXPROCS workers: the store reads, the
// canonical re-encoding and leaf hashing, the checkpoint signatures. Logs of
// fewer leaves than BatchSize are read whole, several at once through
// BatchReader when the store has it; larger logs are streamed batch by
// batch, several batches in flight. The tree pass and every problem report
// stay in one goroutine, in log order, so a report does not depend on the
// scheduling.

// logInput is what the verifier read about one log before its tree pass.
type logInput struct {
	log  string
	size int64 // counted in the progress total (read before the checkpoints)
	cur  int64 // read after the checkpoints: the size verified
	cps  []openedCP
	// canPurge: the store records purges; purged are the ranges read
	// before the leaves.
	canPurge bool
	purged   []SeqRange
	// batches cover [0, cur) in order, unless stream is set: then the tree
	// pass reads them (a large log).
	batches      []leafBatch
	stream       bool
	unsealed     []uuid.UUID
	haveUnsealed bool
}

// openedCP is a checkpoint with the result of opening its signed note.
type openedCP struct {
	signedCP
	body CheckpointBody
	err  error
}

// unit is one read-ahead task: one log, or several small logs read together.
type unit struct {
	logs  []string
	sizes []int64
	group bool
}

// maxGroupLogs bounds the logs read together (the length of a query's
// parameter arrays), whatever their sizes.
const maxGroupLogs = 1000

// planUnits groups runs of logs with at most batch leaves into units of at
// most batch leaves and maxGroupLogs logs when the store can read them
// together; every other log is a unit of its own.
func planUnits(logs []string, sizes []int64, batch int64, batched bool) []unit {
	var out []unit
	var g unit
	var sum int64
	flush := func() {
		if len(g.logs) > 0 {
			out = append(out, g)
		}
		g, sum = unit{group: true}, 0
	}
	flush()
	for i, log := range logs {
		if !batched || sizes[i] > batch {
			flush()
			out = append(out, unit{logs: []string{log}, sizes: []int64{sizes[i]}})
			continue
		}
		if sum+sizes[i] > batch || len(g.logs) >= maxGroupLogs {
			flush()
		}
		g.logs, g.sizes = append(g.logs, log), append(g.sizes, sizes[i])
		sum += sizes[i]
	}
	flush()
	return out
}

// ordered runs f(0), …, f(n-1) on up to workers goroutines and delivers
// their results in index order: one channel per index, received in turn.
// At most workers+1 results are pending or held at a time. Cancelling ctx
// stops starting new ones.
func ordered[T any](ctx context.Context, n, workers int, f func(ctx context.Context, i int) T) <-chan chan T {
	slots := make(chan chan T, max(workers, 1))
	go func() {
		defer close(slots)
		for i := range n {
			c := make(chan T, 1)
			select {
			case slots <- c:
			case <-ctx.Done():
				return
			}
			go func() { c <- f(ctx, i) }()
		}
	}()
	return slots
}

// run is one Verify call's shared read-ahead state.
type run struct {
	// sem bounds the reads (and the hashing that follows each) in flight to
	// GOMAXPROCS, or more where the store asks (ReadConcurrency: a server
	// works while this process waits); on SQLite more would not go faster,
	// and each would hold a connection of its own, past the pool's idle
	// ones, with a cold cache.
	sem    chan struct{}
	cache  *cpCache
	origin string
	extra  map[string][]signedCP
	batch  int64
}

func (r *run) acquire(ctx context.Context) error {
	select {
	case r.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *run) release() { <-r.sem }

// cpCache remembers opened checkpoints by origin and note: a note repeated
// (a checkpoint file holding a kept checkpoint) is checked once.
type cpCache struct {
	mu sync.Mutex
	m  map[string]openedCP
}

func (v *Verifier) openCheckpoints(cache *cpCache, origin, log string, kept []Checkpoint, extra []signedCP) []openedCP {
	want := CheckpointOrigin(origin, log)
	out := make([]openedCP, 0, len(kept)+len(extra))
	for _, cp := range kept {
		out = append(out, openedCP{signedCP: signedCP{Checkpoint: cp}})
	}
	for _, cp := range extra {
		out = append(out, openedCP{signedCP: cp})
	}
	for i := range out {
		key := want + "\n" + out[i].Note
		cache.mu.Lock()
		o, ok := cache.m[key]
		cache.mu.Unlock()
		if !ok {
			o.body, o.err = OpenCheckpoint([]byte(out[i].Note), v.Verifiers, want)
			cache.mu.Lock()
			cache.m[key] = o
			cache.mu.Unlock()
		}
		out[i].body, out[i].err = o.body, o.err
	}
	return out
}

// readUnit reads (and hashes) what the tree pass needs about u's logs.
func (v *Verifier) readUnit(ctx context.Context, r *run, u unit) ([]*logInput, error) {
	if err := r.acquire(ctx); err != nil {
		return nil, err
	}
	defer r.release()
	origin, extra, batch, cache := r.origin, r.extra, r.batch, r.cache
	if u.group {
		return v.readGroup(ctx, u, origin, extra, batch, cache)
	}
	log := u.logs[0]
	in := &logInput{log: log, size: u.sizes[0]}
	kept, err := v.Store.Checkpoints(ctx, log)
	if err != nil {
		return nil, fmt.Errorf("trailseal: verify %q: checkpoints: %w", log, err)
	}
	// Read the size after the checkpoints: on a live store the sealer signs
	// only what it has sealed, so no checkpoint read is larger than the size
	// read now unless leaves were removed.
	if in.cur, err = v.Store.TreeSize(ctx, log); err != nil {
		return nil, fmt.Errorf("trailseal: verify %q: %w", log, err)
	}
	in.cps = v.openCheckpoints(cache, origin, log, kept, extra[log])
	// Events retention removed: read before the leaves (and once more
	// before calling a gone event missing: a purge may run meanwhile).
	if pr, ok := v.Store.(PurgeRecorder); ok {
		in.canPurge = true
		if in.purged, err = pr.PurgedRanges(ctx, log); err != nil {
			return nil, fmt.Errorf("trailseal: verify %q: purged ranges: %w", log, err)
		}
	}
	if in.cur > batch {
		in.stream = true
		return []*logInput{in}, nil
	}
	if in.cur > 0 {
		lb := v.readBatchLocked(ctx, log, 0, in.cur)
		if lb.err != nil {
			return nil, fmt.Errorf("trailseal: verify %q: leaves %d..%d: %w", log, lb.from, lb.to, lb.err)
		}
		in.batches = []leafBatch{lb}
	}
	if in.unsealed, err = v.Store.Unsealed(ctx, log); err != nil {
		return nil, fmt.Errorf("trailseal: verify %q: unsealed: %w", log, err)
	}
	in.haveUnsealed = true
	return []*logInput{in}, nil
}

// readGroup is readUnit for several small logs, through BatchReader: the
// same reads in the same order, each one query for all of them.
func (v *Verifier) readGroup(ctx context.Context, u unit, origin string, extra map[string][]signedCP, batch int64, cache *cpCache) ([]*logInput, error) {
	br := v.Store.(BatchReader)
	fail := func(what string, err error) error {
		return fmt.Errorf("trailseal: verify %d logs (%q…): %s: %w", len(u.logs), u.logs[0], what, err)
	}
	kept, err := br.CheckpointsOf(ctx, u.logs)
	if err != nil {
		return nil, fail("checkpoints", err)
	}
	sizes, err := br.TreeSizes(ctx, u.logs)
	if err != nil {
		return nil, fail("tree sizes", err)
	}
	ins := make([]*logInput, len(u.logs))
	for i, log := range u.logs {
		ins[i] = &logInput{log: log, size: u.sizes[i], cur: sizes[log]}
		ins[i].cps = v.openCheckpoints(cache, origin, log, kept[log], extra[log])
	}
	if pr, ok := v.Store.(PurgeRecorder); ok {
		if bp, ok := v.Store.(BatchPurgeRecorder); ok {
			purged, err := bp.PurgedRangesOf(ctx, u.logs)
			if err != nil {
				return nil, fail("purged ranges", err)
			}
			for _, in := range ins {
				in.canPurge, in.purged = true, purged[in.log]
			}
		} else {
			for _, in := range ins {
				in.canPurge = true
				if in.purged, err = pr.PurgedRanges(ctx, in.log); err != nil {
					return nil, fmt.Errorf("trailseal: verify %q: purged ranges: %w", in.log, err)
				}
			}
		}
	}
	// The leaves, in chunks of at most batch leaves (a log that grew since
	// the plan may span chunks: its batches follow each other).
	type chunk struct {
		rs     []LogRange
		owners []int
	}
	var chunks []chunk
	var c chunk
	room := batch
	for i, in := range ins {
		for from := int64(0); from < in.cur; {
			to := min(in.cur, from+room)
			c.rs, c.owners = append(c.rs, LogRange{Log: in.log, From: from, To: to}), append(c.owners, i)
			room -= to - from
			from = to
			if room == 0 {
				chunks, c, room = append(chunks, c), chunk{}, batch
			}
		}
	}
	if len(c.rs) > 0 {
		chunks = append(chunks, c)
	}
	for _, c := range chunks {
		ses, err := br.LeavesOf(ctx, c.rs)
		if err == nil && len(ses) != len(c.rs) {
			err = fmt.Errorf("%d answers for %d ranges", len(ses), len(c.rs))
		}
		if err != nil {
			return nil, fail("leaves", err)
		}
		hrs := make([]LogRange, len(c.rs))
		for k, r := range c.rs {
			hrs[k] = LogRange{Log: r.Log, From: tlog.StoredHashIndex(0, r.From), To: tlog.StoredHashIndex(0, r.To)}
		}
		hs, herr := br.HashesOf(ctx, hrs)
		if herr == nil && len(hs) != len(hrs) {
			herr = fmt.Errorf("%d answers for %d ranges", len(hs), len(hrs))
		}
		for k, r := range c.rs {
			lb := leafBatch{from: r.From, to: r.To, ses: ses[k]}
			if herr == nil && int64(len(hs[k])) == hrs[k].To-hrs[k].From {
				lb.hashes = hs[k]
			} else {
				// Incomplete, or the query failed: ReadHashes says why, as
				// for a log read alone.
				lb.hashes, lb.hashErr = v.readStoredHashes(ctx, r.Log, r.From, r.To)
			}
			lb.leaves = hashLeaves(lb.ses)
			in := ins[c.owners[k]]
			in.batches = append(in.batches, lb)
		}
	}
	unsealed, err := br.UnsealedOf(ctx, u.logs)
	if err != nil {
		return nil, fail("unsealed", err)
	}
	for _, in := range ins {
		in.unsealed, in.haveUnsealed = unsealed[in.log], true
	}
	return ins, nil
}

// leafBatch is one batch of a log's leaves, read and hashed ahead of the
// tree pass.
type leafBatch struct {
	from, to int64
	ses      []SealedEvent
	leaves   []leafHash // recomputed, parallel to ses
	hashes   []tlog.Hash
	hashErr  error // stored hashes unreadable (reported as a problem)
	err      error // leaves unreadable (verification fails)
}

type leafHash struct {
	hash tlog.Hash
	n    int // canonical bytes hashed
	err  error
}

// readHashes reads the stored hashes that records from..to-1 wrote.
func (v *Verifier) readHashes(ctx context.Context, log string, from, to int64) ([]tlog.Hash, error) {
	lo, hi := tlog.StoredHashIndex(0, from), tlog.StoredHashIndex(0, to)
	if br, ok := v.Store.(BatchReader); ok {
		// A range read, in index order: no index list, no map.
		hs, err := br.HashesOf(ctx, []LogRange{{Log: log, From: lo, To: hi}})
		if err == nil && len(hs) == 1 && int64(len(hs[0])) == hi-lo {
			return hs[0], nil
		}
	}
	return v.readStoredHashes(ctx, log, from, to)
}

// readStoredHashes is readHashes through Store.ReadHashes, whose error
// says which hash is missing.
func (v *Verifier) readStoredHashes(ctx context.Context, log string, from, to int64) ([]tlog.Hash, error) {
	lo, hi := tlog.StoredHashIndex(0, from), tlog.StoredHashIndex(0, to)
	idx := make([]int64, 0, hi-lo)
	for x := lo; x < hi; x++ {
		idx = append(idx, x)
	}
	return v.Store.ReadHashes(ctx, log, idx)
}

// readBatch reads log's leaves from..to-1 and their stored hashes, and
// recomputes the leaf hashes.
func (v *Verifier) readBatch(ctx context.Context, r *run, log string, from, to int64) leafBatch {
	if err := r.acquire(ctx); err != nil {
		return leafBatch{from: from, to: to, err: err}
	}
	defer r.release()
	return v.readBatchLocked(ctx, log, from, to)
}

// readBatchLocked is readBatch for a caller holding the semaphore.
func (v *Verifier) readBatchLocked(ctx context.Context, log string, from, to int64) leafBatch {
	lb := leafBatch{from: from, to: to}
	lb.ses, lb.err = v.Store.Leaves(ctx, log, from, to)
	if lb.err == nil {
		lb.hashes, lb.hashErr = v.readHashes(ctx, log, from, to)
		lb.leaves = hashLeaves(lb.ses)
	}
	return lb
}

// readBatches streams a large log's batches, in order, read and hashed on
// GOMAXPROCS workers.
func (v *Verifier) readBatches(ctx context.Context, r *run, log string, size int64) <-chan chan leafBatch {
	batch := r.batch
	n := int((size + batch - 1) / batch)
	return ordered(ctx, n, cap(r.sem), func(ctx context.Context, i int) leafBatch {
		from := int64(i) * batch
		return v.readBatch(ctx, r, log, from, min(from+batch, size))
	})
}

// hashLeaves recomputes the leaf hash of every present event with the
// non-validating encoder (trail.Event.AppendCanonicalStored): it gives
// Canonical's bytes for every valid event, and for a stored event that was
// altered into an invalid one, other bytes or an error, so the leaf
// comparison finds the change either way, at about half the cost. It runs
// on the calling goroutine: the read-ahead workers are the parallelism.
func hashLeaves(ses []SealedEvent) []leafHash {
	out := make([]leafHash, len(ses))
	var buf []byte
	for i := range ses {
		ev := ses[i].Event
		if ev == nil {
			continue
		}
		b, err := appendStoredCanonical(buf[:0], ev)
		if err != nil {
			out[i].err = err
			continue
		}
		out[i] = leafHash{hash: tlog.RecordHash(b), n: len(b)}
		buf = b
	}
	return out
}

// appendStoredCanonical is appendCanonical without the validation.
func appendStoredCanonical(dst []byte, ev *trail.Event) ([]byte, error) {
	b, err := ev.AppendCanonicalStored(dst)
	if err != nil {
		return dst, fmt.Errorf("trailseal: canonical encoding of event %s: %w", ev.ID, err)
	}
	return b, nil
}

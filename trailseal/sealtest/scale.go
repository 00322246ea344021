package sealtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/tlog"
)

// full is a store with every optional interface the sealer uses.
type full interface {
	trailseal.Store
	trailseal.LogStater
	trailseal.BatchReader
	trailseal.BatchCheckpointSaver
}

// counted counts the calls a sealer makes into a full store, by method.
type counted struct {
	full
	mu sync.Mutex
	n  map[string]int
}

func (c *counted) add(m string) {
	c.mu.Lock()
	c.n[m]++
	c.mu.Unlock()
}

// take returns the counts so far and starts again from zero.
func (c *counted) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

func (c *counted) Lease(ctx context.Context, name, holder string, ttl time.Duration) (int64, bool, error) {
	c.add("Lease")
	return c.full.Lease(ctx, name, holder, ttl)
}

func (c *counted) Pending(ctx context.Context, limit int) ([]trail.Event, error) {
	c.add("Pending")
	return c.full.Pending(ctx, limit)
}

func (c *counted) Seal(ctx context.Context, f trailseal.Fence, b trailseal.SealBatch) error {
	c.add("Seal")
	return c.full.Seal(ctx, f, b)
}

func (c *counted) TreeSize(ctx context.Context, log string) (int64, error) {
	c.add("TreeSize")
	return c.full.TreeSize(ctx, log)
}

func (c *counted) ReadHashes(ctx context.Context, log string, idx []int64) ([]tlog.Hash, error) {
	c.add("ReadHashes")
	return c.full.ReadHashes(ctx, log, idx)
}

func (c *counted) Leaves(ctx context.Context, log string, from, to int64) ([]trailseal.SealedEvent, error) {
	c.add("Leaves")
	return c.full.Leaves(ctx, log, from, to)
}

func (c *counted) LeafOf(ctx context.Context, id uuid.UUID) (trailseal.Leaf, error) {
	c.add("LeafOf")
	return c.full.LeafOf(ctx, id)
}

func (c *counted) Unsealed(ctx context.Context, log string) ([]uuid.UUID, error) {
	c.add("Unsealed")
	return c.full.Unsealed(ctx, log)
}

func (c *counted) SaveCheckpoint(ctx context.Context, f trailseal.Fence, cp trailseal.Checkpoint) error {
	c.add("SaveCheckpoint")
	return c.full.SaveCheckpoint(ctx, f, cp)
}

func (c *counted) Checkpoints(ctx context.Context, log string) ([]trailseal.Checkpoint, error) {
	c.add("Checkpoints")
	return c.full.Checkpoints(ctx, log)
}

func (c *counted) LatestCheckpoint(ctx context.Context, log string) (trailseal.Checkpoint, error) {
	c.add("LatestCheckpoint")
	return c.full.LatestCheckpoint(ctx, log)
}

func (c *counted) Logs(ctx context.Context) ([]string, error) {
	c.add("Logs")
	return c.full.Logs(ctx)
}

func (c *counted) LogStates(ctx context.Context) ([]trailseal.LogState, error) {
	c.add("LogStates")
	return c.full.LogStates(ctx)
}

func (c *counted) CheckpointsOf(ctx context.Context, logs []string) (map[string][]trailseal.Checkpoint, error) {
	c.add("CheckpointsOf")
	return c.full.CheckpointsOf(ctx, logs)
}

func (c *counted) TreeSizes(ctx context.Context, logs []string) (map[string]int64, error) {
	c.add("TreeSizes")
	return c.full.TreeSizes(ctx, logs)
}

func (c *counted) LeavesOf(ctx context.Context, ranges []trailseal.LogRange) ([][]trailseal.SealedEvent, error) {
	c.add("LeavesOf")
	return c.full.LeavesOf(ctx, ranges)
}

func (c *counted) HashesOf(ctx context.Context, ranges []trailseal.LogRange) ([][]tlog.Hash, error) {
	c.add("HashesOf")
	return c.full.HashesOf(ctx, ranges)
}

func (c *counted) UnsealedOf(ctx context.Context, logs []string) (map[string][]uuid.UUID, error) {
	c.add("UnsealedOf")
	return c.full.UnsealedOf(ctx, logs)
}

func (c *counted) SaveCheckpoints(ctx context.Context, f trailseal.Fence, cps []trailseal.Checkpoint) error {
	c.add("SaveCheckpoints")
	return c.full.SaveCheckpoints(ctx, f, cps)
}

// RunSealerScale checks that a sealer's work per step does not grow with the
// number of logs it extends (issue 13: with thousands of tenants the sealer
// made several round trips and one checkpoint transaction per tenant, and
// fell ever further behind ingest). On a store with every optional
// interface (trailseal.LogStater, BatchReader, BatchCheckpointSaver) it
// counts the sealer's calls: a step over hundreds of logs makes one call of
// each kind it needs, whether the sealer has just become leader (the trees'
// edges read in one query) or has extended the logs before (nothing read
// back). On any store it checks that the trees sealed across steps and a
// change of leader are exactly tlog's, every checkpoint's root is its
// tree's, and Verify finds nothing; and that SaveCheckpoints saves all or,
// fenced, none.
func RunSealerScale(t *testing.T, newLog func(t *testing.T) Instance) {
	t.Run("StepCallsDoNotGrowWithLogs", func(t *testing.T) { testStepCalls(t, newLog) })
	t.Run("SaveCheckpointsAllOrNone", func(t *testing.T) { testSaveCheckpoints(t, newLog) })
}

const scaleLogs = 300

func scaleTenant(i int) string { return fmt.Sprintf("s%03d", i) }

func testStepCalls(t *testing.T, newLog func(t *testing.T) Instance) {
	f := newFixture(t, newLog)
	var c *counted
	store := f.in.Store
	if fs, ok := store.(full); ok {
		c = &counted{full: fs, n: map[string]int{}}
		store = c
	} else {
		t.Log("the store lacks an optional interface: correctness only, calls not counted")
	}
	sealer := func(holder string) *trailseal.Sealer {
		s, err := trailseal.NewSealer(store, &trailseal.Config{
			Signer: f.signer, Origin: origin, Holder: holder, BatchSize: 5000,
			CheckpointEvents: 1, CheckpointInterval: time.Hour, Now: f.clock, LeaseTTL: time.Minute,
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	byLog := map[string][]trail.Event{}
	appendRound := func(round, each int) {
		var evs []trail.Event
		for i := range scaleLogs {
			tenant := scaleTenant(i)
			more := Events(t, tenant, round*10, each)
			byLog[tenant] = append(byLog[tenant], more...)
			evs = append(evs, more...)
		}
		f.append(evs)
	}
	// want checks one step: every appended event sealed, every log
	// checkpointed, and (when counted) at most max calls, none of them reads
	// of single logs.
	want := func(what string, st trailseal.Stats, err error, sealed int, maxCalls int, reads map[string]int) {
		t.Helper()
		if err != nil || st.Sealed != sealed || st.Logs != scaleLogs || st.Checkpoints != scaleLogs {
			t.Fatalf("%s: %+v %v; want %d sealed into %d logs, %d checkpoints", what, st, err, sealed, scaleLogs, scaleLogs)
		}
		if c == nil {
			return
		}
		n := c.take()
		total := 0
		for m, k := range n {
			total += k
			if r, ok := reads[m]; (ok && k > r) || (!ok && m != "Lease" && m != "Pending" && m != "Seal" && m != "SaveCheckpoints") {
				t.Errorf("%s: %d calls of %s (calls %v)", what, k, m, n)
			}
		}
		if total > maxCalls {
			t.Errorf("%s over %d logs: %d store calls %v, want at most %d", what, scaleLogs, total, n, maxCalls)
		}
	}

	appendRound(0, 2)
	s := sealer("first")
	st, err := s.Step(f.ctx)
	// New leader, new logs: its state in one query, nothing else read.
	want("first step", st, err, 2*scaleLogs, 6, map[string]int{"LogStates": 1})

	appendRound(1, 3)
	st, err = s.Step(f.ctx)
	// The same leader extends trees it knows: nothing read back.
	want("second step", st, err, 3*scaleLogs, 4, nil)

	// A new leader over logs of 5 leaves each: their edges in one query.
	if err := s.Release(f.ctx); err != nil {
		t.Fatal(err)
	}
	appendRound(2, 1)
	s2 := sealer("second")
	st, err = s2.Step(f.ctx)
	want("new leader's step", st, err, scaleLogs, 7, map[string]int{"LogStates": 1, "HashesOf": 1})
	if err := s2.Release(f.ctx); err != nil {
		t.Fatal(err)
	}

	// The trees are tlog's over the canonical bytes, in append order, and
	// every log's latest checkpoint is its whole tree.
	for i := range scaleLogs {
		log := scaleTenant(i)
		evs := byLog[log]
		stored, r := tlogHashes(t, evs)
		idx := make([]int64, len(stored))
		for k := range idx {
			idx[k] = int64(k)
		}
		got, err := f.in.Store.ReadHashes(f.ctx, log, idx)
		if err != nil {
			t.Fatal(err)
		}
		for k := range got {
			if got[k] != stored[k] {
				t.Fatalf("%s: stored hash %d differs from tlog.StoredHashes", log, k)
			}
		}
		root, _ := tlog.TreeHash(int64(len(evs)), r)
		cp, err := f.in.Store.LatestCheckpoint(f.ctx, log)
		if err != nil || cp.Size != int64(len(evs)) || cp.Root != root {
			t.Fatalf("%s: latest checkpoint %d %s (%v), want %d %s", log, cp.Size, cp.Root, err, len(evs), root)
		}
	}
	if rep := f.verify(nil); !rep.OK() || rep.Events != 6*scaleLogs {
		t.Fatalf("verify: %d events, %v", rep.Events, rep.Problems)
	}
}

func testSaveCheckpoints(t *testing.T, newLog func(t *testing.T) Instance) {
	f := newFixture(t, newLog)
	bs, ok := f.in.Store.(trailseal.BatchCheckpointSaver)
	if !ok {
		t.Skip("the store does not implement trailseal.BatchCheckpointSaver")
	}
	logs := []string{"acme", "globex", trailseal.PlatformLog}
	s := f.sealer("s", 100)
	// 3 events per log, checkpointed at once (their first); 2 more each,
	// not checkpointed (2 < CheckpointEvents, the interval not passed).
	for round, n := range []int{3, 2} {
		for _, log := range logs {
			f.append(Events(t, trailseal.TenantOf(log), 3*round, n))
		}
		if _, err := s.Step(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
	epoch, ok, err := f.in.Store.Lease(f.ctx, trailseal.DefaultLeaseName, "s", time.Minute)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	var cps []trailseal.Checkpoint
	for _, log := range logs {
		if cp, err := f.in.Store.LatestCheckpoint(f.ctx, log); err != nil || cp.Size != 3 {
			t.Fatalf("%s: latest checkpoint %d (%v), want 3", log, cp.Size, err)
		}
		root, err := tlog.TreeHash(5, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			return f.in.Store.ReadHashes(f.ctx, log, idx)
		}))
		if err != nil {
			t.Fatal(err)
		}
		cp, err := trailseal.SignCheckpoint(f.signer, origin, log, 5, root, f.now)
		if err != nil {
			t.Fatal(err)
		}
		cps = append(cps, cp)
	}
	stale := trailseal.Fence{Lease: trailseal.DefaultLeaseName, Epoch: epoch - 1}
	if err := bs.SaveCheckpoints(f.ctx, stale, cps); !errors.Is(err, trailseal.ErrFenced) {
		t.Fatalf("SaveCheckpoints with a stale epoch: %v, want ErrFenced", err)
	}
	for _, log := range logs {
		if cp, err := f.in.Store.LatestCheckpoint(f.ctx, log); err != nil || cp.Size != 3 {
			t.Fatalf("%s: after a fenced SaveCheckpoints the latest checkpoint is %d (%v), want 3", log, cp.Size, err)
		}
	}
	if err := bs.SaveCheckpoints(f.ctx, trailseal.Fence{Lease: trailseal.DefaultLeaseName, Epoch: epoch}, cps); err != nil {
		t.Fatal(err)
	}
	for i, log := range logs {
		got, err := f.in.Store.Checkpoints(f.ctx, log)
		if err != nil || len(got) != 2 || got[1].Note != cps[i].Note || got[1].Size != 5 || got[1].Root != cps[i].Root {
			t.Fatalf("%s: checkpoints %+v (%v), want the first and the one saved", log, got, err)
		}
	}
	if rep := f.verify(nil); !rep.OK() {
		t.Fatalf("verify: %v", rep.Problems)
	}
}

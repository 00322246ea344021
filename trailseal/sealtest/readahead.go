package sealtest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
)

// aheadStore is a store whose every Seal first appends events (as ingest
// does while a batch commits), then waits for the sealer's read ahead past
// that batch to finish before it commits: the order in which the batch
// being sealed is still pending when the next one is read. It counts the
// queue reads.
type aheadStore struct {
	trailseal.Store
	skipper trailseal.PendingSkipper
	during  func(ctx context.Context) error

	mu   sync.Mutex
	read map[*uuid.UUID]chan struct{} // closed when a PendingExcept skipping that slice returned

	pending, except, seals atomic.Int64
}

// readPast returns the channel closed when the read skipping the slice
// whose first element is at first has returned. The sealer reads ahead
// past the very slice it seals (SealBatch.Done); the reads that top up a
// batch read ahead skip a slice of their own.
func (a *aheadStore) readPast(first *uuid.UUID) chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.read[first]
	if !ok {
		c = make(chan struct{})
		a.read[first] = c
	}
	return c
}

func (a *aheadStore) Pending(ctx context.Context, limit int) ([]trail.Event, error) {
	a.pending.Add(1)
	return a.Store.Pending(ctx, limit)
}

func (a *aheadStore) PendingExcept(ctx context.Context, limit int, skip []uuid.UUID) ([]trail.Event, error) {
	a.except.Add(1)
	if len(skip) > 0 {
		defer close(a.readPast(&skip[0]))
	}
	return a.skipper.PendingExcept(ctx, limit, skip)
}

func (a *aheadStore) Seal(ctx context.Context, f trailseal.Fence, b trailseal.SealBatch) error {
	a.seals.Add(1)
	if err := a.during(ctx); err != nil {
		return err
	}
	<-a.readPast(&b.Done[0])
	return a.Store.Seal(ctx, f, b)
}

// testReadAhead: a sealer that reads its next batch while the current one
// commits (SealAll, and Run while behind) seals every event exactly once,
// also those appended during a commit, and the logs verify. On a store that
// is a PendingSkipper the steps after the first take the batch read ahead
// instead of reading the queue again. Every Seal here comes from a step
// that reads ahead (SealAll's steps before its last; its last two find
// nothing to seal), so aheadStore's Seal always has a read to wait for.
func testReadAhead(t *testing.T, newLog func(t *testing.T) Instance) {
	f := newFixture(t, newLog)
	skipper, ok := f.in.Store.(trailseal.PendingSkipper)
	if !ok {
		t.Skip("the store does not implement trailseal.PendingSkipper")
	}
	tenants := []string{"acme", "globex", ""}
	var (
		mu  sync.Mutex
		all []trail.Event
		n   int
	)
	add := func(ctx context.Context, k int) error {
		mu.Lock()
		evs := make([]trail.Event, k)
		for i := range evs {
			evs[i] = Event(t, tenants[n%len(tenants)], 5000+n)
			n++
		}
		all = append(all, evs...)
		mu.Unlock()
		return f.in.Append(ctx, evs)
	}
	if err := add(f.ctx, 23); err != nil {
		t.Fatal(err)
	}
	var appends atomic.Int64
	appends.Store(4)
	st := &aheadStore{Store: f.in.Store, skipper: skipper, read: map[*uuid.UUID]chan struct{}{}, during: func(ctx context.Context) error {
		if appends.Add(-1) < 0 {
			return nil
		}
		return add(ctx, 3)
	}}
	sl, err := trailseal.NewSealer(st, &trailseal.Config{
		Signer: f.signer, Origin: origin, Holder: "ahead", BatchSize: 5,
		CheckpointEvents: 5, CheckpointInterval: 1 << 62, Now: f.clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	stats, err := sl.SealAll(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := 23 + 4*3; stats.Sealed != want || len(all) != want {
		t.Fatalf("sealed %d of %d events appended, want %d", stats.Sealed, len(all), want)
	}
	if p, err := f.in.Store.Pending(f.ctx, 100); err != nil || len(p) != 0 {
		t.Fatalf("%d events still pending after SealAll (%v)", len(p), err)
	}
	seqs := map[trailseal.Leaf]bool{}
	var total int64
	for _, tenant := range tenants {
		n, err := f.in.Store.TreeSize(f.ctx, trailseal.LogName(tenant))
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	for _, ev := range all {
		l, err := f.in.Store.LeafOf(f.ctx, ev.ID)
		if err != nil {
			t.Fatalf("event %s: %v", ev.ID, err)
		}
		l.Hash, l.EventID = [32]byte{}, uuid.Nil
		if seqs[l] {
			t.Fatalf("two events at %s seq %d", l.Log, l.Seq)
		}
		seqs[l] = true
	}
	if total != int64(len(all)) {
		t.Fatalf("the logs hold %d leaves, want %d", total, len(all))
	}
	if rep := f.verify(nil); !rep.OK() {
		t.Fatalf("verify: %v", rep.Problems)
	}
	// SealAll reads the queue's head itself at its first and last step only;
	// every step between takes what the one before read during its commit,
	// topped up past it.
	if e, p, s := st.except.Load(), st.pending.Load(), st.seals.Load(); e == 0 || p >= s {
		t.Fatalf("%d reads ahead and %d plain queue reads for %d seals: the steps did not read ahead", e, p, s)
	}
}

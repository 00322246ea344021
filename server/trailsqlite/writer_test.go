package trailsqlite_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailseal"
	"github.com/trailhq/trail/trailseal/sealtest"
)

// TestWritersInProcessNeverHitTheBusyTimeout: the store's writers in one
// process (Append, AppendGathered and the sealer's transactions) queue for
// the write lock in the process, so that SQLite's busy timeout, here 1 ms,
// only ever counts against other processes. Before the queue, writers raced
// in SQLite's busy handler and, with 8 of them, one failed with
// SQLITE_BUSY within a few appends at this timeout (with the default 10 s,
// once in eight 30-second sealing benchmarks, issue 13).
func TestWritersInProcessNeverHitTheBusyTimeout(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, &trailsqlite.Config{BusyTimeout: time.Millisecond})
	signer, _ := sealtest.TestKey(t, "trail.test")
	sl, err := trailseal.NewSealer(s, &trailseal.Config{Signer: signer, BatchSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	const writers, rounds, batch = 8, 10, 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers*rounds+1)
	stop := make(chan struct{})
	sealed := make(chan int, 1)
	go func() {
		n := 0
		defer func() { sealed <- n }()
		for {
			select {
			case <-stop:
				st, err := sl.SealAll(ctx)
				if err != nil {
					errs <- err
				}
				n += st.Sealed
				return
			default:
			}
			st, err := sl.Step(ctx)
			if err != nil {
				errs <- err
			}
			n += st.Sealed
		}
	}()
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				evs := make([]trail.Event, batch)
				for i := range evs {
					evs[i] = newEvent(t, "acme", "busy.test")
				}
				var err error
				if (w+r)%2 == 0 {
					_, err = s.Append(ctx, evs)
				} else {
					_, err = s.AppendGathered(ctx, func() []trail.Event { return evs })
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	n := <-sealed
	close(errs)
	for err := range errs {
		t.Errorf("writer or sealer: %v", err)
	}
	if want := writers * rounds * batch; n != want && !t.Failed() {
		t.Errorf("sealed %d events, want %d", n, want)
	}
}

// TestAppendGathered: gather is called once the writer holds the lock, and
// its events are stored; a gather that returns nothing writes nothing.
func TestAppendGathered(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, nil)
	ev := newEvent(t, "acme", "gathered")
	res, err := s.AppendGathered(ctx, func() []trail.Event { return []trail.Event{ev} })
	if err != nil || len(res) != 1 || res[0].ID != ev.ID || res[0].Duplicate {
		t.Fatalf("AppendGathered: %v %+v", err, res)
	}
	if _, err := s.Get(ctx, ev.ID); err != nil {
		t.Fatalf("gathered event not stored: %v", err)
	}
	res, err = s.AppendGathered(ctx, func() []trail.Event { return nil })
	if err != nil || res != nil {
		t.Fatalf("empty gather: %v %+v", err, res)
	}
	bad := ev
	bad.ID = [16]byte{}
	if _, err := s.AppendGathered(ctx, func() []trail.Event { return []trail.Event{bad} }); err == nil {
		t.Fatal("AppendGathered stored an event without an ID")
	}
}

package trailarchive

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// Two schedulers on one store: only the lease holder runs; the other takes
// over once the first releases.
func TestSchedulerLease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, 24*time.Hour)
	f.setPolicies(t)
	a := &Scheduler{Runner: f.runner(t, nil), Holder: "a", Interval: time.Minute}
	b := &Scheduler{Runner: f.runner(t, nil), Holder: "b", Interval: time.Minute}
	ran, err := a.Step(ctx)
	if err != nil || !ran {
		t.Fatalf("a: %v %v", ran, err)
	}
	if st := a.Stats(); st.Runs != 1 || st.Purged == 0 || st.Archived == 0 || st.LastSuccess.IsZero() {
		t.Fatalf("a stats: %+v", st)
	}
	ran, err = b.Step(ctx)
	if err != nil || ran {
		t.Fatalf("b ran while a holds the lease: %v %v", ran, err)
	}
	if _, _, err := f.store.Lease(ctx, LeaseName, "a", 0); err != nil {
		t.Fatal(err)
	}
	ran, err = b.Step(ctx)
	if err != nil || !ran {
		t.Fatalf("b after release: %v %v", ran, err)
	}
	if st := b.Stats(); st.Purged != 0 {
		t.Fatalf("second run purged %d again", st.Purged)
	}
}

// A Scheduler gated by a leader (the sealer's lease in trail serve) runs
// only while that leader says it leads.
func TestSchedulerFollowsLeader(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, 24*time.Hour)
	f.setPolicies(t)
	leading := false
	s := &Scheduler{Runner: f.runner(t, nil), Holder: "a", Interval: time.Minute, Leader: func() bool { return leading }}
	before := f.count(t, "acme")
	if ran, err := s.Step(ctx); err != nil || ran {
		t.Fatalf("ran without leading: %v %v", ran, err)
	}
	if f.count(t, "acme") != before || s.Stats().Runs != 0 {
		t.Fatal("a follower purged")
	}
	leading = true
	if ran, err := s.Step(ctx); err != nil || !ran {
		t.Fatalf("leader did not run: %v %v", ran, err)
	}
	if f.count(t, "acme") >= before {
		t.Fatal("the leader's run purged nothing")
	}
}

// Run retries soon when it may not run yet (the sealer has not taken its
// lease), instead of waiting a whole Interval.
func TestSchedulerRunRetriesUntilLeader(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 24*time.Hour)
	f.setPolicies(t)
	var leading atomic.Bool
	s := &Scheduler{Runner: f.runner(t, nil), Holder: "a", Interval: time.Hour, RetryInterval: 10 * time.Millisecond,
		Leader: leading.Load}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	time.Sleep(50 * time.Millisecond)
	if s.Stats().Runs != 0 {
		t.Fatal("ran before leading")
	}
	leading.Store(true)
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Runs == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no run within 10 s of leading (Interval is an hour: Run did not retry)")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}

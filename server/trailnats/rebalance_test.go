package trailnats_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/trailhq/trail/server/trailnats"
)

// TestSinkStartedLaterTakesShare: sink A works every partition alone while
// producers publish; sink B, started later, gets its share of the
// partitions (A hands them back with JetStream's Unpin), and both store
// events. Then A stops without a word, as a killed process does (its last
// batch unacknowledged, its pins left to time out), and B takes every
// partition. Nothing acknowledged is lost, duplicated or made up, and each
// tenant's events are stored in publish order through both moves.
func TestSinkStartedLaterTakesShare(t *testing.T) {
	natsTargets(t, func(t *testing.T, url string, replicas int) {
		st, pool, schema := pgStore(t)
		_, js := connect(t, url)
		stream, subject := uniqueStream()
		cfg := trailnats.Config{Stream: stream, Subject: subject, Partitions: 8, Replicas: replicas}
		setup(t, js, cfg)
		t.Cleanup(func() { js.DeleteStream(context.Background(), stream) })
		// AckWait and PinnedTTL leave room for a loaded machine: a pin that
		// times out moves a partition too, and this test is about Unpin.
		scfg := trailnats.SinkConfig{Config: cfg, Batch: 50, AckWait: 3 * time.Second, PinnedTTL: 6 * time.Second,
			MaxWait: 100 * time.Millisecond, Rebalance: 250 * time.Millisecond}
		os := newOrderStore(st)

		// Producers on tenants covering every partition, until stopped.
		var ts []string
		covered := map[int]bool{}
		for _, tenant := range tenants(64) {
			if p := trailnats.Partition(tenant, cfg.Partitions); !covered[p] || len(ts) < 16 {
				covered[p] = true
				ts = append(ts, tenant)
			}
		}
		if len(covered) != cfg.Partitions {
			t.Fatalf("tenants cover %d of %d partitions", len(covered), cfg.Partitions)
		}
		pub := trailnats.NewPublisher(js, cfg)
		l := newLoad()
		loadCtx, stopLoad := context.WithCancel(context.Background())
		defer stopLoad()
		var loadErr error
		var lw sync.WaitGroup
		lw.Go(func() { loadErr = l.run(loadCtx, pub, ts, 1_000_000, 10, nil) })

		ctxA, killA := context.WithCancel(context.Background())
		ctxB, stopB := context.WithCancel(context.Background())
		var sw sync.WaitGroup
		defer func() { killA(); stopB(); sw.Wait() }()
		a := trailnats.NewSink(js, os, scfg)
		sw.Go(func() { a.Run(ctxA) })
		waitFor(t, "sink A holding every partition", time.Minute, func() bool { return a.Stats().Held == cfg.Partitions })

		b := trailnats.NewSink(js, os, scfg)
		sw.Go(func() { b.Run(ctxB) })
		aEvents := a.Stats().Events
		waitFor(t, "A and B holding half the partitions each, both storing", time.Minute, func() bool {
			sa, sb := a.Stats(), b.Stats()
			return sa.Held == cfg.Partitions/2 && sb.Held == cfg.Partitions/2 && sb.Events > 0 && sa.Events > aEvents
		})
		t.Logf("after B started: A %+v; B %+v", a.Stats(), b.Stats())
		if got := a.Stats().Released; got == 0 {
			t.Errorf("A released no partition: B's share came from pins timing out, not from A handing them back")
		}

		killA()
		bEvents := b.Stats().Events
		waitFor(t, "B holding every partition after A stopped", time.Minute, func() bool {
			return b.Stats().Held == cfg.Partitions && b.Stats().Events > bEvents
		})
		stopLoad()
		lw.Wait()
		if loadErr != nil && !errors.Is(loadErr, context.Canceled) {
			t.Fatal(loadErr)
		}
		l.check(t, waitStored(t, l, pool, schema, 2*time.Minute))
		l.checkOrder(t, os)
		t.Logf("A %+v; B %+v", a.Stats(), b.Stats())
	})
}

// waitFor polls cond (the sinks' or the stream's state) until it holds.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: not %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond) // polling state
	}
}

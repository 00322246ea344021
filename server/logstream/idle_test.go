package logstream

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
)

// leafCounter is a real store's sealed log whose Leaves reads are counted.
type leafCounter struct {
	trailseal.Store
	trailseal.BatchReader
	reads atomic.Int64
}

func (c *leafCounter) Leaves(ctx context.Context, log string, from, to int64) ([]trailseal.SealedEvent, error) {
	c.reads.Add(1)
	return c.Store.Leaves(ctx, log, from, to)
}

// idleTenants appends one event to each of n tenants and seals them.
func (f *fixture) idleTenants(t testing.TB, n int) {
	t.Helper()
	evs := make([]trail.Event, n)
	for i := range evs {
		evs[i] = trail.Event{Tenant: fmt.Sprintf("idle%04d", i), Actor: trail.Actor{Type: trail.ActorUser, ID: "u1"}, Action: "user.update",
			Target: trail.Target{Type: "user", ID: "u1"}}
		if err := evs[i].Normalize(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.events.Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	f.step(t)
}

// allTenantStream creates a caught-up all-tenant webhook stream and counts
// the runner's log reads from then on.
func (f *fixture) allTenantStream(t testing.TB) (*webhookReceiver, *leafCounter) {
	t.Helper()
	rcv := newWebhookReceiver(t, "whsec_x")
	f.dialer.RootCAs = rcv.pool()
	if _, err := f.m.Create(adminCtx(), Caller{All: true}, CreateRequest{AllTenants: true, Destination: Destination{Type: TypeWebhook, URL: rcv.url()},
		Secret: "whsec_x", Batching: Batching{MaxEvents: 64, MaxWaitMS: 1}}); err != nil {
		t.Fatal(err)
	}
	lc := &leafCounter{Store: f.log, BatchReader: f.log.(trailseal.BatchReader)}
	f.m.Log = lc
	return rcv, lc
}

// TestAllTenantStreamIdlePoll: a poll of an all-tenant stream reads the
// logs of the tenants with new events only — none when every tenant is
// idle — and still delivers a new event of any one of them.
func TestAllTenantStreamIdlePoll(t *testing.T) {
	eachStore(t, func(t *testing.T, f *fixture) {
		f.idleTenants(t, 200)
		rcv, lc := f.allTenantStream(t)
		f.step(t) // delivers the stream's own log_stream.create (a platform event)
		lc.reads.Store(0)
		f.step(t)
		if n := lc.reads.Load(); n != 0 {
			t.Fatalf("an idle poll read %d logs, want 0", n)
		}
		f.record(t, "idle0123", 1)
		f.until(t, "the new event", func() bool { return rcv.count() >= 2 })
		if n := lc.reads.Load(); n < 1 || n > 2 {
			t.Fatalf("delivering one tenant's event read %d logs, want 1 (or 2 across two polls)", n)
		}
	})
}

// BenchmarkAllTenantIdlePoll: one poll of a caught-up all-tenant stream
// over 1,000 idle tenants.
func BenchmarkAllTenantIdlePoll(b *testing.B) {
	for _, kind := range []string{onSQLite, onPostgres} {
		b.Run(kind, func(b *testing.B) {
			f := newFixture(b, kind)
			f.idleTenants(b, 1000)
			_, lc := f.allTenantStream(b)
			ctx := context.Background()
			f.step(b) // delivers the stream's own log_stream.create
			lc.reads.Store(0)
			for b.Loop() {
				if err := f.r.Step(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(lc.reads.Load())/float64(b.N), "log-reads/op")
		})
	}
}

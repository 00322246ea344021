//go:build unix

package trail_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailtest"
)

// benchSubscription is a realistic object to diff: ten fields of the usual
// kinds, one nested struct, one time, one slice, one redacted field.
type benchSubscription struct {
	ID        string           `json:"id"`
	Tenant    string           `json:"tenant"`
	Plan      string           `json:"plan"`
	Seats     int              `json:"seats"`
	PriceCent int64            `json:"price_cents"`
	Active    bool             `json:"active"`
	Renews    time.Time        `json:"renews_at"`
	Features  []string         `json:"features"`
	Billing   benchBillingInfo `json:"billing"`
	CardToken string           `json:"card_token" trail:"redact"`
}

type benchBillingInfo struct {
	Email   string `json:"email"`
	Country string `json:"country"`
}

func benchPair() (before, after benchSubscription) {
	before = benchSubscription{
		ID: "sub_01HZX3", Tenant: "acme", Plan: "team", Seats: 12, PriceCent: 14900, Active: true,
		Renews:   time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		Features: []string{"sso", "audit-log", "api"},
		Billing:  benchBillingInfo{Email: "billing@acme.example", Country: "FR"}, CardToken: "tok_abc",
	}
	after = before
	after.Plan = "business"      // change 1
	after.Billing.Country = "DE" // change 2 (nested)
	return before, after
}

// cpuTime returns the CPU time this process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuPerOp starts measuring the process's CPU time (GC included); the
// returned func reports it per operation as cpu-ns/op. On a shared, loaded
// machine it moves far less than ns/op, which also counts the time spent
// waiting for a core. Use: defer cpuPerOp(b)().
func cpuPerOp(b *testing.B) func() {
	start := cpuTime(b)
	return func() { b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op") }
}

// BenchmarkDiff diffs a 10-field struct with 2 changes: the cost of
// trail.Diff on a typical update.
func BenchmarkDiff(b *testing.B) {
	before, after := benchPair()
	b.Run("struct-2-changes", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuPerOp(b)()
		for b.Loop() {
			cs, err := trail.Diff(&before, &after)
			if err != nil || len(cs) != 2 {
				b.Fatalf("Diff = %v, %v", cs, err)
			}
		}
	})
	b.Run("struct-unchanged", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuPerOp(b)()
		for b.Loop() {
			if cs, err := trail.Diff(&before, &before); err != nil || cs != nil {
				b.Fatalf("Diff = %v, %v", cs, err)
			}
		}
	})
	mb := map[string]any{"plan": "team", "seats": 12.0, "active": true, "features": []any{"sso", "api"},
		"billing": map[string]any{"email": "billing@acme.example", "country": "FR"}}
	ma := map[string]any{"plan": "business", "seats": 12.0, "active": true, "features": []any{"sso", "api"},
		"billing": map[string]any{"email": "billing@acme.example", "country": "DE"}}
	b.Run("map-2-changes", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuPerOp(b)()
		for b.Loop() {
			if cs, err := trail.Diff(mb, ma); err != nil || len(cs) != 2 {
				b.Fatalf("Diff = %v, %v", cs, err)
			}
		}
	})
}

// benchEvent is a typical event: target, description, two changes, two
// metadata keys; tenant and actor come from the context.
func benchEvent() trail.Event {
	return trail.Event{
		Action:      "subscription.update",
		Target:      trail.Target{Type: "subscription", ID: "sub_01HZX3", Name: "Acme team plan"},
		Description: "Changed subscription plan to business",
		Changes: []trail.Change{
			{Field: "plan", Old: []byte(`"team"`), New: []byte(`"business"`)},
			{Field: "billing.country", Old: []byte(`"FR"`), New: []byte(`"DE"`)},
		},
		Metadata: map[string]any{"reason": "upgrade", "seats": 12},
	}
}

func benchContext() context.Context {
	ctx := trail.WithActor(context.Background(), trail.Actor{Type: trail.ActorUser, ID: "42", Name: "Ada"})
	ctx = trail.WithRequest(ctx, trail.Request{ID: "req-7f3a", IP: "192.0.2.10", UserAgent: "bench/1.0"})
	return trail.WithTenant(ctx, "acme")
}

// BenchmarkRecord measures trail.Client over the in-memory store: the
// library's own cost per event (context, normalize, validate, IDs), with
// storage nearly free.
func BenchmarkRecord(b *testing.B) {
	ctx := benchContext()
	store := trailtest.NewStore()
	client, err := trail.NewClient(store, &trail.Config{Source: "billing", Plaintext: true})
	if err != nil {
		b.Fatal(err)
	}
	// resetEvery keeps the store's memory bounded on long runs.
	const resetEvery = 20000
	b.Run("one", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuPerOp(b)()
		n := 0
		for b.Loop() {
			if n++; n%resetEvery == 0 {
				store.Reset()
			}
			if _, err := client.Record(ctx, benchEvent()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("batch-100", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuPerOp(b)()
		batch := make([]trail.Event, 100)
		n := 0
		for b.Loop() {
			if n++; n%(resetEvery/100) == 0 {
				store.Reset()
			}
			for i := range batch {
				batch[i] = benchEvent()
			}
			if _, err := client.RecordMany(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/event")
	})
	b.Run("prepare-only", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuPerOp(b)()
		for b.Loop() {
			if _, err := client.Prepare(ctx, benchEvent()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("tx", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuPerOp(b)()
		n := 0
		for b.Loop() {
			if n++; n%resetEvery == 0 {
				store.Reset()
			}
			tx := store.Begin()
			if _, err := client.RecordTx(ctx, tx, benchEvent()); err != nil {
				b.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

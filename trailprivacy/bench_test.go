package trailprivacy

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/trailtest"
)

// benchEvents returns n realistic events: 10 tenants, 1,000 actors and
// targets, personal actor fields, three changes (one deny-listed), and
// metadata with a token.
func benchEvents(n int) []trail.Event {
	evs := make([]trail.Event, n)
	for i := range evs {
		u := i % 1000
		evs[i] = trail.Event{
			Tenant: fmt.Sprintf("tenant-%d", u%10),
			Actor: trail.Actor{Type: trail.ActorUser, ID: fmt.Sprint(u), Name: fmt.Sprintf("User Number %d", u),
				Email: fmt.Sprintf("user%d@example.com", u), IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"},
			Action:      "subscription.update",
			Target:      trail.Target{Type: "subscription", ID: fmt.Sprint(u + 5000), Name: fmt.Sprintf("Subscription of %d", u)},
			Description: "Changed subscription plan to pro",
			Changes: []trail.Change{
				trail.Changed("plan", "free", "pro"),
				trail.Changed("seats", 3, 5),
				trail.Changed("billing.card_last4", "4242", "1881"),
			},
			Metadata: map[string]any{"reason": "upgrade", "request": map[string]any{"api_token": "tok_live_ABCDEF", "path": "/v1/subscriptions"}},
		}
	}
	return evs
}

func benchRecordMany(b *testing.B, transform trail.Transformer) {
	ctx := context.Background()
	client, err := trail.NewClient(newMemStore(), &trail.Config{Transform: transform, Plaintext: transform == nil, NoDefaultRedaction: true})
	if err != nil {
		b.Fatal(err)
	}
	const batch = 100
	src := benchEvents(1000)
	// Warm up: every subject's data key exists, as in a running service.
	if transform != nil {
		for i := range src {
			ev := src[i]
			if err := transform.Transform(ctx, &ev); err != nil {
				b.Fatal(err)
			}
		}
	}
	evs := make([]trail.Event, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for j := range evs {
			evs[j] = src[(i*batch+j)%len(src)]
			evs[j].ID = uuid.Nil
		}
		if _, err := client.RecordMany(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkRecordMany compares Client.RecordMany (batches of 100 over an
// in-memory store) without and with the privacy Transformer, in one run.
func BenchmarkRecordMany(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchRecordMany(b, nil) })
	b.Run("privacy", func(b *testing.B) {
		p, _ := newTestPrivacy(b, "seats pii\n")
		benchRecordMany(b, p)
	})
}

// BenchmarkTransform measures Transform alone on a normalized event (the
// metadata is cloned each time, since Transform rewrites it in place).
func BenchmarkTransform(b *testing.B) {
	ctx := context.Background()
	p, _ := newTestPrivacy(b, "seats pii\n")
	src := benchEvents(1000)
	for i := range src {
		if err := src[i].Normalize(); err != nil {
			b.Fatal(err)
		}
		ev := src[i]
		ev.Metadata = cloneJSON(ev.Metadata).(map[string]any)
		if err := p.Transform(ctx, &ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ev := src[i%len(src)]
		ev.Metadata = cloneJSON(ev.Metadata).(map[string]any)
		if err := p.Transform(ctx, &ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReveal measures Reveal of a stored event with live keys.
func BenchmarkReveal(b *testing.B) {
	ctx := context.Background()
	p, _ := newTestPrivacy(b, "seats pii\n")
	src := benchEvents(1000)
	for i := range src {
		if err := src[i].Normalize(); err != nil {
			b.Fatal(err)
		}
		if err := p.Transform(ctx, &src[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ev := src[i%len(src)]
		if err := p.Reveal(ctx, &ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHashFor measures one pseudonym.
func BenchmarkHashFor(b *testing.B) {
	p, _ := newTestPrivacy(b, "")
	b.ReportAllocs()
	for b.Loop() {
		_ = p.HashFor("acme", "alice@example.com")
	}
}

// BenchmarkRecordManyRatio interleaves batches of 100 without and with the
// Transformer in one loop, so that both see the same machine load, and
// reports privacy throughput / plain throughput as "ratio": over this
// package's JSON-keeping memStore and over trailtest's in-memory store.
func BenchmarkRecordManyRatio(b *testing.B) {
	b.Run("memstore", func(b *testing.B) { benchRatio(b, newMemStore(), newMemStore()) })
	b.Run("trailtest", func(b *testing.B) { benchRatio(b, trailtest.NewStore(), trailtest.NewStore()) })

}

func benchRatio[TTx any](b *testing.B, plainStore, privStore trail.TxStore[TTx]) {
	ctx := context.Background()
	p, _ := newTestPrivacy(b, "seats pii\n")
	plain, err := trail.NewClient(plainStore, &trail.Config{Plaintext: true, NoDefaultRedaction: true})
	if err != nil {
		b.Fatal(err)
	}
	private, err := trail.NewClient(privStore, &trail.Config{Transform: p})
	if err != nil {
		b.Fatal(err)
	}
	const batch = 100
	src := benchEvents(1000)
	for i := range src {
		ev := src[i]
		if err := p.Transform(ctx, &ev); err != nil {
			b.Fatal(err)
		}
	}
	evs := make([]trail.Event, batch)
	fill := func(i int) {
		for j := range evs {
			evs[j] = src[(i*batch+j)%len(src)]
			evs[j].ID = uuid.Nil
		}
	}
	testenv.InterleaveRatio(b, batch, "plain", "privacy",
		func(i int) error { fill(i); _, err := plain.RecordMany(ctx, evs); return err },
		func(i int) error { fill(i); _, err := private.RecordMany(ctx, evs); return err })
}

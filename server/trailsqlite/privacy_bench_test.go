package trailsqlite_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailprivacy"
)

// privacyBenchEvents are realistic events with personal actor and target
// fields, a deny-listed change and a token in metadata: 1,000 subjects.
func privacyBenchEvents(n int) []trail.Event {
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

// BenchmarkPrivacyIngestRatio records batches of 100 into two SQLite files,
// one plain and one through the privacy layer (its data keys in the same
// file, as `trail` runs), interleaved batch by batch so that both see the
// same machine load. "ratio" is privacy throughput / plain throughput
// (target ≥ 0.8).
func BenchmarkPrivacyIngestRatio(b *testing.B) {
	ctx := context.Background()
	open := func(name string) *trailsqlite.Store {
		st, err := trailsqlite.Open(ctx, filepath.Join(b.TempDir(), name+".db"), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		return st
	}
	plainStore, privStore := open("plain"), open("privacy")
	ks := trailprivacy.NewSQLKeyStore(privStore.DB())
	if err := ks.Init(ctx); err != nil {
		b.Fatal(err)
	}
	kms, _ := trailprivacy.NewLocalKMS(bytes.Repeat([]byte{3}, 32))
	pol, _ := trailprivacy.ParsePolicy("seats pii\n")
	p, err := trailprivacy.New(ctx, trailprivacy.Config{Policy: pol, KMS: kms, Keys: ks})
	if err != nil {
		b.Fatal(err)
	}
	plain, _ := trail.NewClient(plainStore, &trail.Config{Plaintext: true, NoDefaultRedaction: true}) // the baseline: no processing
	private, _ := trail.NewClient(privStore, &trail.Config{Transform: p})
	src := privacyBenchEvents(1000)
	for i := range src { // every subject has its data key, as in a running service
		ev := src[i]
		if err := p.Transform(ctx, &ev); err != nil {
			b.Fatal(err)
		}
	}
	const batch = 100
	evs := make([]trail.Event, batch)
	fill := func(i int) {
		for j := range evs {
			evs[j] = src[(i*batch+j)%len(src)]
			evs[j].ID = uuid.Nil
		}
	}
	var tPlain, tPriv time.Duration
	for i := 0; b.Loop(); i++ {
		fill(i)
		t0 := time.Now()
		if _, err := plain.RecordMany(ctx, evs); err != nil {
			b.Fatal(err)
		}
		fill(i)
		t1 := time.Now()
		if _, err := private.RecordMany(ctx, evs); err != nil {
			b.Fatal(err)
		}
		tPlain += t1.Sub(t0)
		tPriv += time.Since(t1)
	}
	b.ReportMetric(float64(tPlain)/float64(tPriv), "ratio")
	b.ReportMetric(float64(b.N*batch)/tPlain.Seconds(), "plain-events/s")
	b.ReportMetric(float64(b.N*batch)/tPriv.Seconds(), "privacy-events/s")
}

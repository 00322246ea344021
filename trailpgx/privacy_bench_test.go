package trailpgx

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/trailprivacy"
)

// BenchmarkPrivacyRatio interleaves batches of 100 events recorded into two
// stores of one PostgreSQL server, without and with the privacy layer of
// the one-call setup (deny-list, personal fields encrypted, a pii change),
// so that both see the same load, and reports privacy throughput / plain
// throughput as "ratio" (wall time) and "cpu-ratio" (this process's CPU).
// Subjects are warmed up first: every data key exists, as in a running
// service.
func BenchmarkPrivacyRatio(b *testing.B) {
	ctx := context.Background()
	p := benchPool(b)
	var key [32]byte
	for i := range key {
		key[i] = byte(i * 7)
	}
	kms, err := trailprivacy.NewLocalKMS(key[:])
	if err != nil {
		b.Fatal(err)
	}
	pol, err := trailprivacy.ParsePolicy("seats pii\n")
	if err != nil {
		b.Fatal(err)
	}
	priv, err := trailprivacy.New(ctx, trailprivacy.Config{Policy: pol, KMS: kms, Keys: trailprivacy.NewMemoryKeyStore()})
	if err != nil {
		b.Fatal(err)
	}
	plain, err := trail.NewClient[pgx.Tx](benchStore(b, p), &trail.Config{Plaintext: true, NoDefaultRedaction: true})
	if err != nil {
		b.Fatal(err)
	}
	private, err := trail.NewClient[pgx.Tx](benchStore(b, p), &trail.Config{Transform: priv})
	if err != nil {
		b.Fatal(err)
	}
	src := benchEvents(1000, rand.New(rand.NewPCG(1, 2)))
	for i := range src {
		u := i % 1000
		src[i].Tenant = fmt.Sprintf("tenant-%d", u%10)
		src[i].Actor = trail.Actor{Type: trail.ActorUser, ID: fmt.Sprint(u), Name: fmt.Sprintf("User Number %d", u),
			Email: fmt.Sprintf("user%d@example.com", u), IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}
		src[i].Target.Name = fmt.Sprintf("Object of %d", u)
		src[i].Metadata = map[string]any{"token": "t-secret", "ticket": "OPS-311"}
		ev := src[i]
		if err := priv.Transform(ctx, &ev); err != nil {
			b.Fatal(err)
		}
	}
	const batch = 100
	evs := make([]trail.Event, batch)
	fill := func(i int) {
		for j := range evs {
			evs[j] = src[(i*batch+j)%len(src)]
			evs[j].ID = uuid.Nil
			evs[j].RecordedAt = time.Time{}
		}
	}
	testenv.InterleaveRatio(b, batch, "plain", "privacy",
		func(i int) error { fill(i); _, err := plain.RecordMany(ctx, evs); return err },
		func(i int) error { fill(i); _, err := private.RecordMany(ctx, evs); return err })
}

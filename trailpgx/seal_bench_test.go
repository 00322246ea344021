package trailpgx

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
	"github.com/trailhq/trail/trailseal/sealtest"
)

// BenchmarkSealQueueRecordTx measures what sealing costs a business
// transaction (BEGIN, one UPDATE, RecordTx, COMMIT), in one run, the
// variants taking turns in rotating order:
//
//   - queue-off: the seal queue trigger disabled (the write path before
//     migration 0004);
//   - queue-on: the trigger adds the pending row in the event's statement;
//   - queue-on+sealer: the same while a sealer seals continuously (every
//     10 ms) in the same database: business transactions must not wait on
//     it.
//
// Each variant has a schema of its own. *_vs_off is queue-off's time over
// the variant's (1.0 = free); p99 is per transaction.
//
//	go test -run '^$' -bench SealQueueRecordTx -benchtime 2000x ./trailpgx/
func BenchmarkSealQueueRecordTx(b *testing.B) {
	p := benchPool(b)
	ctx := trail.WithActor(trail.WithTenant(context.Background(), "acme"), trail.Actor{Type: trail.ActorUser, ID: "42"})
	type variant struct {
		name  string
		s     *Store
		c     *trail.Client[pgx.Tx]
		tbl   string
		times []time.Duration
	}
	var vs []*variant
	for _, name := range []string{"queue-off", "queue-on", "queue-on+sealer"} {
		s := benchStore(b, p)
		c, err := trail.NewClient[pgx.Tx](s, &trail.Config{Plaintext: true})
		if err != nil {
			b.Fatal(err)
		}
		v := &variant{name: name, s: s, c: c, tbl: s.schema + ".subscriptions"}
		if _, err := p.Exec(ctx, "CREATE TABLE "+v.tbl+" (id int PRIMARY KEY, plan text NOT NULL); INSERT INTO "+v.tbl+" SELECT g, 'free' FROM generate_series(1, 1000) g"); err != nil {
			b.Fatal(err)
		}
		if name == "queue-off" {
			if _, err := p.Exec(ctx, "ALTER TABLE "+s.schema+".events DISABLE TRIGGER events_seal_queue"); err != nil {
				b.Fatal(err)
			}
		}
		vs = append(vs, v)
	}
	sealed := 0
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	{
		signer, _ := sealtest.TestKey(b, "trail.test")
		sl, err := trailseal.NewSealer(vs[2].s, &trailseal.Config{Signer: signer, Origin: "trail.test", PollInterval: 10 * time.Millisecond,
			CheckpointInterval: time.Second, OnStep: func(st trailseal.Stats) { sealed += st.Sealed }})
		if err != nil {
			b.Fatal(err)
		}
		go func() { defer close(done); sl.Run(sctx) }()
	}
	defer func() { stop(); <-done }()
	plans := []string{"free", "pro", "team"}
	one := func(v *variant, i int) time.Duration {
		t0 := time.Now()
		tx, err := p.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		plan := plans[i%3]
		if _, err := tx.Exec(ctx, "UPDATE "+v.tbl+" SET plan = $1 WHERE id = $2", plan, i%1000+1); err != nil {
			b.Fatal(err)
		}
		if _, err := v.c.RecordTx(ctx, tx, trail.Event{Action: "subscription.update",
			Target:      trail.Target{Type: "subscription", ID: fmt.Sprint(i%1000 + 1)},
			Description: "Changed subscription plan to " + plan + " for tenant acme",
			Changes:     []trail.Change{trail.Changed("plan", "free", plan)}}); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	for i := range 50 { // warm up every schema
		for _, v := range vs {
			one(v, i)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		for k := range vs {
			v := vs[(i+k)%len(vs)]
			v.times = append(v.times, one(v, i))
		}
	}
	b.StopTimer()
	stop()
	<-done
	total := func(ts []time.Duration) (sum time.Duration) {
		for _, t := range ts {
			sum += t
		}
		return sum
	}
	off := total(vs[0].times)
	for _, v := range vs {
		t := total(v.times)
		slices.Sort(v.times)
		b.ReportMetric(float64(t.Nanoseconds())/float64(b.N), v.name+"_ns/tx")
		b.ReportMetric(float64(v.times[len(v.times)*99/100].Nanoseconds()), v.name+"_p99_ns")
		if v != vs[0] {
			b.ReportMetric(off.Seconds()/t.Seconds(), v.name+"_vs_off")
		}
	}
	b.ReportMetric(float64(sealed), "sealed")
}

// BenchmarkPgxSealTenants seals 20,000 pending events of 2,000 tenants
// (events/s), the sealer's whole work without ingest beside it: reading the
// queue, hashing, writing leaves, stored hashes, log sizes and one
// checkpoint per tenant. Before the sealer kept each tree's edge and saved
// a step's checkpoints together, every tenant cost it several round trips
// and a transaction of its own.
//
//	go test -run '^$' -bench PgxSealTenants -benchtime 3x ./trailpgx/
func BenchmarkPgxSealTenants(b *testing.B) {
	p := benchPool(b)
	ctx := context.Background()
	signer, _ := sealtest.TestKey(b, "trail.test")
	evs := benchEvents(20000, rand.New(rand.NewPCG(1, 2)))
	var sealT time.Duration
	for b.Loop() {
		b.StopTimer()
		s := benchStore(b, p)
		for i := range evs {
			evs[i].ID = uuid.Must(uuid.NewV7())
			evs[i].Tenant = fmt.Sprintf("t%04d", i%2000)
		}
		if _, err := s.Append(ctx, evs); err != nil {
			b.Fatal(err)
		}
		sl, err := trailseal.NewSealer(s, &trailseal.Config{Signer: signer, Origin: "trail.test"})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		st, err := sl.SealAll(ctx)
		sealT += time.Since(t0)
		if err != nil || st.Sealed != len(evs) || st.Logs != 2000 {
			b.Fatal(err, st)
		}
	}
	b.ReportMetric(float64(len(evs))*float64(b.N)/sealT.Seconds(), "events/s")
}

package trailpgx

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
)

// Benchmarks, run with:
//
//	go test -run '^$' -bench . -benchtime 20x ./trailpgx/
//
// BenchmarkIngest compares Store.Append (COPY path) with a raw pgx COPY of
// the same rows into an identical table — same partitions, same indexes, no
// idempotency key, no seal queue — in one run, alternating
// batches so that both see the same table sizes and machine load. The raw
// side gets its rows already built; Trail's side includes encoding them.

func benchPool(b testing.TB) *pgxpool.Pool {
	b.Helper()
	p, err := pgxpool.New(context.Background(), testenv.PostgresDSN())
	if err == nil {
		err = p.Ping(context.Background())
	}
	if err != nil {
		testenv.Unavailable(b, "PostgreSQL", err)
	}
	b.Cleanup(p.Close)
	return p
}

func benchStore(b testing.TB, p *pgxpool.Pool) *Store {
	b.Helper()
	var r [6]byte
	crand.Read(r[:])
	schema := "bench_" + hex.EncodeToString(r[:])
	ctx := context.Background()
	s, err := New(ctx, p, &Config{Schema: schema})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	return s
}

// benchEvents makes n realistic, normalized events over the last 90 days.
func benchEvents(n int, r *rand.Rand) []trail.Event {
	words := strings.Fields("plan changed from free to pro for the tenant by admin after review of billing owner request quota limit raised lowered renewed cancelled invited removed role member")
	verbs := []string{"create", "update", "delete", "view", "export"}
	nouns := []string{"user", "subscription", "invoice", "project", "apikey", "team", "webhook", "document"}
	now := time.Now().UTC()
	out := make([]trail.Event, n)
	for i := range out {
		var d strings.Builder
		for d.Len() < 60+r.IntN(140) {
			d.WriteString(words[r.IntN(len(words))])
			d.WriteByte(' ')
		}
		noun := nouns[r.IntN(len(nouns))]
		ev := trail.Event{
			OccurredAt: now.Add(-time.Duration(r.Int64N(int64(90 * 24 * time.Hour)))),
			Tenant:     fmt.Sprintf("t%d", r.IntN(10000)),
			Actor:      trail.Actor{Type: trail.ActorUser, ID: fmt.Sprintf("u%d", r.IntN(100000)), IP: "10.1.2.3"},
			Action:     noun + "." + verbs[r.IntN(len(verbs))], Target: trail.Target{Type: noun, ID: uuid.NewString()},
			Description: strings.TrimSpace(d.String()), RequestID: uuid.NewString(), Source: "bench",
		}
		if r.IntN(2) == 0 {
			ev.Changes = []trail.Change{trail.Changed("plan", "free", "pro"), trail.Changed("seats", 5, 10)}
		}
		if err := ev.Normalize(); err != nil {
			panic(err)
		}
		ev.RecordedAt = now
		out[i] = ev
	}
	return out
}

func fresh(evs []trail.Event) {
	for i := range evs {
		evs[i].ID = uuid.Must(uuid.NewV7())
	}
}

func rawRows(evs []trail.Event) [][]any {
	rows := make([][]any, len(evs))
	for i := range evs {
		r, err := encode(&evs[i])
		if err != nil {
			panic(err)
		}
		rows[i] = r.copyValues()
	}
	return rows
}

// rawTable strips the idempotency key (each partition's unique id index)
// and the seal queue's trigger from schema's events: the raw COPY side
// writes the same table and indexes without either. The months must exist.
func rawTable(b testing.TB, p *pgxpool.Pool, schema string) {
	b.Helper()
	ctx := context.Background()
	if _, err := p.Exec(ctx, "ALTER TABLE "+pgx.Identifier{schema, "events"}.Sanitize()+" DISABLE TRIGGER events_seal_queue"); err != nil {
		b.Fatal(err)
	}
	rows, err := p.Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_index x ON x.indexrelid = c.oid
		WHERE c.relnamespace = $1::regnamespace AND x.indisunique AND c.relname LIKE 'events\_p%\_id'`, schema)
	if err != nil {
		b.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(names) == 0 {
		b.Fatalf("id keys of %s: %v (%d)", schema, err, len(names))
	}
	for _, n := range names {
		if _, err := p.Exec(ctx, "DROP INDEX "+pgx.Identifier{schema, n}.Sanitize()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIngest(b *testing.B) {
	const batch = 5000
	p := benchPool(b)
	ctx := context.Background()
	s, raw := benchStore(b, p), benchStore(b, p)
	evs := benchEvents(batch, rand.New(rand.NewPCG(1, 2)))
	// Warm both (partitions, caches, statement plans).
	fresh(evs)
	if _, err := s.Append(ctx, evs); err != nil {
		b.Fatal(err)
	}
	fresh(evs)
	if err := raw.EnsurePartitions(ctx, evs); err != nil {
		b.Fatal(err)
	}
	rawTable(b, p, raw.Schema())
	if _, err := p.CopyFrom(ctx, pgx.Identifier{raw.Schema(), "events"}, insertColumns, pgx.CopyFromRows(rawRows(evs))); err != nil {
		b.Fatal(err)
	}
	var tTrail, tRaw time.Duration
	b.ResetTimer()
	for range b.N {
		fresh(evs)
		t0 := time.Now()
		res, err := s.Append(ctx, evs)
		tTrail += time.Since(t0)
		if err != nil || res[0].Duplicate {
			b.Fatal(err)
		}
		fresh(evs)
		rows := rawRows(evs)
		t0 = time.Now()
		if _, err := p.CopyFrom(ctx, pgx.Identifier{raw.Schema(), "events"}, insertColumns, pgx.CopyFromRows(rows)); err != nil {
			b.Fatal(err)
		}
		tRaw += time.Since(t0)
	}
	b.StopTimer()
	n := float64(b.N * batch)
	b.ReportMetric(n/tTrail.Seconds(), "trail_events/s")
	b.ReportMetric(n/tRaw.Seconds(), "rawcopy_events/s")
	b.ReportMetric(tRaw.Seconds()/tTrail.Seconds(), "ratio")
}

// BenchmarkRecordTx measures a business transaction (BEGIN, one UPDATE,
// COMMIT) without and with an audit event recorded in it, and with BeginTx
// setting the context for trigger capture. *_vs_plain is the throughput of a
// variant relative to the plain transaction (1.0 = no cost).
func BenchmarkRecordTx(b *testing.B) {
	p := benchPool(b)
	ctx := trail.WithActor(trail.WithTenant(context.Background(), "acme"), trail.Actor{Type: trail.ActorUser, ID: "42"})
	s := benchStore(b, p)
	client, _ := trail.NewClient[pgx.Tx](s, &trail.Config{Plaintext: true})
	tbl := s.schema + ".subscriptions"
	if _, err := p.Exec(ctx, "CREATE TABLE "+tbl+" (id int PRIMARY KEY, plan text NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	if _, err := p.Exec(ctx, "INSERT INTO "+tbl+" SELECT g, 'free' FROM generate_series(1, 1000) g"); err != nil {
		b.Fatal(err)
	}
	plans := []string{"free", "pro", "team"}
	// one runs one business transaction: BEGIN (plain or BeginTx with the
	// context's settings), one UPDATE, optionally RecordTx, COMMIT.
	one := func(b *testing.B, i int, withCtx, record, batched bool) time.Duration {
		t0 := time.Now()
		var tx pgx.Tx
		var err error
		if withCtx {
			tx, err = BeginTx(ctx, p, pgx.TxOptions{})
		} else {
			tx, err = p.Begin(ctx)
		}
		if err != nil {
			b.Fatal(err)
		}
		plan := plans[i%3]
		if batched {
			batch := &pgx.Batch{}
			batch.Queue("UPDATE "+tbl+" SET plan = $1 WHERE id = $2", plan, i%1000+1)
			if record {
				if _, err := Queue(ctx, client, batch, trail.Event{Action: "subscription.update",
					Target:      trail.Target{Type: "subscription", ID: fmt.Sprint(i%1000 + 1)},
					Description: "Changed subscription plan to " + plan + " for tenant acme",
					Changes:     []trail.Change{trail.Changed("plan", "free", plan)}}); err != nil {
					b.Fatal(err)
				}
			}
			if err := tx.SendBatch(ctx, batch).Close(); err != nil {
				b.Fatal(err)
			}
		} else if _, err := tx.Exec(ctx, "UPDATE "+tbl+" SET plan = $1 WHERE id = $2", plan, i%1000+1); err != nil {
			b.Fatal(err)
		}
		if record && !batched {
			if _, err := client.RecordTx(ctx, tx, trail.Event{Action: "subscription.update",
				Target:      trail.Target{Type: "subscription", ID: fmt.Sprint(i%1000 + 1)},
				Description: "Changed subscription plan to " + plan + " for tenant acme",
				Changes:     []trail.Change{trail.Changed("plan", "free", plan)}}); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	// The variants take turns, in rotating order, so that they share the
	// machine's load equally.
	variants := []struct {
		name                     string
		withCtx, record, batched bool
	}{{"plain", false, false, false}, {"recordtx", false, true, false}, {"begintx", true, false, false},
		{"begintx+recordtx", true, true, false}, {"batch", false, false, true}, {"batch+queue", false, true, true}}
	for i := range 50 {
		for _, v := range variants {
			one(b, i, v.withCtx, v.record, v.batched)
		}
	}
	total := make([]time.Duration, len(variants))
	b.ResetTimer()
	for i := range b.N {
		for k := range variants {
			v := (i + k) % len(variants)
			total[v] += one(b, i, variants[v].withCtx, variants[v].record, variants[v].batched)
		}
	}
	b.StopTimer()
	for k, v := range variants {
		b.ReportMetric(float64(total[k].Nanoseconds())/float64(b.N), v.name+"_ns/tx")
		switch v.name {
		case "plain", "batch":
		case "batch+queue":
			b.ReportMetric(total[k-1].Seconds()/total[k].Seconds(), v.name+"_vs_batch")
		default:
			b.ReportMetric(total[0].Seconds()/total[k].Seconds(), v.name+"_vs_plain")
		}
	}
}

// BenchmarkIngestPaths measures, in one run and alternating batch by batch,
// Store.Append (Trail-encoded binary COPY streams, events ordered by
// tenant, no savepoint), the path it replaced (pgx CopyFrom of []any rows,
// each COPY after a Describe round trip, under a savepoint, in batch order)
// writing the same two tables, and a raw pgx COPY into events alone.
// Three stores of the same schema, so that each side sees its own table
// grow alike.
func BenchmarkIngestPaths(b *testing.B) {
	const batch = 5000
	p := benchPool(b)
	ctx := context.Background()
	s, old, raw := benchStore(b, p), benchStore(b, p), benchStore(b, p)
	evs := benchEvents(batch, rand.New(rand.NewPCG(1, 2)))
	for _, st := range []*Store{s, old, raw} {
		if err := st.EnsurePartitions(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	rawTable(b, p, raw.Schema())
	previous := func() error { // the pgx CopyFrom path of e72146f^
		tx, err := p.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		sp, err := tx.Begin(ctx)
		if err != nil {
			return err
		}
		if _, err := sp.CopyFrom(ctx, pgx.Identifier{old.Schema(), "events"}, insertColumns, pgx.CopyFromRows(rawRows(evs))); err != nil {
			return err
		}
		if err := sp.Commit(ctx); err != nil {
			return err
		}
		return tx.Commit(ctx)
	}
	var tNew, tOld, tRaw time.Duration
	b.ResetTimer()
	for i := range b.N {
		for k := range 3 {
			fresh(evs)
			t0 := time.Now()
			var err error
			switch (i + k) % 3 {
			case 0:
				_, err = s.Append(ctx, evs)
				tNew += time.Since(t0)
			case 1:
				err = previous()
				tOld += time.Since(t0)
			case 2:
				rows := rawRows(evs)
				t0 = time.Now()
				_, err = p.CopyFrom(ctx, pgx.Identifier{raw.Schema(), "events"}, insertColumns, pgx.CopyFromRows(rows))
				tRaw += time.Since(t0)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	n := float64(b.N * batch)
	b.ReportMetric(n/tNew.Seconds(), "append_events/s")
	b.ReportMetric(n/tOld.Seconds(), "previous_events/s")
	b.ReportMetric(n/tRaw.Seconds(), "rawcopy_events/s")
	b.ReportMetric(tRaw.Seconds()/tNew.Seconds(), "append_ratio")
	b.ReportMetric(tRaw.Seconds()/tOld.Seconds(), "previous_ratio")
}

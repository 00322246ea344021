package trailpgx_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailpgx"
)

// The cost of trigger capture on the business write. Two identical tables
// in one schema, one captured, written alternately in the same loop so that
// both see the same machine load; the ratio is plain time / captured time
// (throughput with capture relative to without):
//
//	go test -run '^$' -bench BenchmarkCapture -benchtime 20x ./trailpgx/
//
// BenchmarkCaptureBulkUpdate: one UPDATE of 10,000 rows per iteration, plus,
// for reference, Trail's own batch Append of 10,000 events (the least any
// way of writing that many events costs).
func BenchmarkCaptureBulkUpdate(b *testing.B) {
	const rows = 10000
	s, plain, captured := benchTables(b, rows)
	ctx := context.Background()
	var tPlain, tCaptured, tAppend time.Duration
	i := 0
	for b.Loop() {
		i++
		t0 := time.Now()
		if _, err := testPool(b).Exec(ctx, "UPDATE "+plain+" SET seats = $1", i); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := testPool(b).Exec(ctx, "UPDATE "+captured+" SET seats = $1", i); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if _, err := s.Append(ctx, captureLikeEvents(rows, i)); err != nil {
			b.Fatal(err)
		}
		tPlain, tCaptured, tAppend = tPlain+t1.Sub(t0), tCaptured+t2.Sub(t1), tAppend+time.Since(t2)
	}
	n := float64(b.N * rows)
	b.ReportMetric(float64(tPlain.Nanoseconds())/n, "plain-ns/row")
	b.ReportMetric(float64(tCaptured.Nanoseconds())/n, "captured-ns/row")
	b.ReportMetric(float64(tAppend.Nanoseconds())/n, "append-ns/event")
	b.ReportMetric(float64(tPlain)/float64(tCaptured), "plain/captured")
	b.ReportMetric(float64(tCaptured-tPlain)/float64(tAppend), "capture-overhead/append")
}

// BenchmarkCaptureTx: one single-row UPDATE per transaction begun by
// trailpgx.WithTx (the settings ride BEGIN), as an application does: on the
// plain table, on the captured table, and on the plain table with an
// explicit RecordTx of the same change (the other way to audit it).
func BenchmarkCaptureTx(b *testing.B) {
	s, plain, captured := benchTables(b, 1000)
	client, err := trail.NewClient[pgx.Tx](s, &trail.Config{Plaintext: true})
	if err != nil {
		b.Fatal(err)
	}
	ctx := userCtx()
	var t [3]time.Duration
	i := 0
	for b.Loop() {
		i++
		plan := []string{"free", "pro"}[i%2]
		id := i%1000 + 1
		for k, tbl := range []string{plain, captured, plain} {
			t0 := time.Now()
			err := trailpgx.WithTx(ctx, testPool(b), func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, "UPDATE "+tbl+" SET plan = $1 WHERE id = $2", plan, id); err != nil {
					return err
				}
				if k == 2 {
					_, err := client.RecordTx(ctx, tx, trail.Event{Action: "plain.update", Target: trail.Target{Type: "plain", ID: fmt.Sprint(id)},
						Changes: []trail.Change{trail.Changed("plan", []string{"pro", "free"}[i%2], plan)}})
					return err
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			t[k] += time.Since(t0)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(t[0].Nanoseconds())/n, "plain-ns/tx")
	b.ReportMetric(float64(t[1].Nanoseconds())/n, "captured-ns/tx")
	b.ReportMetric(float64(t[2].Nanoseconds())/n, "recordtx-ns/tx")
	b.ReportMetric(float64(t[0])/float64(t[1]), "plain/captured")
	b.ReportMetric(float64(t[0])/float64(t[2]), "plain/recordtx")
}

func benchTables(b *testing.B, rows int) (s *trailpgx.Store, plain, captured string) {
	b.Helper()
	s = newStore(b, nil)
	for _, name := range []string{"plain", "captured"} {
		tbl := pgx.Identifier{s.Schema(), name}.Sanitize()
		mustExec(b, "CREATE TABLE "+tbl+" (id bigint PRIMARY KEY, tenant_id text, plan text, seats int, updated_at timestamptz DEFAULT now())")
		mustExec(b, "INSERT INTO "+tbl+" (id, tenant_id, plan, seats) SELECT g, 't' || (g % 50), 'free', 1 FROM generate_series(1, $1) g", rows)
		if name == "captured" {
			if _, err := s.EnableCapture(context.Background(), tbl, trailpgx.CaptureOptions{TenantColumn: "tenant_id", Ignore: []string{"updated_at"}}); err != nil {
				b.Fatal(err)
			}
			captured = tbl
		} else {
			plain = tbl
		}
	}
	return s, plain, captured
}

// captureLikeEvents are the events a captured UPDATE of n rows writes, made
// in Go: the same tenants, actor, target and one typed change each.
func captureLikeEvents(n, round int) []trail.Event {
	now := time.Now().UTC()
	out := make([]trail.Event, n)
	for i := range out {
		out[i] = trail.Event{
			OccurredAt: now, Tenant: fmt.Sprintf("t%d", (i+1)%50),
			Actor:  trail.Actor{Type: trail.ActorSystem, ID: "db:postgres"},
			Action: "ref.update", Target: trail.Target{Type: "ref", ID: fmt.Sprint(i + 1)},
			Changes: []trail.Change{trail.Changed("seats", round-1, round)}, Source: "trigger",
		}
		if err := out[i].Normalize(); err != nil {
			panic(err)
		}
		out[i].RecordedAt = now
	}
	return out
}

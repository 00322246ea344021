package trailpgx_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/trailpgx"
)

// BenchmarkCaptureFirstCall: the first audited transaction of a fresh
// session (a new connection each time, as after a pool recycles one), one
// single-row UPDATE in trailpgx.WithTx: on the plain table, on the captured
// table, and on the plain table with an explicit RecordTx. A fresh session
// pays for compiling and planning whatever its first statement runs; the
// captured-minus-plain difference is what the capture trigger's first call
// costs.
//
//	go test -run '^$' -bench BenchmarkCaptureFirstCall -benchtime 30x ./trailpgx/
func BenchmarkCaptureFirstCall(b *testing.B) {
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
			b.StopTimer()
			conn, err := pgx.Connect(ctx, testenv.PostgresDSN())
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			t0 := time.Now()
			err = trailpgx.WithTx(ctx, conn, func(tx pgx.Tx) error {
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
			b.StopTimer()
			conn.Close(context.Background())
			b.StartTimer()
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(t[0].Nanoseconds())/n, "plain-ns/first-tx")
	b.ReportMetric(float64(t[1].Nanoseconds())/n, "captured-ns/first-tx")
	b.ReportMetric(float64(t[2].Nanoseconds())/n, "recordtx-ns/first-tx")
	b.ReportMetric(float64(t[1]-t[0])/n/1e6, "capture-first-ms")
	b.ReportMetric(float64(t[2]-t[0])/n/1e6, "recordtx-first-ms")
}

// BenchmarkCaptureServer: the server time capture adds to a statement,
// without the client's round trips (which on a loaded machine swing by more
// than the trigger costs): one DO block runs 200 single-row UPDATEs on the
// plain table, another the same on the captured one; the difference per
// statement is the trigger's cost (one event each).
//
//	go test -run '^$' -bench BenchmarkCaptureServer -benchtime 20x ./trailpgx/
func BenchmarkCaptureServer(b *testing.B) {
	const stmts = 200
	_, plain, captured := benchTables(b, 1000)
	ctx := context.Background()
	var t [2]time.Duration
	i := 0
	for b.Loop() {
		i++
		for k, tbl := range []string{plain, captured} {
			t0 := time.Now()
			_, err := testPool(b).Exec(ctx, fmt.Sprintf(`DO $$ BEGIN
				PERFORM set_config('trail.actor', 'user:42', true);
				FOR i IN 1..%d LOOP UPDATE %s SET seats = seats + 1 WHERE id = i; END LOOP; END $$`, stmts, tbl))
			if err != nil {
				b.Fatal(err)
			}
			t[k] += time.Since(t0)
		}
	}
	n := float64(b.N * stmts)
	b.ReportMetric(float64(t[0].Nanoseconds())/n, "plain-ns/stmt")
	b.ReportMetric(float64(t[1].Nanoseconds())/n, "captured-ns/stmt")
	b.ReportMetric(float64((t[1]-t[0]).Nanoseconds())/n/1e3, "capture-added-µs/stmt")
}

// BenchmarkCaptureCheck: what the per-statement column check costs, on the
// server. The same captured table's functions are compiled alternately with
// the check ('checked': what captures do without the event trigger, and did
// before migration 0012) and without it ('watched'); each round runs 200
// single-row UPDATEs in one DO block with track_functions on and reads the
// update function's own time from pg_stat_xact_user_functions: the trigger
// function's server time per statement, without the client's round trips.
//
//	go test -run '^$' -bench BenchmarkCaptureCheck -benchtime 20x ./trailpgx/
func BenchmarkCaptureCheck(b *testing.B) {
	const stmts = 200
	s, _, captured := benchTables(b, 1000)
	ctx := context.Background()
	conn, err := testPool(b).Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	var fn string
	if err := conn.QueryRow(ctx, "SELECT 'capture_' || $1::regclass::oid || '_update'", captured).Scan(&fn); err != nil {
		b.Fatal(err)
	}
	modes := []string{"checked", "watched"}
	var ms [2]float64
	var calls [2]int64
	var ctxMs float64 // capture_context, the transaction settings and the partition check
	var ctxCalls int64
	loop := func(n int) string {
		return fmt.Sprintf(`DO $$ BEGIN PERFORM set_config('trail.actor', 'user:42', true);
			FOR i IN 1..%d LOOP UPDATE %s SET seats = seats + 1 WHERE id = i; END LOOP; END $$`, n, captured)
	}
	for b.Loop() {
		for k, mode := range modes {
			if _, err := conn.Exec(ctx, fmt.Sprintf(`SELECT %[1]s.capture_compile(t.tgrelid::regclass, %[1]s.capture_tgargs(t.tgargs), $2)
				FROM pg_trigger t WHERE t.tgrelid = $1::regclass AND t.tgname = 'trail_capture_insert'`, s.Schema()), captured, mode); err != nil {
				b.Fatal(err)
			}
			if _, err := conn.Exec(ctx, loop(1)); err != nil { // compile and plan in this session
				b.Fatal(err)
			}
			tx, err := conn.Begin(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := tx.Exec(ctx, "SET LOCAL track_functions = 'all'"); err != nil {
				b.Fatal(err)
			}
			if _, err := tx.Exec(ctx, loop(stmts)); err != nil {
				b.Fatal(err)
			}
			var t, t2 float64
			var c, c2 int64
			if err := tx.QueryRow(ctx, "SELECT total_time, calls FROM pg_stat_xact_user_functions WHERE schemaname = $1 AND funcname = $2",
				s.Schema(), fn).Scan(&t, &c); err != nil {
				b.Fatal(err)
			}
			if err := tx.QueryRow(ctx, "SELECT total_time, calls FROM pg_stat_xact_user_functions WHERE schemaname = $1 AND funcname = 'capture_context'",
				s.Schema()).Scan(&t2, &c2); err != nil {
				b.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				b.Fatal(err)
			}
			ctxMs, ctxCalls = ctxMs+t2, ctxCalls+c2
			ms[k] += t
			calls[k] += c
		}
	}
	b.ReportMetric(ms[0]*1e3/float64(calls[0]), "checked-µs/stmt")
	b.ReportMetric(ms[1]*1e3/float64(calls[1]), "watched-µs/stmt")
	b.ReportMetric((ms[0]/float64(calls[0])-ms[1]/float64(calls[1]))*1e3, "check-µs/stmt")
	b.ReportMetric(ctxMs*1e3/float64(ctxCalls), "context-µs/stmt")
}

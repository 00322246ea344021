package trailsqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/migrate"
)

// Ingest benchmarks: the same synthetic rows through Trail (Store.Append and
// Client.RecordMany) and through the driver's raw batched INSERT into an
// identical table (the same migration: same columns, indexes, FTS5 and
// triggers), in the same run. Each iteration writes benchEvents events in
// batches of benchBatch into a new database file.
//
//	go test -run '^$' -bench Ingest -benchtime 5x ./server/trailsqlite/
const (
	benchEvents = 10000
	benchBatch  = 1000
)

var benchActions = []string{"user.create", "user.update", "user.delete", "user.login", "subscription.create",
	"subscription.update", "subscription.plan.change", "subscription.cancel", "invoice.create", "invoice.pay",
	"project.create", "project.update", "project.delete", "member.invite", "member.remove", "apikey.create",
	"apikey.revoke", "auth.login", "auth.logout", "auth.mfa.enable"}

var benchWords = strings.Fields("changed subscription plan to pro from free for tenant by admin user deleted " +
	"invited member project renamed invoice paid api key revoked enabled two factor authentication " +
	"billing address updated seats increased decreased trial extended cancelled renewed exported report")

// benchRows returns n synthetic events, as a caller would hand them to
// Record: IDs set (idempotency keys), everything else plain values.
func benchRows(n int) []trail.Event {
	r := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	evs := make([]trail.Event, n)
	for i := range evs {
		evs[i] = benchEvent(r, benchDescription(r), base.Add(time.Duration(i)*3*time.Second))
	}
	return evs
}

// benchDescription is a description of 60 to 200 bytes of benchWords.
func benchDescription(r *rand.Rand) string {
	var d strings.Builder
	for d.Len() < 60+r.IntN(140) {
		if d.Len() > 0 {
			d.WriteByte(' ')
		}
		d.WriteString(benchWords[r.IntN(len(benchWords))])
	}
	return d.String()
}

// benchEvent is one synthetic event at occurredAt: 1,000 tenants with a
// skew, 10,000 users, a random target ID, desc and two changes.
func benchEvent(r *rand.Rand, desc string, occurredAt time.Time) trail.Event {
	return trail.Event{
		ID:          uuid.Must(uuid.NewV7()),
		OccurredAt:  occurredAt,
		Tenant:      fmt.Sprintf("tenant-%d", int(100*r.ExpFloat64())%1000),
		Actor:       trail.Actor{Type: trail.ActorUser, ID: fmt.Sprintf("user-%d", r.IntN(10000)), IP: "203.0.113.7"},
		Action:      benchActions[r.IntN(len(benchActions))],
		Target:      trail.Target{Type: "subscription", ID: uuid.NewString()},
		Description: desc,
		Changes:     []trail.Change{trail.Changed("plan", "free", "pro"), trail.Changed("seats", r.IntN(50), r.IntN(50))},
		Metadata:    map[string]any{"ip_country": "DE", "attempt": r.IntN(5)},
		RequestID:   fmt.Sprintf("req-%08x", r.Uint32()),
		Source:      "billing",
	}
}

// normalized returns evs as Append expects them (what Client.Prepare makes).
func normalized(tb testing.TB, evs []trail.Event) []trail.Event {
	out := make([]trail.Event, len(evs))
	now := time.Now()
	for i, ev := range evs {
		ev.RecordedAt = now
		if err := ev.Normalize(); err != nil {
			tb.Fatal(err)
		}
		if err := ev.Validate(); err != nil {
			tb.Fatal(err)
		}
		out[i] = ev
	}
	return out
}

// rawRows returns the column values of evs exactly as trailsqlite stores them.
func rawRows(tb testing.TB, evs []trail.Event) [][]any {
	var enc encoder
	rows := make([][]any, len(evs))
	for i := range evs {
		rows[i] = make([]any, nInsertCols)
		if err := enc.args(&evs[i], evs[i].RecordedAt, rows[i]); err != nil {
			tb.Fatal(err)
		}
	}
	return rows
}

type ingester struct {
	name string
	// setup opens a fresh database; batch(i) ingests the batch of events
	// starting at index i into it.
	setup func(tb testing.TB, sync string) (batch func(i int) error, done func())
}

func ingesters(tb testing.TB) []ingester {
	raw := benchRows(benchEvents)
	norm := normalized(tb, raw)
	rows := rawRows(tb, norm)
	ctx := context.Background()
	open := func(tb testing.TB, sync string) *Store {
		s, err := Open(ctx, filepath.Join(tb.TempDir(), "bench.db"), &Config{Synchronous: sync})
		if err != nil {
			tb.Fatal(err)
		}
		return s
	}
	// openRaw creates the same schema with plain database/sql and the same
	// DSN, without going through Store.
	openRaw := func(tb testing.TB, sync string) *sql.DB {
		s := &Store{path: filepath.Join(tb.TempDir(), "raw.db"), cfg: Config{BusyTimeout: 10 * time.Second, Synchronous: sync}}
		db, err := sql.Open("sqlite", s.dsn())
		if err != nil {
			tb.Fatal(err)
		}
		ms, err := migrate.Load(migrationFS, "migrations")
		if err != nil {
			tb.Fatal(err)
		}
		for _, m := range ms {
			if _, err := db.Exec(m.SQL); err != nil {
				tb.Fatal(err)
			}
		}
		return db
	}
	multiRow := "INSERT INTO trail_events (" + insertCols + ") VALUES " +
		strings.TrimSuffix(strings.Repeat("(?"+strings.Repeat(",?", nInsertCols-1)+"),", benchBatch), ",")
	plainInsert := "INSERT INTO trail_events (" + insertCols + ") VALUES (?" + strings.Repeat(",?", nInsertCols-1) + ")"
	return []ingester{
		{"trail_store_append", func(tb testing.TB, sync string) (func(int) error, func()) {
			s := open(tb, sync)
			return func(i int) error {
				if _, err := s.Append(ctx, norm[i:i+benchBatch]); err != nil {
					return err
				}
				return nil
			}, func() { s.Close() }
		}},
		{"trail_client_recordmany", func(tb testing.TB, sync string) (func(int) error, func()) {
			s := open(tb, sync)
			c, err := trail.NewClient(s, &trail.Config{Plaintext: true})
			if err != nil {
				tb.Fatal(err)
			}
			return func(i int) error {
				if _, err := c.RecordMany(ctx, raw[i:i+benchBatch]); err != nil {
					return err
				}
				return nil
			}, func() { s.Close() }
		}},
		{"raw_prepared_insert", func(tb testing.TB, sync string) (func(int) error, func()) {
			db := openRaw(tb, sync)
			return func(i int) error {
				tx, err := db.Begin()
				if err != nil {
					return err
				}
				st, err := tx.Prepare(plainInsert)
				if err != nil {
					return err
				}
				for _, r := range rows[i : i+benchBatch] {
					if _, err := st.Exec(r...); err != nil {
						return err
					}
				}
				st.Close()
				if err := tx.Commit(); err != nil {
					return err
				}
				return nil
			}, func() { db.Close() }
		}},
		{"raw_multirow_insert", func(tb testing.TB, sync string) (func(int) error, func()) {
			// The strongest raw baseline: one multi-row INSERT per batch,
			// prepared once (as Store.Append does).
			db := openRaw(tb, sync)
			args := make([]any, 0, benchBatch*nInsertCols)
			st, err := db.Prepare(multiRow)
			if err != nil {
				tb.Fatal(err)
			}
			return func(i int) error {
				args = args[:0]
				for _, r := range rows[i : i+benchBatch] {
					args = append(args, r...)
				}
				tx, err := db.Begin()
				if err != nil {
					return err
				}
				if _, err := tx.Stmt(st).Exec(args...); err != nil {
					return err
				}
				if err := tx.Commit(); err != nil {
					return err
				}
				return nil
			}, func() { st.Close(); db.Close() }
		}},
	}
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkIngest(b *testing.B) {
	for _, sync := range []string{"NORMAL", "FULL"} {
		for _, in := range ingesters(b) {
			b.Run("sync="+sync+"/"+in.name, func(b *testing.B) {
				var elapsed time.Duration
				for b.Loop() {
					b.StopTimer()
					batch, done := in.setup(b, sync)
					b.StartTimer()
					start := time.Now()
					for i := 0; i < benchEvents; i += benchBatch {
						if err := batch(i); err != nil {
							b.Fatal(err)
						}
					}
					elapsed += time.Since(start)
					b.StopTimer()
					done()
					b.StartTimer()
				}
				b.ReportMetric(float64(benchEvents*b.N)/elapsed.Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkIngestRatio ingests the same rows with every ingester in one
// iteration, interleaved batch by batch (in rotating order) so that all of
// them see the same machine, and reports each one's events/s and Trail's
// ratios to the faster raw INSERT.
func BenchmarkIngestRatio(b *testing.B) {
	for _, sync := range []string{"NORMAL", "FULL"} {
		b.Run("sync="+sync, func(b *testing.B) {
			ins := ingesters(b)
			total := make([]time.Duration, len(ins))
			cpu := make([]time.Duration, len(ins))
			batches := make([]func(int) error, len(ins))
			dones := make([]func(), len(ins))
			for b.Loop() {
				b.StopTimer()
				for j, in := range ins {
					batches[j], dones[j] = in.setup(b, sync)
				}
				b.StartTimer()
				for k, i := 0, 0; i < benchEvents; k, i = k+1, i+benchBatch {
					for r := range ins {
						j := (k + r) % len(ins)
						start, startCPU := time.Now(), cpuTime()
						if err := batches[j](i); err != nil {
							b.Fatal(err)
						}
						total[j] += time.Since(start)
						cpu[j] += cpuTime() - startCPU
					}
				}
				b.StopTimer()
				for _, done := range dones {
					done()
				}
				b.StartTimer()
			}
			// Wall-clock rates, and rates per CPU-second: on a machine shared
			// with other work the second is the steadier comparison (SQLite
			// runs on the calling goroutine; waits for the disk cost no CPU).
			rate := make([]float64, len(ins))
			cpuRate := make([]float64, len(ins))
			for i := range ins {
				rate[i] = float64(benchEvents*b.N) / total[i].Seconds()
				cpuRate[i] = float64(benchEvents*b.N) / cpu[i].Seconds()
				b.ReportMetric(rate[i], ins[i].name+"_events/s")
				b.ReportMetric(cpuRate[i], ins[i].name+"_events/cpu-s")
			}
			b.ReportMetric(rate[0]/max(rate[2], rate[3]), "store/raw")
			b.ReportMetric(rate[1]/max(rate[2], rate[3]), "client/raw")
			b.ReportMetric(cpuRate[0]/max(cpuRate[2], cpuRate[3]), "store/raw_cpu")
			b.ReportMetric(cpuRate[1]/max(cpuRate[2], cpuRate[3]), "client/raw_cpu")
		})
	}
}

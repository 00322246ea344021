package trailsqlite

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/trailhq/trail"
)

// BenchmarkSubjectReads times the first page (50 events) of the subject
// questions — a user in a tenant, an object's history with and without its
// tenant, an exact action in a tenant, and a user with no event at all in
// the largest tenant (every day probed) — over TRAIL_BENCH_READS_EVENTS
// events (default 100,000) shaped like BenchmarkIngestGrowth's, spread over
// a few days ("dense", 1–5 s apart) and over three years ("3y"), and the
// counts by day of an action prefix in that tenant over its last 30 days. It is the
// read side of migration 0009: the subject indexes are led by the day, so a
// read probes day by day.
//
//	go test -run '^$' -bench SubjectReads -benchtime 2000x ./server/trailsqlite/
func BenchmarkSubjectReads(b *testing.B) {
	total := 100000
	if v := os.Getenv("TRAIL_BENCH_READS_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 {
			b.Fatalf("TRAIL_BENCH_READS_EVENTS=%q: want a number ≥ 1000", v)
		}
		total = n
	}
	ctx := context.Background()
	for _, span := range []struct {
		name string
		step time.Duration // mean gap between two events
	}{{"dense", 3 * time.Second}, {"3y", 3 * 365 * 24 * time.Hour / time.Duration(total)}} {
		b.Run(span.name, func(b *testing.B) {
			s, err := Open(ctx, filepath.Join(b.TempDir(), "reads.db"), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			r := rand.New(rand.NewPCG(3, 4))
			at := time.Now().Add(-time.Duration(total) * span.step)
			var probe trail.Event // an event in the largest tenant, a third of the way in
			for n := 0; n < total; n += 10000 {
				evs := make([]trail.Event, min(10000, total-n))
				for i := range evs {
					at = at.Add(time.Duration(1 + r.Int64N(int64(2*span.step))))
					ev := benchEvent(r, benchDescription(r), at)
					ev.RecordedAt = time.Now()
					if err := ev.Normalize(); err != nil {
						b.Fatal(err)
					}
					if probe.Tenant == "" && n+i >= total/3 && ev.Tenant == "tenant-0" {
						probe = ev
					}
					evs[i] = ev
				}
				if _, err := s.Append(ctx, evs); err != nil {
					b.Fatal(err)
				}
			}
			for _, c := range []struct {
				name string
				q    trail.Query
			}{
				{"user-in-tenant", trail.Query{Tenant: probe.Tenant, ActorID: probe.Actor.ID}},
				{"object-history", trail.Query{AllTenants: true, TargetType: probe.Target.Type, TargetID: probe.Target.ID}},
				{"object-in-tenant", trail.Query{Tenant: probe.Tenant, TargetType: probe.Target.Type, TargetID: probe.Target.ID}},
				{"action-in-tenant", trail.Query{Tenant: probe.Tenant, Action: probe.Action}},
				{"absent-user", trail.Query{Tenant: probe.Tenant, ActorID: "nobody"}},
			} {
				c.q.Limit = 50
				b.Run(c.name, func(b *testing.B) {
					var n int
					for b.Loop() {
						p, err := s.Query(ctx, c.q)
						if err != nil {
							b.Fatal(err)
						}
						n = len(p.Events)
					}
					b.ReportMetric(float64(n), "events/page")
				})
			}
			// Counts by day of an action prefix in the largest tenant over
			// its last 30 days (a dashboard's panel).
			cq := trail.CountQuery{Tenant: probe.Tenant, Action: "subscription.*", Since: at.Add(-30 * 24 * time.Hour)}
			b.Run("counts-action-prefix-30d", func(b *testing.B) {
				var n int64
				for b.Loop() {
					cs, err := s.Counts(ctx, cq)
					if err != nil {
						b.Fatal(err)
					}
					n = 0
					for _, c := range cs {
						n += c.N
					}
				}
				b.ReportMetric(float64(n), "events-counted")
			})
		})
	}
}

package trailarchive

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/tlog"
)

// benchLeaves returns n realistic sealed events of one tenant and day: a mix
// of actions, actors, targets, a field change, metadata, request ids.
func benchLeaves(n int) []trailseal.SealedEvent {
	at := time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC)
	actions := []string{"user.login", "subscription.update", "invoice.paid", "user.update", "project.create", "api_key.rotate"}
	out := make([]trailseal.SealedEvent, n)
	for i := range out {
		ev := &trail.Event{
			ID: uuid.Must(uuid.NewV7()), OccurredAt: at.Add(time.Duration(i) * 80 * time.Millisecond),
			RecordedAt: at.Add(time.Duration(i)*80*time.Millisecond + 3*time.Millisecond), Tenant: "acme",
			Actor:  trail.Actor{Type: trail.ActorUser, ID: fmt.Sprintf("user_%d", i%500), Name: fmt.Sprintf("User %d", i%500), IP: fmt.Sprintf("10.0.%d.%d", i%7, i%250)},
			Action: actions[i%len(actions)], Outcome: trail.OutcomeSuccess,
			Target:      trail.Target{Type: "subscription", ID: fmt.Sprintf("sub_%d", i%2000)},
			Description: fmt.Sprintf("%s changed subscription sub_%d", fmt.Sprintf("User %d", i%500), i%2000),
			Changes:     []trail.Change{trail.Changed("plan", "free", fmt.Sprintf("pro-%d", i%3))},
			Metadata:    map[string]any{"plan_seats": float64(i % 50), "region": "eu-west-1"},
			RequestID:   fmt.Sprintf("req_%016x", i*2654435761), Source: "billing-api", SchemaVersion: 1,
		}
		if err := ev.Normalize(); err != nil {
			panic(err)
		}
		b, _ := trailseal.CanonicalBytes(ev)
		out[i] = trailseal.SealedEvent{Leaf: trailseal.Leaf{Log: "acme", Seq: int64(i), EventID: ev.ID, Hash: tlog.RecordHash(b)}, Event: ev}
	}
	return out
}

// BenchmarkArchiveEncode measures writing one batch of 100,000 events as
// zstd Parquet and reports events/s and compressed bytes per event.
func BenchmarkArchiveEncode(b *testing.B) {
	const n = 100_000
	leaves := benchLeaves(n)
	var size int
	b.ResetTimer()
	for b.Loop() {
		data, err := encodeParquet(leaves)
		if err != nil {
			b.Fatal(err)
		}
		size = len(data)
	}
	b.ReportMetric(float64(size)/n, "B/event")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkArchiveRun measures a whole run on SQLite: plan, Parquet, manifest,
// read-back and purge, to a directory, of 86,400 events recorded over the
// two days before the run (one every 2 s, over three logs: about 14,400 per
// log and day, so batches of realistic size) under a 1-day policy.
func BenchmarkArchiveRun(b *testing.B) {
	benchmarkArchiveRun(b, onSQLite, func(res Result) int64 { return res.Archived })
}

// BenchmarkArchiveRunPostgres is BenchmarkArchiveRun on PostgreSQL (a schema
// of its own on the test server): every event goes, so the two months'
// partitions are dropped rather than their rows deleted.
func BenchmarkArchiveRunPostgres(b *testing.B) {
	benchmarkArchiveRun(b, onPostgres, func(res Result) int64 { return res.Purged })
}

// benchmarkArchiveRun runs BenchmarkArchiveRun's retention on the store kind,
// counting per run the events counted says.
func benchmarkArchiveRun(b *testing.B, kind string, counted func(Result) int64) {
	var events int64
	for b.Loop() {
		b.StopTimer()
		f := newFixtureOn(b, kind, 2*Day, 2*time.Second)
		if err := f.backend.SetPolicy(b.Context(), Policy{Keep: time.Hour, Then: ThenArchive}); err != nil {
			b.Fatal(err)
		}
		r := f.runner(b, nil)
		b.StartTimer()
		plan, err := r.Plan(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		res, err := r.Run(b.Context(), plan)
		if err != nil {
			b.Fatal(err)
		}
		events += counted(res)
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkPurgePostgres measures the purge alone (no archive) of one month
// of 100,000 sealed events, of two tenants, on PostgreSQL: by dropping the
// month's partition, and row by row through the same function.
func BenchmarkPurgePostgres(b *testing.B) {
	const n = 100_000
	jan := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, mode := range []struct {
		name     string
		rowsOnly bool
	}{{"partition", false}, {"rows", true}} {
		b.Run(mode.name, func(b *testing.B) {
			var events int64
			for b.Loop() {
				b.StopTimer()
				f := openFixture(b, onPostgres)
				evs := make([]trail.Event, n)
				for i := range evs {
					at := jan.Add(time.Duration(i) * (27 * Day / n))
					evs[i] = pgEvent([]string{"acme", "globex"}[i%2], "user.update", fmt.Sprint("u", i%50), at, at)
				}
				f.appendEvents(b, evs)
				f.seal(b)
				pb := f.backend.(*Postgres)
				pb.rowsOnly = mode.rowsOnly
				if err := pb.SetPolicy(b.Context(), Policy{Keep: Day, Then: ThenDelete}); err != nil {
					b.Fatal(err)
				}
				plan, err := f.runner(b, nil).Plan(b.Context())
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				got, err := pb.PurgeBatches(b.Context(), plan.Batches, nil)
				if err != nil || got != n {
					b.Fatal(got, err)
				}
				events += got
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

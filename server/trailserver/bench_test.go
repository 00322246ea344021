package trailserver_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/trailpgx"
)

// benchEvents returns n realistic events with fresh IDs.
func benchEvents(n int, seq *int) []trail.Event {
	evs := make([]trail.Event, n)
	now := time.Now().Add(-time.Minute).UTC()
	for i := range evs {
		*seq++
		s := strconv.Itoa(*seq)
		evs[i] = trail.Event{
			ID: uuid.Must(uuid.NewV7()), OccurredAt: now, Tenant: "t" + strconv.Itoa(*seq%50),
			Actor:  trail.Actor{Type: trail.ActorUser, ID: "u" + strconv.Itoa(*seq%1000), Email: "user" + s + "@example.com", IP: "10.0.0.1"},
			Action: "subscription.update", Target: trail.Target{Type: "subscription", ID: "sub_" + s},
			Description: "Changed subscription plan to pro for tenant " + s,
			Changes:     []trail.Change{trail.Changed("plan", "free", "pro"), trail.Changed("seats", 5, 10)},
			Metadata:    map[string]any{"request_path": "/api/subscriptions/" + s, "ticket": "OPS-" + s},
			RequestID:   "req_" + s,
		}
	}
	return evs
}

// BenchmarkIngest compares, in one run and on the same store, HTTP ingest
// (POST /v1/events over loopback: JSON decode, authentication, validation,
// commit) with direct ingest of the same events through the library
// (trail.Client.RecordMany: normalize, validate, commit). One op is one batch
// of -batch events; the metric to compare is events/s. The ratio goes to
// BENCHMARKS.md.
func BenchmarkIngest(b *testing.B) {
	for _, bk := range backends {
		for _, c := range []struct{ batch, conc int }{{1, 1}, {100, 1}, {1000, 1}, {1000, 4}} {
			name := fmt.Sprintf("%s/batch=%d/conc=%d", bk.name, c.batch, c.conc)
			b.Run(name+"/direct", func(b *testing.B) {
				st, _ := bk.open(b)
				rec := recorderFor(b, st)
				seq := 0
				batches := make([][]trail.Event, b.N)
				for i := range batches {
					batches[i] = benchEvents(c.batch, &seq)
				}
				b.ResetTimer()
				parallel(b, c.conc, func(i int) error { return rec(context.Background(), batches[i]) })
				b.ReportMetric(float64(b.N*c.batch)/b.Elapsed().Seconds(), "events/s")
			})
			b.Run(name+"/http", func(b *testing.B) {
				f := newFixture(b, bk, func(c *trailserver.Config) { c.RateLimit = -1 })
				seq := 0
				bodies := make([][]byte, b.N)
				for i := range bodies {
					bodies[i] = must(json.Marshal(map[string]any{"events": benchEvents(c.batch, &seq)}))
				}
				client := f.ts.Client()
				client.Transport.(*http.Transport).MaxIdleConnsPerHost = c.conc
				auth := "Bearer " + f.secret["ingestAll"]
				b.ResetTimer()
				parallel(b, c.conc, func(i int) error {
					req, _ := http.NewRequest("POST", f.ts.URL+"/v1/events", bytes.NewReader(bodies[i]))
					req.Header.Set("Authorization", auth)
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err != nil {
						return err
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						return fmt.Errorf("status %d", resp.StatusCode)
					}
					return nil
				})
				b.ReportMetric(float64(b.N*c.batch)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// parallel runs op(0..b.N-1) on conc goroutines.
func parallel(b *testing.B, conc int, op func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				if err := op(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// recorderFor returns the library's batch-recording path for st.
func recorderFor(b *testing.B, st trail.Store) func(context.Context, []trail.Event) error {
	switch s := st.(type) {
	case trail.TxStore[*sql.Tx]:
		c := must(trail.NewClient(s, &trail.Config{Plaintext: true}))
		return func(ctx context.Context, evs []trail.Event) error { _, err := c.RecordMany(ctx, evs); return err }
	case *trailpgx.Store:
		c := must(trail.NewClient[pgx.Tx](s, &trail.Config{Plaintext: true}))
		return func(ctx context.Context, evs []trail.Event) error { _, err := c.RecordMany(ctx, evs); return err }
	}
	b.Fatalf("no recorder for %T", st)
	return nil
}

// BenchmarkIngestRatio alternates direct and HTTP ingest of equal batches
// round by round on one store, so that both see the same machine load (on a
// shared machine a run of one then the other measures the neighbours), and
// reports each one's events/s over all rounds and the median per-round ratio
// http/direct. One op is one round: `rounds` batches of 1000 events each way.
func BenchmarkIngestRatio(b *testing.B) {
	const batch, rounds = 1000, 3
	for _, bk := range backends {
		b.Run(bk.name, func(b *testing.B) {
			f := newFixture(b, bk, func(c *trailserver.Config) { c.RateLimit = -1 })
			rec := recorderFor(b, f.store)
			client := f.ts.Client()
			auth := "Bearer " + f.secret["ingestAll"]
			seq := 0
			var direct, viaHTTP time.Duration
			ratios := make([]float64, 0, b.N)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				dbatches := make([][]trail.Event, rounds)
				bodies := make([][]byte, rounds)
				for i := range rounds {
					dbatches[i] = benchEvents(batch, &seq)
					bodies[i] = must(json.Marshal(map[string]any{"events": benchEvents(batch, &seq)}))
				}
				b.StartTimer()
				t0 := time.Now()
				for i := range rounds {
					if err := rec(context.Background(), dbatches[i]); err != nil {
						b.Fatal(err)
					}
				}
				t1 := time.Now()
				for i := range rounds {
					req, _ := http.NewRequest("POST", f.ts.URL+"/v1/events", bytes.NewReader(bodies[i]))
					req.Header.Set("Authorization", auth)
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						b.Fatalf("status %d", resp.StatusCode)
					}
				}
				t2 := time.Now()
				direct += t1.Sub(t0)
				viaHTTP += t2.Sub(t1)
				ratios = append(ratios, t1.Sub(t0).Seconds()/t2.Sub(t1).Seconds())
			}
			n := float64(b.N * rounds * batch)
			b.ReportMetric(n/direct.Seconds(), "direct-events/s")
			b.ReportMetric(n/viaHTTP.Seconds(), "http-events/s")
			slices.Sort(ratios)
			b.ReportMetric(ratios[len(ratios)/2], "median-ratio")
			b.ReportMetric(direct.Seconds()/viaHTTP.Seconds(), "ratio")
		})
	}
}

package logstream

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchReceiver is a webhook receiver that counts events and, when lags is
// on, records each event's delivery lag (arrival − recorded_at).
type benchReceiver struct {
	srv   *httptest.Server
	n     atomic.Int64
	mu    sync.Mutex
	lags  []time.Duration
	track bool
}

func newBenchReceiver(b testing.TB) *benchReceiver {
	r := &benchReceiver{}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var envs []Envelope
		if err := json.Unmarshal(body, &envs); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		now := time.Now()
		if r.track {
			r.mu.Lock()
			for _, e := range envs {
				if !e.Test {
					r.lags = append(r.lags, now.Sub(e.Event.RecordedAt))
				}
			}
			r.mu.Unlock()
		}
		r.n.Add(int64(len(envs)))
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(r.srv.Close)
	return r
}

func (r *benchReceiver) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(r.srv.Certificate())
	return p
}

// BenchmarkDelivery measures events delivered per second from a sealed
// backlog: one stream, and 100 streams (one per tenant) at once, on SQLite
// and PostgreSQL, to a local HTTPS webhook receiver.
func BenchmarkDelivery(b *testing.B) {
	for _, kind := range []string{onSQLite, onPostgres} {
		for _, c := range []struct{ streams, per int }{{1, 20000}, {100, 200}} {
			b.Run(fmt.Sprintf("%s/streams=%d", kind, c.streams), func(b *testing.B) {
				f := newFixture(b, kind)
				rcv := newBenchReceiver(b)
				f.dialer.RootCAs = rcv.pool()
				var total int64
				var elapsed time.Duration
				for round := 0; b.Loop(); round++ {
					b.StopTimer()
					var ids []string
					for i := range c.streams {
						tenant := fmt.Sprintf("r%d-t%03d", round, i) // a new log: the stream starts at its beginning
						s, err := f.m.Create(adminCtx(), Caller{All: true}, CreateRequest{Tenant: tenant,
							Destination: Destination{Type: TypeWebhook, URL: rcv.srv.URL}, Secret: "whsec_bench",
							Batching: Batching{MaxEvents: 500, MaxWaitMS: 1}})
						if err != nil {
							b.Fatal(err)
						}
						ids = append(ids, s.ID)
						f.record(b, tenant, c.per)
					}
					for { // seal everything before the clock starts
						st, err := f.sealer.Step(context.Background())
						if err != nil {
							b.Fatal(err)
						}
						if st.Sealed == 0 {
							break
						}
					}
					want := rcv.n.Load() + int64(c.streams*(c.per+1))
					b.StartTimer()
					start := time.Now()
					for rcv.n.Load() < want {
						if err := f.r.Step(context.Background()); err != nil {
							b.Fatal(err)
						}
					}
					elapsed += time.Since(start)
					total += int64(c.streams * (c.per + 1))
					// Pause this round's streams so that the next round times its own.
					b.StopTimer()
					for _, id := range ids {
						if _, err := f.m.SetEnabled(adminCtx(), Caller{All: true}, id, false); err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
				}
				b.ReportMetric(float64(total)/elapsed.Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkDeliveryLag measures the delivery lag (arrival at the receiver −
// recorded_at) under steady ingest of 500 events/s into 10 tenants with a
// stream each, with the sealer (250 ms poll) and the runner (200 ms poll)
// running as trail serve runs them: p50, p95, max.
func BenchmarkDeliveryLag(b *testing.B) {
	for _, kind := range []string{onSQLite, onPostgres} {
		b.Run(kind, func(b *testing.B) {
			f := newFixture(b, kind)
			rcv := newBenchReceiver(b)
			rcv.track = true
			f.dialer.RootCAs = rcv.pool()
			const tenants, rate, seconds = 10, 500, 10
			for i := range tenants {
				if _, err := f.m.Create(adminCtx(), Caller{All: true}, CreateRequest{Tenant: fmt.Sprintf("t%d", i),
					Destination: Destination{Type: TypeWebhook, URL: rcv.srv.URL}, Secret: "whsec_bench",
					Batching: Batching{MaxEvents: 500, MaxWaitMS: 100}}); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				rcv.mu.Lock()
				rcv.lags = rcv.lags[:0]
				rcv.mu.Unlock()
				ctx, cancel := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				wg.Go(func() { f.sealer.Run(ctx) })
				wg.Go(func() { f.r.Run(ctx) })
				before := rcv.n.Load()
				tick := time.NewTicker(100 * time.Millisecond) // 10 appends a second of rate/10 events
				sent := 0
				for range seconds * 10 {
					<-tick.C
					f.record(b, fmt.Sprintf("t%d", sent%tenants), rate/10)
					sent++
				}
				tick.Stop()
				want := before + int64(sent*rate/10)
				for rcv.n.Load() < want { // wait for the last ones: state, polled
					time.Sleep(10 * time.Millisecond)
				}
				cancel()
				wg.Wait()
			}
			rcv.mu.Lock()
			lags := slices.Clone(rcv.lags)
			rcv.mu.Unlock()
			slices.Sort(lags)
			q := func(p float64) float64 { return lags[int(p*float64(len(lags)-1))].Seconds() * 1000 }
			b.ReportMetric(q(0.5), "p50-ms")
			b.ReportMetric(q(0.95), "p95-ms")
			b.ReportMetric(q(1), "max-ms")
		})
	}
}

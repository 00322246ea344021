package trailclient_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailhq/trail/trailclient"
)

// BenchmarkRecordSequential: one goroutine records one event after the other,
// each Record waiting for its acknowledgement, with the default
// FlushInterval (200 ms), against the test server over loopback. ns/op is
// the latency of one lone Record: a round trip, not the flush interval.
//
//	go test -run XXX -bench RecordSequential -benchtime 200x ./trailclient/
func BenchmarkRecordSequential(b *testing.B) {
	f, ts := newFlaky(b, nil)
	c := newClient(b, ts.URL, func(c *trailclient.Config) { c.FlushInterval = 0 }) // the default
	ctx := context.Background()
	if _, err := c.Record(ctx, event(-1)); err != nil { // open the connection
		b.Fatal(err)
	}
	start := f.requests.Load()
	b.ResetTimer()
	t0 := time.Now()
	for i := range b.N {
		if _, err := c.Record(ctx, event(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(time.Since(t0).Microseconds())/1000/float64(b.N), "ms/record")
	b.ReportMetric(float64(f.requests.Load()-start)/float64(b.N), "requests/record")
}

// BenchmarkEnqueuePolicy compares a durable Enqueue (written and fsynced
// in the spool, group commit across concurrent callers) with a best-effort
// one (memory only), with 1 and 16 producer goroutines, against the test
// server over loopback. Metrics: events/s accepted by Enqueue, the p50 and
// p99 latency of one Enqueue, and events/s delivered (until Flush returns).
// Run both in one invocation so the ratio is of the same machine load:
//
//	go test -run XXX -bench EnqueuePolicy -benchtime 20000x ./trailclient/
func BenchmarkEnqueuePolicy(b *testing.B) {
	for _, producers := range []int{1, 16} {
		for _, pol := range []trailclient.Policy{trailclient.BestEffort, trailclient.Durable} {
			b.Run(fmt.Sprintf("%s/producers=%d", pol, producers), func(b *testing.B) {
				f, ts := newFlaky(b, nil)
				c := newClient(b, ts.URL, func(c *trailclient.Config) {
					c.Policy = pol
					c.QueueSize = max(b.N, 10_000) // nothing dropped: the comparison is of accepting, not of dropping
					c.FlushInterval = 0            // the default, 200 ms
					if pol == trailclient.Durable {
						c.Spool = b.TempDir()
					}
				})
				ctx := context.Background()
				lat := make([]time.Duration, b.N)
				var next atomic.Int64
				b.ResetTimer()
				t0 := time.Now()
				var wg sync.WaitGroup
				for range producers {
					wg.Go(func() {
						for {
							i := int(next.Add(1)) - 1
							if i >= b.N {
								return
							}
							s := time.Now()
							if _, err := c.Enqueue(ctx, event(i)); err != nil {
								b.Error(err)
								return
							}
							lat[i] = time.Since(s)
						}
					})
				}
				wg.Wait()
				accepted := time.Since(t0)
				if err := c.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				delivered := time.Since(t0)
				b.StopTimer()
				if n := f.count(); n != b.N {
					b.Fatalf("delivered %d of %d", n, b.N)
				}
				slices.Sort(lat)
				b.ReportMetric(float64(b.N)/accepted.Seconds(), "accepted/s")
				b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
				b.ReportMetric(float64(b.N)/delivered.Seconds(), "delivered/s")
			})
		}
	}
}

package trailclient_test

import (
	"context"
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

package bench

import (
	"context"
	"strings"
	"testing"

	"github.com/trailhq/trail/internal/testenv"
)

// TestMixedTiny runs the mixed workload at a tiny size on both stores and
// checks the shape of its results: four lines a store, ratios computed from
// the lines of the same run, every request counted, every read audited,
// no schema left behind. It asserts no speed.
func TestMixedTiny(t *testing.T) {
	pgAvailable(t)
	const writers, readers, batch, requests = 2, 3, 10, 4
	res, err := Run(context.Background(), Config{
		DSN: testenv.PostgresDSN(), Workloads: []string{"mixed"},
		Mixed: MixedConfig{Writers: writers, Readers: readers, Batch: batch, Requests: requests, Prefill: 500},
	})
	if err != nil {
		t.Fatal(err)
	}
	prefix, _ := res[0].Extra["schema_prefix"].(string)
	if n := benchSchemas(t, prefix); !strings.HasPrefix(prefix, "trail_bench_") || n != 0 {
		t.Errorf("%d schemas %q* left behind", n, prefix)
	}
	by := map[string]Result{}
	for _, r := range res[1:] {
		if r.Workload != "mixed" {
			t.Fatalf("unexpected result %+v", r)
		}
		by[r.Name] = r
	}
	if len(by) != 8 {
		t.Fatalf("%d mixed results, want 8: %v", len(by), by)
	}
	for _, store := range []string{"sqlite", "postgres"} {
		ia, im := by[store+" ingest alone"], by[store+" ingest mixed"]
		ra, rm := by[store+" read alone"], by[store+" read mixed"]
		for _, r := range []Result{ia, im, ra, rm} {
			if r.Ops == 0 || r.Seconds <= 0 || !near(r.PerSec, float64(max(r.Events, r.Ops))/r.Seconds) {
				t.Errorf("%s: %d ops, %d events over %fs reported as %f/s", r.Name, r.Ops, r.Events, r.Seconds, r.PerSec)
			}
			if !(r.P50Ms > 0 && r.P50Ms <= r.P95Ms && r.P95Ms <= r.P99Ms && r.P99Ms <= r.Extra["max_ms"].(float64)) {
				t.Errorf("%s: percentiles %f %f %f, max %v", r.Name, r.P50Ms, r.P95Ms, r.P99Ms, r.Extra["max_ms"])
			}
			if r.Extra["failed"] != nil {
				t.Errorf("%s: %v requests refused", r.Name, r.Extra["failed"])
			}
		}
		for _, r := range []Result{ia, im} {
			if r.Ops != writers*requests || r.Events != writers*requests*batch || r.Workers != writers {
				t.Errorf("%s: %d requests, %d events by %d writers; want %d, %d, %d", r.Name, r.Ops, r.Events, r.Workers, writers*requests, writers*requests*batch, writers)
			}
		}
		// Reads alone repeat the mixed phase's reads, reader by reader.
		if ra.Ops != rm.Ops || rm.Ops < readers || ra.Workers != readers {
			t.Errorf("%s: %d reads alone, %d mixed, %d readers", store, ra.Ops, rm.Ops, ra.Workers)
		}
		for _, p := range [][2]Result{{im, ia}, {rm, ra}} {
			m, base := p[0], p[1]
			if m.Ratio == nil || !near(*m.Ratio, m.PerSec/base.PerSec) || m.Baseline != base.Name ||
				!near(m.Extra["p99_ratio"].(float64), m.P99Ms/base.P99Ms) || !near(m.Extra["p50_ratio"].(float64), m.P50Ms/base.P50Ms) {
				t.Errorf("%s against %s: ratio %v, extra %v", m.Name, base.Name, m.Ratio, m.Extra)
			}
		}
		// Every read wrote its audit.read, in no more appends than reads.
		reads, appends := rm.Extra["audit_reads"], rm.Extra["audit_appends"]
		if reads != float64(ra.Ops+rm.Ops) || appends == nil || appends.(float64) < 1 || appends.(float64) > reads.(float64) {
			t.Errorf("%s: %v audit.read events in %v appends for %d reads", store, reads, appends, ra.Ops+rm.Ops)
		}
	}
}

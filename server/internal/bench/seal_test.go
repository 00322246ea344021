package bench

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/trailhq/trail/internal/testenv"
)

// TestSealTiny runs the seal workload for a second per store and checks the
// shape of its results: per store the ingest-alone line and the sealing
// line, whose ratio, target and ingest comparison are computed from the
// numbers measured in the same run, and that it leaves no schema behind. It
// asserts no speed.
func TestSealTiny(t *testing.T) {
	pgAvailable(t)
	res, err := Run(context.Background(), Config{
		DSN: testenv.PostgresDSN(), Workloads: []string{"seal"}, SealDuration: time.Second, SealWriters: 2, SealBatch: 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	prefix, _ := res[0].Extra["schema_prefix"].(string)
	if n := benchSchemas(t, prefix); n != 0 {
		t.Errorf("%d schemas %s* left behind", n, prefix)
	}
	byName := map[string]Result{}
	for _, r := range res[1:] {
		if r.Workload != "seal" {
			t.Fatalf("unexpected result %+v", r)
		}
		byName[r.Name] = r
	}
	if len(byName) != 4 {
		t.Fatalf("results %v, want ingest alone and sealing on sqlite and postgres", byName)
	}
	for _, store := range []string{"sqlite", "postgres"} {
		alone, ok := byName[store+" ingest alone"]
		if !ok || alone.Events <= 0 || !near(alone.PerSec, float64(alone.Events)/alone.Seconds) || alone.Workers != 2 {
			t.Fatalf("%s ingest alone: %+v", store, alone)
		}
		r, ok := byName[store]
		if !ok || r.Events <= 0 || r.Ops < 1 || r.Workers != 2 || !near(r.PerSec, float64(r.Events)/r.Seconds) {
			t.Fatalf("%s: %+v", store, r)
		}
		sealed, _ := r.Extra["sealed"].(int64)
		if r.Ratio == nil || !near(*r.Ratio, float64(sealed)/float64(r.Events)) || r.Baseline != "ingested" {
			t.Errorf("%s: ratio %v from %d sealed of %d ingested", store, r.Ratio, sealed, r.Events)
		}
		maxLag, _ := r.Extra["max_lag_ms"].(float64)
		if !(r.P50Ms <= r.P95Ms && r.P95Ms <= r.P99Ms && r.P99Ms <= maxLag) {
			t.Errorf("%s: lag percentiles %f %f %f, max %f", store, r.P50Ms, r.P95Ms, r.P99Ms, maxLag)
		}
		if r.MeetsTarget == nil || *r.MeetsTarget != (maxLag < 2000) || r.Extra["target_max_lag_ms"] != 2000.0 {
			t.Errorf("%s: meets target %v with max lag %f ms", store, r.MeetsTarget, maxLag)
		}
		if v, _ := r.Extra["ingest_vs_alone"].(float64); !near(v, r.PerSec/alone.PerSec) {
			t.Errorf("%s: ingest vs alone %f, measured %f/%f", store, v, r.PerSec, alone.PerSec)
		}
	}
}

func TestSealConfigErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []Config{
		{DSN: "x", Workloads: []string{"seal"}, SealDuration: 500 * time.Millisecond},
		{DSN: "x", Workloads: []string{"seal"}, SealWriters: -1},
		{DSN: "x", Workloads: []string{"seal"}, SealBatch: -5},
	} {
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("Run(%+v) succeeded", c)
		}
	}
}

func TestSlope(t *testing.T) {
	t.Parallel()
	xs := []float64{0, 1, 2, 3}
	if got := slope(xs, []time.Duration{0, 500 * time.Millisecond, time.Second, 1500 * time.Millisecond}); math.Abs(got-0.5) > 1e-9 {
		t.Errorf("slope of a lag growing 0.5 s per s: %f", got)
	}
	if got := slope(xs, []time.Duration{time.Second, time.Second, time.Second, time.Second}); got != 0 {
		t.Errorf("slope of a flat lag: %f", got)
	}
	if got := slope(xs[:1], []time.Duration{time.Second}); got != 0 {
		t.Errorf("slope of one sample: %f", got)
	}
}

package bench

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail/internal/testenv"
)

func pgAvailable(t *testing.T) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), testenv.PostgresDSN())
	if err != nil {
		testenv.Unavailable(t, "PostgreSQL", err)
		return
	}
	conn.Close(context.Background())
}

// benchSchemas counts the schemas whose name starts with prefix.
func benchSchemas(t *testing.T, prefix string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), testenv.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_namespace WHERE starts_with(nspname, $1)", prefix).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// TestRunTiny runs every workload at a tiny size and checks the shape of
// the results, that each ratio is computed from the numbers measured in the
// same run, and that the run leaves no schema behind. It asserts no speed.
func TestRunTiny(t *testing.T) {
	pgAvailable(t)
	var emitted []Result
	res, err := Run(context.Background(), Config{
		DSN: testenv.PostgresDSN(), Events: 2000, BatchSize: 500, Transactions: 60, Workers: []int{1, 3}, Queries: 12,
		Emit: func(r Result) { emitted = append(emitted, r) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(emitted) != len(res) {
		t.Fatalf("emitted %d results, returned %d", len(emitted), len(res))
	}
	if res[0].Workload != "machine" || res[0].Extra["postgres"] == "" || res[0].Extra["nproc"] == nil {
		t.Fatalf("first result is not the machine: %+v", res[0])
	}
	// The run's own schemas are gone (other runs may be going on).
	prefix, _ := res[0].Extra["schema_prefix"].(string)
	if !strings.HasPrefix(prefix, "trail_bench_") {
		t.Fatalf("schema prefix %q", prefix)
	}
	if n := benchSchemas(t, prefix); n != 0 {
		t.Errorf("%d schemas %s* left behind", n, prefix)
	}
	byKey := map[string]Result{}
	count := map[string]int{}
	for _, r := range res {
		// Every result is one JSON object with a workload and a name.
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil || m["workload"] == nil || m["name"] == nil || strings.Contains(string(b), "\n") {
			t.Errorf("bad JSON line %s (%v)", b, err)
		}
		key := r.Workload + "/" + r.Name
		if r.Workers > 0 {
			key += "/" + string(rune('0'+r.Workers))
		}
		byKey[key] = r
		count[r.Workload]++
	}

	// W1: every variant at both worker counts; ratios against the unaudited
	// run at the same concurrency.
	for _, w := range []string{"1", "3"} {
		base, ok := byKey["w1/unaudited/"+w]
		if !ok || base.Ops != 60 || base.PerSec <= 0 || base.Ratio != nil {
			t.Fatalf("w1 unaudited at %s workers: %+v", w, base)
		}
		for _, v := range []string{"begintx", "recordtx", "queue", "trigger"} {
			r, ok := byKey["w1/"+v+"/"+w]
			if !ok || r.Ratio == nil || r.Target == nil || r.MeetsTarget == nil {
				t.Fatalf("w1 %s at %s workers: %+v", v, w, r)
			}
			if r.Ops != 60 || r.Baseline != "unaudited" || !near(r.PerSec, float64(r.Ops)/r.Seconds) {
				t.Errorf("w1 %s: ops %d over %fs reported as %f/s", v, r.Ops, r.Seconds, r.PerSec)
			}
			if want := r.PerSec / base.PerSec; !near(*r.Ratio, want) {
				t.Errorf("w1 %s ratio %f, measured %f/%f = %f", v, *r.Ratio, r.PerSec, base.PerSec, want)
			}
			if *r.MeetsTarget != (*r.Ratio >= *r.Target) || *r.Target != 0.95 {
				t.Errorf("w1 %s: meets %v with ratio %f, target %f", v, *r.MeetsTarget, *r.Ratio, *r.Target)
			}
			if !(r.P50Ms > 0 && r.P50Ms <= r.P95Ms && r.P95Ms <= r.P99Ms) {
				t.Errorf("w1 %s percentiles %f %f %f", v, r.P50Ms, r.P95Ms, r.P99Ms)
			}
		}
		if tr, ok := byKey["w1/trigger/"+w]; !ok || (tr.Ratio == nil && tr.Note == "") {
			t.Errorf("w1 trigger at %s workers neither measured nor explained: %+v", w, tr)
		}
	}

	// W2: the same number of events both ways; ratio = trail / raw.
	tr, raw := byKey["w2/trail"], byKey["w2/raw_copy"]
	if tr.Events != 2000 || raw.Events != 2000 || tr.Ratio == nil || raw.Ratio != nil {
		t.Fatalf("w2: %+v %+v", tr, raw)
	}
	if want := tr.PerSec / raw.PerSec; !near(*tr.Ratio, want) || !near(tr.PerSec, 2000/tr.Seconds) || !near(raw.PerSec, 2000/raw.Seconds) {
		t.Errorf("w2 ratio %f from %f and %f", *tr.Ratio, tr.PerSec, raw.PerSec)
	}
	if *tr.Target != 0.8 || *tr.MeetsTarget != (*tr.Ratio >= 0.8) {
		t.Errorf("w2 target: %+v", tr)
	}

	// W3: five questions, each asked Queries times; the first three against
	// the 5 ms p95 target, and the questions find rows (the parameters come
	// from written events).
	if count["w3"] != 11 {
		t.Errorf("w3 results: %d, want 5 questions and 6 seed comparisons", count["w3"])
	}
	// Beside the seed table: warm sessions Queries times, cold ones a fifth
	// of that; Ratio is Trail's p95 over the seed's.
	for _, q := range []string{"newest_50_of_tenant", "user_in_tenant_30_days", "object_history"} {
		for session, ops := range map[string]int{"warm": 12, "cold": 2} {
			r, ok := byKey["w3/"+q+"_vs_seed_"+session]
			seed, _ := r.Extra["seed_p95_ms"].(float64)
			if !ok || r.Ops != ops || r.Ratio == nil || seed <= 0 || math.Abs(*r.Ratio-r.P95Ms/seed) > 1e-9 ||
				*r.MeetsTarget != (*r.Ratio <= 1) {
				t.Errorf("w3 %s %s: %+v", q, session, r)
			}
		}
	}
	for name, targeted := range map[string]bool{"newest_of_tenant": true, "user_in_tenant_30_days": true, "object_history": true,
		"tenant_counts_by_action_month": false, "text_in_tenant": false} {
		r, ok := byKey["w3/"+name]
		if !ok || r.Ops != 12 || r.Events != 2000 || !(r.P50Ms > 0 && r.P50Ms <= r.P95Ms && r.P95Ms <= r.P99Ms) {
			t.Errorf("w3 %s: %+v", name, r)
			continue
		}
		if (r.TargetP95Ms != nil) != targeted || targeted && *r.MeetsTarget != (r.P95Ms <= *r.TargetP95Ms) {
			t.Errorf("w3 %s target: %+v", name, r)
		}
		if name != "user_in_tenant_30_days" && r.Extra["mean_rows"].(float64) < 1 {
			t.Errorf("w3 %s found no rows: %+v", name, r)
		}
	}

	// UI: every page rendered Queries times, after storage (each page
	// writes an audit.read event).
	if count["ui"] != len(uiPages) {
		t.Errorf("ui results: %d, want %d", count["ui"], len(uiPages))
	}
	for _, p := range uiPages {
		if r := byKey["ui/"+p.name]; r.Ops != 12 || r.Events != 2000 || !(r.P50Ms > 0 && r.P50Ms <= r.P95Ms && r.P95Ms <= r.P99Ms) {
			t.Errorf("ui %s: %+v", p.name, r)
		}
	}

	// Storage: over the 2000 events; ratio against the seed model.
	st := byKey["storage/bytes_per_event"]
	if st.Events != 2000 || st.BytesPerEvent <= 0 || st.Ratio == nil || !near(*st.Ratio, st.BytesPerEvent/SeedModelBytesPerEvent) {
		t.Errorf("storage: %+v", st)
	}
	if tb, _ := st.Extra["total_bytes"].(int64); !near(st.BytesPerEvent, float64(tb)/2000) {
		t.Errorf("storage: %f B/event but %d bytes in all", st.BytesPerEvent, tb)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []Config{
		{},
		{DSN: "x", Workloads: []string{"w4"}},
		{DSN: "x", Events: -1},
		{DSN: "x", Workers: []int{0}},
		{DSN: "x", Load: "copy"},
		{DSN: "x", Load: LoadSQL, Workloads: []string{"w2", "w3"}},
	} {
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("Run(%+v) succeeded", c)
		}
	}
}

// TestGenerator checks the synthetic data's shape: deterministic by seed,
// 40 actions, descriptions of 60–200 characters, tenants skewed, targets
// that recur (objects with a history) and times within the 400 days.
func TestGenerator(t *testing.T) {
	t.Parallel()
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	a, b := newGenerator(3, end), newGenerator(3, end)
	actions, tenants, targets := map[string]bool{}, map[string]int{}, map[string]int{}
	const n = 20000
	for range n {
		x, y := a.next(), b.next()
		if x.ID != y.ID || x.Description != y.Description || x.Tenant != y.Tenant {
			t.Fatal("the same seed gave different events")
		}
		if l := len(x.Description); l < 60 || l > 200 {
			t.Errorf("description of %d characters: %q", l, x.Description)
		}
		if x.OccurredAt.After(end) || x.OccurredAt.Before(end.AddDate(0, 0, -genDays)) {
			t.Errorf("occurred_at %v outside the span", x.OccurredAt)
		}
		if err := x.Validate(); err != nil {
			t.Fatalf("invalid event: %v", err)
		}
		actions[x.Action] = true
		tenants[x.Tenant]++
		targets[x.Target.ID]++
	}
	if len(actions) != 40 {
		t.Errorf("%d actions, want 40", len(actions))
	}
	if top := tenants[tenantName(0)]; top < n/20 || len(tenants) < 1000 {
		t.Errorf("tenant skew: top tenant %d of %d, %d tenants", top, n, len(tenants))
	}
	if len(targets) == n {
		t.Error("no target has a history")
	}
}

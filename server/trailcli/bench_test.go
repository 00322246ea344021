package trailcli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/trailhq/trail/internal/testenv"
)

// TestBenchCLI runs `trail bench` at a tiny size and checks that --json
// prints one JSON object per line, with the workloads asked for.
func TestBenchCLI(t *testing.T) {
	testenv.Dial(t, "PostgreSQL", "127.0.0.1:5432")
	dsn := testenv.PostgresDSN()
	r := run(t, "", env{}, "bench", "--postgres", dsn, "--workload", "w2,storage", "--events", "1200", "--json")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	seen := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %q: %v", line, err)
		}
		seen[m["workload"].(string)]++
	}
	if seen["machine"] != 1 || seen["w2"] != 2 || seen["storage"] != 1 || seen["w1"] != 0 || seen["w3"] != 0 {
		t.Errorf("results per workload: %v\n%s", seen, r.stdout)
	}
	// Without --json: one readable line per result, with the ratio.
	r = run(t, "", env{}, "bench", "--postgres", dsn, "--workload", "w2", "--events", "600")
	if r.code != ExitOK || !strings.Contains(r.stdout, "ratio=") || strings.Contains(r.stdout, "{") {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestBenchCLIBadInput(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"bench", "--postgres", "postgres://x@127.0.0.1:1/x", "--workload", "w9"},
		{"bench", "--postgres", "postgres://x@127.0.0.1:1/x", "--events", "0"},
		{"bench"}, // no DSN
		{"bench", "--postgres", "postgres://x@127.0.0.1:1/x", "--load", "copy"},
		{"bench", "--postgres", "postgres://x@127.0.0.1:1/x", "--load", "sql", "--workload", "w2,w3"},
		{"bench", "--postgres", "postgres://x@127.0.0.1:1/x", "--workload", "mixed", "--mixed-batch", "1001"},
		{"bench", "--postgres", "postgres://x@127.0.0.1:1/x", "--workload", "mixed", "--mixed-readers", "0"},
	} {
		r := run(t, "", env{}, args...)
		if r.code != ExitUsage || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	// A server that does not answer is a failure (exit 1), not bad usage.
	r := run(t, "", env{}, "bench", "--postgres", "postgres://x@127.0.0.1:1/x?connect_timeout=2", "--workload", "storage", "--events", "10")
	if r.code != ExitFailure || !strings.Contains(r.stderr, "PostgreSQL") {
		t.Errorf("unreachable server: exit %d, stderr %q", r.code, r.stderr)
	}
}

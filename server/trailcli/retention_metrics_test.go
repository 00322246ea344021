package trailcli

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var retentionSampleRE = regexp.MustCompile(`(?m)^(trail_retention_\w+_total) (\d+)$`)

// trail serve --retention exports the scheduler's counters at /metrics;
// without --retention there are none.
func TestServeRetentionMetrics(t *testing.T) {
	db := tempDB(t)
	arc := filepath.Join(t.TempDir(), "archive")
	seedOld(t, db)
	mustRun(t, db, env{}, "seal")
	mustRun(t, db, env{}, "retention", "set", "--keep", "365d")

	base, _, stop := startServe(t, db, "--retention", "--archive-to", arc, "--retention-interval", "1h")
	deadline := time.Now().Add(60 * time.Second)
	var got map[string]int64
	for {
		code, body := get(t, base+"/metrics", "")
		if code != 200 {
			t.Fatalf("GET /metrics: %d %s", code, body)
		}
		got = map[string]int64{}
		for _, m := range retentionSampleRE.FindAllStringSubmatch(string(body), -1) {
			got[m[1]], _ = strconv.ParseInt(m[2], 10, 64)
		}
		if len(got) != 4 {
			t.Fatalf("want 4 retention metrics, got %v in:\n%s", got, body)
		}
		// The first run is done once it has counted what it purged.
		if got["trail_retention_runs_total"] >= 1 && (got["trail_retention_purged_events_total"] > 0 || got["trail_retention_failures_total"] > 0) {
			break
		}
		if time.Now().After(deadline) {
			code, out := stop()
			t.Fatalf("no retention run counted: %v (exit %d): %s", got, code, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, out := stop(); code != 0 {
		t.Fatalf("serve exit %d: %s", code, out)
	}
	if got["trail_retention_runs_total"] != 1 || got["trail_retention_failures_total"] != 0 || got["trail_retention_archived_events_total"] == 0 {
		t.Fatalf("retention metrics after one run: %v", got)
	}

	base, _, stop = startServe(t, db)
	code, body := get(t, base+"/metrics", "")
	if c, out := stop(); c != 0 {
		t.Fatalf("serve exit %d: %s", c, out)
	}
	if code != 200 || strings.Contains(string(body), "trail_retention_") {
		t.Fatalf("serve without --retention: %d, retention metrics present:\n%s", code, body)
	}
}

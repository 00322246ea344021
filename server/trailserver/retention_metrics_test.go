package trailserver_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/trailhq/trail/server/trailserver"
)

var retentionMetricNames = []string{
	"trail_retention_runs_total",
	"trail_retention_archived_events_total",
	"trail_retention_purged_events_total",
	"trail_retention_failures_total",
}

// scrapeMetrics serves srv over httptest and returns the body of GET /metrics.
func scrapeMetrics(t *testing.T, ts *httptest.Server) string {
	t.Helper()
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	return string(body)
}

func TestRetentionMetrics(t *testing.T) {
	t.Run("with hook", func(t *testing.T) {
		st, ks := openSQLite(t)
		var runs atomic.Int64
		runs.Store(7)
		srv, err := trailserver.New(trailserver.Config{Store: st, Keys: ks, RateLimit: -1,
			RetentionStats: func() trailserver.RetentionStats {
				return trailserver.RetentionStats{Runs: runs.Load(), Archived: 1234, Purged: 1200, Failures: 2}
			}})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv)
		t.Cleanup(func() { srv.Close(); ts.Close() })

		body := scrapeMetrics(t, ts)
		for _, want := range []string{
			"trail_retention_runs_total 7\n",
			"trail_retention_archived_events_total 1234\n",
			"trail_retention_purged_events_total 1200\n",
			"trail_retention_failures_total 2\n",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("metrics lack %q", want)
			}
		}
		for _, name := range retentionMetricNames {
			if !strings.Contains(body, "# TYPE "+name+" counter\n") {
				t.Errorf("metrics lack the counter TYPE line of %s", name)
			}
			if n := strings.Count(body, "\n"+name+" "); n != 1 {
				t.Errorf("%s: %d samples, want 1", name, n)
			}
		}
		// The hook is read at every scrape, not once.
		runs.Store(8)
		if body := scrapeMetrics(t, ts); !strings.Contains(body, "trail_retention_runs_total 8\n") {
			t.Errorf("second scrape lacks trail_retention_runs_total 8")
		}
	})
	t.Run("without hook", func(t *testing.T) {
		st, ks := openSQLite(t)
		srv, err := trailserver.New(trailserver.Config{Store: st, Keys: ks, RateLimit: -1})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv)
		t.Cleanup(func() { srv.Close(); ts.Close() })
		body := scrapeMetrics(t, ts)
		if strings.Contains(body, "trail_retention_") {
			t.Errorf("metrics without a scheduler mention retention:\n%s", body)
		}
		if !strings.Contains(body, "process_start_time_seconds ") {
			t.Errorf("metrics incomplete:\n%s", body)
		}
	})
}

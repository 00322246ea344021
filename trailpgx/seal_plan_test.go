package trailpgx

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
	"github.com/trailhq/trail/trailseal/sealtest"
)

// TestAttachEventsPlan checks that verify's read of a batch's events probes
// an index per event on an analyzed table, whatever the planner's
// estimates: with a plain join it chose a sequential scan of the month's
// partition for every 1,000-event batch, a cost that grows with the log.
func TestAttachEventsPlan(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 50k events")
	}
	t.Parallel()
	p := benchPool(t)
	s := benchStore(t, p)
	ctx := context.Background()
	const n = 50000
	for i := 0; i < n; i += 5000 {
		evs := make([]trail.Event, 5000)
		for k := range evs {
			evs[k] = sealtest.Event(t, fmt.Sprintf("s%d", (i+k)%10), i+k)
		}
		if _, err := s.Append(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	signer, _ := sealtest.TestKey(t, "trail.test")
	sl, err := trailseal.NewSealer(s, &trailseal.Config{Signer: signer, Origin: "trail.test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sl.SealAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Exec(ctx, "ANALYZE "+s.schema+".events; ANALYZE "+s.schema+".seal_leaves"); err != nil {
		t.Fatal(err)
	}
	ses, err := s.Leaves(ctx, "s3", 2000, 3000)
	if err != nil || len(ses) != 1000 {
		t.Fatalf("leaves: %d, %v", len(ses), err)
	}
	ids := make([]pgtype.UUID, len(ses))
	ats := make([]time.Time, len(ses))
	for i := range ses {
		if ses[i].Event == nil {
			t.Fatalf("seq %d: event not attached", ses[i].Seq)
		}
		ids[i] = pgtype.UUID{Bytes: ses[i].EventID, Valid: true}
		ats[i] = ses[i].OccurredAt
	}
	noSeqScan(t, p, s.attachEventsSQL(), ids, ats)
	// The sealer's reads of its queue with a log behind it: a queued ID
	// already sealed is skipped, by one probe per queued row, not by an
	// anti-join against every leaf (TestPendingPlan, issue 14 item 7).
	more := make([]trail.Event, 5000)
	for k := range more {
		more[k] = sealtest.Event(t, fmt.Sprintf("s%d", k%10), n+k)
	}
	if _, err := s.Append(ctx, more); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Exec(ctx, "ANALYZE "+s.schema+".seal_pending"); err != nil {
		t.Fatal(err)
	}
	// The queue itself may be read sequentially (a cost of the backlog, not
	// of the log); the leaves and the events may not.
	notQueue := func(rel string) bool {
		return strings.HasPrefix(rel, "events") || strings.HasPrefix(rel, "seal_") && rel != "seal_pending"
	}
	noSeqScanOf(t, p, notQueue, s.pendingHeadSQL(), 2000)
	noSeqScanOf(t, p, notQueue, s.headJoin(qualifiedColumns), 2000)
	// The sealer's edge read: many one-hash ranges over every log
	// (HashesOf), which a plain join hash-joined against a sequential scan
	// of seal_hashes.
	var ranges []trailseal.LogRange
	for i := range 180 {
		x := int64(1000 + 50*i)
		ranges = append(ranges, trailseal.LogRange{Log: fmt.Sprintf("s%d", i%10), From: x, To: x + 1})
	}
	logs, from, to := rangeArgs(ranges)
	noSeqScan(t, p, s.hashesOfSQL(), logs, from, to)
	hs, err := s.HashesOf(ctx, ranges)
	if err != nil || len(hs) != len(ranges) || len(hs[0]) != 1 {
		t.Fatalf("HashesOf: %d answers, %v", len(hs), err)
	}
}

// noSeqScan fails t when the plan of query reads an events partition
// or a seal table by a sequential scan planned to return rows.
func noSeqScan(t *testing.T, p interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, query string, args ...any) {
	t.Helper()
	noSeqScanOf(t, p, func(rel string) bool { return strings.HasPrefix(rel, "events") || strings.HasPrefix(rel, "seal_") }, query, args...)
}

// noSeqScanOf is noSeqScan of the relations watch reports true for.
func noSeqScanOf(t *testing.T, p interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, watch func(rel string) bool, query string, args ...any) {
	t.Helper()
	var plan []byte
	if err := p.QueryRow(context.Background(), "EXPLAIN (FORMAT JSON) "+query, args...).Scan(&plan); err != nil {
		t.Fatal(err)
	}
	var nodes []map[string]any
	if err := json.Unmarshal(plan, &nodes); err != nil {
		t.Fatal(err)
	}
	var walk func(m map[string]any)
	walk = func(m map[string]any) {
		rel, _ := m["Relation Name"].(string)
		if typ, _ := m["Node Type"].(string); strings.Contains(typ, "Seq Scan") && watch(rel) {
			// Empty partitions (no rows, never executed) are planned as
			// sequential scans at no cost; the month holding the events is not.
			if rows, _ := m["Plan Rows"].(float64); rows > 1 {
				t.Errorf("sequential scan of %s (%v rows planned)\n%s", rel, rows, plan)
			}
		}
		kids, _ := m["Plans"].([]any)
		for _, k := range kids {
			walk(k.(map[string]any))
		}
	}
	for _, n := range nodes {
		walk(n["Plan"].(map[string]any))
	}
}

package trailarchive

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailhq/trail/trailseal"
)

func TestUnpurged(t *testing.T) {
	t.Parallel()
	r := func(from, to int64) trailseal.SeqRange { return trailseal.SeqRange{From: from, To: to} }
	p := func(from, to int64) PurgedRange { return PurgedRange{From: from, To: to} }
	cases := []struct {
		name   string
		purged []PurgedRange
		size   int64
		want   []trailseal.SeqRange
	}{
		{"nothing purged", nil, 10, []trailseal.SeqRange{r(0, 10)}},
		{"empty log", nil, 0, nil},
		{"prefix", []PurgedRange{p(0, 4)}, 10, []trailseal.SeqRange{r(4, 10)}},
		{"holes, unsorted, overlapping", []PurgedRange{p(6, 8), p(0, 2), p(1, 3), p(8, 9)}, 10,
			[]trailseal.SeqRange{r(3, 6), r(9, 10)}},
		{"all", []PurgedRange{p(0, 10)}, 10, nil},
		{"beyond size", []PurgedRange{p(2, 4), p(12, 15)}, 10, []trailseal.SeqRange{r(0, 2), r(4, 10)}},
	}
	for _, c := range cases {
		if got := unpurged(c.purged, c.size); !slices.Equal(got, c.want) {
			t.Errorf("%s: unpurged = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestCutoffIsAWholeDay(t *testing.T) {
	t.Parallel()
	n := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	c := cutoff(n, 90*Day)
	if want := time.Date(2026, 8, 3, 0, 0, 0, 0, time.UTC); !c.Equal(want) {
		t.Fatalf("cutoff = %v, want %v", c, want)
	}
	// An event recorded in the afternoon of the day now-keep falls on stays
	// until that whole day has passed; one of the day before goes.
	if in := n.Add(-90*Day + 3*time.Hour); in.Before(c) {
		t.Fatal("an event of the boundary day left early")
	}
	if out := time.Date(2026, 8, 2, 23, 59, 0, 0, time.UTC); !out.Before(c) {
		t.Fatal("an event of the day before the boundary stayed")
	}
}

// countingLog counts the leaves a plan reads.
type countingLog struct {
	trailseal.Store
	read atomic.Int64
}

func (c *countingLog) Leaves(ctx context.Context, log string, from, to int64) ([]trailseal.SealedEvent, error) {
	ls, err := c.Store.Leaves(ctx, log, from, to)
	c.read.Add(int64(len(ls)))
	return ls, err
}

type countingBackend struct {
	Backend
	log *countingLog
}

func (b countingBackend) Log() trailseal.Store { return b.log }

// A plan reads neither what retention already purged nor, once a chunk holds
// only events too young for any policy, the rest of the log: a scheduled run
// costs what is old, not the whole store.
func TestPlanReadsOnlyWhatMayBeOld(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		ctx := context.Background()
		f := newFixtureOn(t, kind, 730*Day, 12*time.Hour) // 1460 events, 3 logs
		if err := f.backend.SetPolicy(ctx, Policy{Keep: 365 * Day, Then: ThenDelete}); err != nil {
			t.Fatal(err)
		}
		cl := &countingLog{Store: f.backend.Log()}
		r := f.runner(t, func(c *Config) { c.Backend = countingBackend{f.backend, cl}; c.ScanChunk = 20 })
		plan, err := r.Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		first := cl.read.Load()
		_, del := plan.Totals()
		if del < 600 || first >= 1460 {
			t.Fatalf("first plan deletes %d and read %d of 1460 leaves: it should stop at the young half", del, first)
		}
		if _, err := r.Run(ctx, plan); err != nil {
			t.Fatal(err)
		}
		cl.read.Store(0)
		again, err := r.Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		a, d := again.Totals()
		if a+d != 0 {
			t.Fatalf("second plan still has %d+%d events", a, d)
		}
		// Per log: the purged prefix is skipped, and the scan stops within
		// the two chunks that reach past the horizon.
		if n := cl.read.Load(); n > 3*2*20+3 {
			t.Fatalf("second plan read %d leaves", n)
		}
	})
}

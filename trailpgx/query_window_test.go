package trailpgx_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailpgx"
)

// TestQueryRecentWindow checks the first page that looks in the last two
// months first (Query's recentWindow): tenants with a full page inside the
// window, with part of a page inside, with nothing inside, ties at the
// window's start, Until inside and before the window, and paging on from
// such a page, all against the events sorted in Go.
func TestQueryRecentWindow(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	s := newStore(t, &trailpgx.Config{Now: func() time.Time { return now }})
	ctx := context.Background()
	start := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC) // the window's start
	var evs []trail.Event
	add := func(tenant string, at time.Time) {
		id, _ := uuid.NewV7()
		evs = append(evs, trail.Event{ID: id, OccurredAt: at, RecordedAt: now, Tenant: tenant,
			Actor: trail.Actor{Type: trail.ActorUser, ID: "u1"}, Action: "doc.update", Outcome: trail.OutcomeSuccess,
			SchemaVersion: trail.SchemaVersion})
	}
	for i := range 30 {
		add("full", now.Add(-time.Duration(i)*time.Hour))        // all in the window
		add("part", start.Add(time.Duration(i-20)*24*time.Hour)) // 10 in it, 20 before
		add("old", start.AddDate(0, -3, -i))                     // none in it
		add("full", start.AddDate(-1, 0, -i))
	}
	for range 3 { // ties at the start, on both sides of the boundary
		add("edge", start)
		add("edge", start.Add(-time.Microsecond))
	}
	add("edge", start.Add(time.Microsecond))
	if _, err := s.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	want := func(tenant string, until time.Time) []uuid.UUID {
		var out []trail.Event
		for _, ev := range evs {
			if ev.Tenant == tenant && (until.IsZero() || ev.OccurredAt.Before(until)) {
				out = append(out, ev)
			}
		}
		slices.SortFunc(out, func(a, b trail.Event) int {
			return cmp.Or(b.OccurredAt.Compare(a.OccurredAt), slices.Compare(b.ID[:], a.ID[:]))
		})
		ids := make([]uuid.UUID, len(out))
		for i, ev := range out {
			ids[i] = ev.ID
		}
		return ids
	}
	for _, tenant := range []string{"full", "part", "old", "edge", "none"} {
		for _, until := range []time.Time{{}, now.Add(-5 * time.Hour), start.Add(time.Hour), start.AddDate(0, -2, 0)} {
			for _, limit := range []int{1, 3, 7, 10, 11, 29, 30, 100} {
				name := fmt.Sprintf("%s until %s limit %d", tenant, until.Format(time.DateTime), limit)
				var got []uuid.UUID
				q := trail.Query{Tenant: tenant, Until: until, Limit: limit}
				for pages := 0; ; pages++ {
					page, err := s.Query(ctx, q)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					if len(page.Events) > limit || (page.Next != "" && len(page.Events) != limit) {
						t.Fatalf("%s: page of %d events, next %q", name, len(page.Events), page.Next)
					}
					for _, ev := range page.Events {
						got = append(got, ev.ID)
					}
					if page.Next == "" || pages > 100 {
						break
					}
					q.Cursor = page.Next
				}
				if w := want(tenant, until); !slices.Equal(got, w) {
					t.Errorf("%s: got %d events %v, want %d %v", name, len(got), got, len(w), w)
				}
			}
		}
	}
}

package trailsqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

// TestQueryPlans shows, with EXPLAIN QUERY PLAN, that the questions Trail is
// asked most use an index instead of reading the whole table, both on a
// fresh database and after ANALYZE has seen realistic data.
func TestQueryPlans(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "plan.db"), &Config{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	cursor := trail.EncodeCursor(trail.Cursor{OccurredAt: time.Now(), ID: uuid.New()})
	since := time.Now().Add(-30 * 24 * time.Hour)
	cases := []struct {
		name  string
		q     trail.Query
		index string // the index the plan must search
		order bool   // the index also gives the order: no sort step
	}{
		{"tenant newest", trail.Query{Tenant: "t1"}, "trail_events_tenant_time", true},
		{"tenant newest, next page", trail.Query{Tenant: "t1", Cursor: cursor}, "trail_events_tenant_time", true},
		{"all tenants newest", trail.Query{AllTenants: true}, "trail_events_time", true},
		{"user in tenant, 30 days", trail.Query{Tenant: "t1", ActorType: trail.ActorUser, ActorID: "u1", Since: since}, "trail_events_actor", true},
		{"object history", trail.Query{AllTenants: true, TargetType: "subscription", TargetID: "s1"}, "trail_events_target", true},
		{"object history in tenant", trail.Query{Tenant: "t1", TargetType: "subscription", TargetID: "s1"}, "trail_events_target", true},
		{"user in tenant, next page", trail.Query{Tenant: "t1", ActorType: trail.ActorUser, ActorID: "u1", Cursor: cursor}, "trail_events_actor", true},
		{"object history, next page", trail.Query{AllTenants: true, TargetType: "subscription", TargetID: "s1", Cursor: cursor}, "trail_events_target", true},
		{"object history in tenant, 30 days", trail.Query{Tenant: "t1", TargetType: "subscription", TargetID: "s1", Since: since}, "trail_events_target", true},
		{"exact action in tenant", trail.Query{Tenant: "t1", Action: "subscription.update"}, "trail_events_action", true},
		{"action prefix in tenant", trail.Query{Tenant: "t1", Action: "subscription.*"}, "trail_events_", false},
		{"changed field", trail.Query{Tenant: "t1", Field: "plan"}, "trail_event_fields", false},
		{"text", trail.Query{Tenant: "t1", Text: "plan"}, "trail_events_fts", false},
	}
	check := func(t *testing.T, query string, args []any, index string, order bool) {
		t.Helper()
		plan := explain(t, s, query, args)
		t.Logf("%s", plan)
		if !strings.Contains(plan, index) {
			t.Errorf("plan does not use %s:\n%s", index, plan)
		}
		for _, line := range strings.Split(plan, "\n") {
			if strings.TrimSpace(line) == "SCAN trail_events" {
				t.Errorf("plan reads the whole table:\n%s", plan)
			}
		}
		if order && strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("plan sorts instead of reading the index in order:\n%s", plan)
		}
	}
	run := func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				query, args, ok, err := buildQuery(c.q, 101)
				if err != nil || !ok {
					t.Fatal(ok, err)
				}
				check(t, query, args, c.index, c.order)
			})
		}
		t.Run("counts by day in tenant", func(t *testing.T) {
			query, args := buildCounts(trail.CountQuery{Tenant: "t1", Since: since}, 86400000000)
			check(t, query, args, "COVERING INDEX trail_events_tenant_time", false)
		})
		t.Run("counts by day, user in tenant", func(t *testing.T) {
			query, args := buildCounts(trail.CountQuery{Tenant: "t1", ActorID: "u1", Since: since}, 86400000000)
			check(t, query, args, "INDEX trail_events_actor (utc_day=? AND tenant=? AND actor_id=?", false)
		})
		t.Run("counts by day, action prefix", func(t *testing.T) {
			query, args := buildCounts(trail.CountQuery{Tenant: "t1", Action: "subscription.*"}, 86400000000)
			// Covering: the query does not name utc_day (a virtual column,
			// whose mention makes SQLite read each match's row). Without
			// statistics the tenant's time index (it holds the action);
			// with them the action index, skipping from day to day.
			check(t, query, args, "COVERING INDEX trail_events_", false)
		})
	}
	t.Run("empty", run)

	// 20 tenants with a skew, 200 users, 12 actions, 3000 targets.
	var evs []trail.Event
	base := time.Now().Add(-200 * 24 * time.Hour)
	actions := []string{"user.create", "user.update", "user.delete", "subscription.update", "subscription.plan.change",
		"auth.login", "auth.logout", "invoice.pay", "invoice.create", "project.create", "project.update", "project.delete"}
	for i := range 20000 {
		ev := trail.Event{
			OccurredAt:  base.Add(time.Duration(i) * 13 * time.Minute / 10),
			Tenant:      fmt.Sprintf("t%d", (i*i)%20),
			Actor:       trail.Actor{Type: trail.ActorUser, ID: fmt.Sprintf("u%d", i%200)},
			Action:      actions[i%len(actions)],
			Target:      trail.Target{Type: "subscription", ID: fmt.Sprintf("s%d", i%3000)},
			Description: "Changed subscription plan to pro",
			Changes:     []trail.Change{trail.Changed("plan", "free", "pro")},
		}
		if err := ev.Normalize(); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	for i := 0; i < len(evs); i += 1000 {
		if _, err := s.Append(ctx, evs[i:i+1000]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.db.ExecContext(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	t.Run("analyzed", run)
}

func explain(t *testing.T, s *Store, query string, args []any) string {
	t.Helper()
	rows, err := s.db.Query("EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("explain: %v\n%s", err, query)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s\n", detail)
	}
	return b.String()
}

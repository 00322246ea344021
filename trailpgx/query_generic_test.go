package trailpgx_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/trailpgx"
)

// TestQueryMonths checks a tenant's pages across month partitions (the
// generic plan reads the partitions newest first and stops at the page's
// end; a connection's first read asks the last two months first):
// tenants with a full page in the last two months, with part of a page
// there, with nothing there, ties at a month's start, Until inside and
// before those months, and paging on, all against the events sorted in Go,
// each page read both ways: on a connection that has read its shape before
// (generic plan) and on one that has not (custom plans, firstRead).
func TestQueryMonths(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	schema := testenv.FreshSchema(t, testPool(t))
	cfg := &trailpgx.Config{Schema: schema, Now: func() time.Time { return now }}
	s := newStore(t, cfg)
	conn, err := pgx.Connect(ctx, testenv.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	first := true // whether the next read is the connection's first of its shape
	single, err := trailpgx.NewWithAcquirer(ctx, func(ctx context.Context, fn func(*pgx.Conn) error) error {
		if first {
			delete(conn.PgConn().CustomData(), trailpgx.PlannedKey)
		}
		return fn(conn)
	}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC) // a month's start
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
				for _, first = range []bool{true, false} {
					name := fmt.Sprintf("%s until %s limit %d, first read %v", tenant, until.Format(time.DateTime), limit, first)
					var got []uuid.UUID
					q := trail.Query{Tenant: tenant, Until: until, Limit: limit}
					for pages := 0; ; pages++ {
						page, err := single.Query(ctx, q)
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
}

// readStatements returns how many statements reading the events table are
// prepared on conn, and how many times the server has executed them.
func readStatements(t *testing.T, conn *pgx.Conn) (n int, executions int64) {
	t.Helper()
	err := conn.QueryRow(context.Background(), `SELECT count(*), coalesce(sum(generic_plans + custom_plans), 0)
		FROM pg_prepared_statements WHERE statement LIKE '%.events WHERE%' AND statement NOT LIKE '%pg_prepared_statements%'`).Scan(&n, &executions)
	if err != nil {
		t.Fatal(err)
	}
	return n, executions
}

// TestGenericReadSettings checks that the settings of a generic read end
// with it, on success and on failure, so that the connection's other
// statements are planned as before.
func TestGenericReadSettings(t *testing.T) {
	ctx := context.Background()
	p := testPool(t)
	schema := testenv.FreshSchema(t, p)
	conn, err := pgx.Connect(ctx, testenv.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	s, err := trailpgx.NewWithAcquirer(ctx, func(ctx context.Context, fn func(*pgx.Conn) error) error { return fn(conn) },
		&trailpgx.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	id, _ := uuid.NewV7()
	now := time.Now().UTC().Truncate(time.Microsecond)
	if _, err := s.Append(ctx, []trail.Event{{ID: id, OccurredAt: now, RecordedAt: now, Tenant: "acme",
		Actor: trail.Actor{Type: trail.ActorUser, ID: "u1"}, Action: "doc.update", Outcome: trail.OutcomeSuccess,
		Target: trail.Target{Type: "doc", ID: "d1"}, SchemaVersion: trail.SchemaVersion}}); err != nil {
		t.Fatal(err)
	}
	settings := func(when string) {
		t.Helper()
		var mode, bitmap, sort string
		if err := conn.QueryRow(ctx, "SELECT current_setting('plan_cache_mode'), current_setting('enable_bitmapscan'), current_setting('enable_sort')").
			Scan(&mode, &bitmap, &sort); err != nil {
			t.Fatal(err)
		}
		if mode != "auto" || bitmap != "on" || sort != "on" || conn.PgConn().TxStatus() != 'I' {
			t.Errorf("%s: plan_cache_mode %s, enable_bitmapscan %s, enable_sort %s, transaction status %c", when, mode, bitmap, sort, conn.PgConn().TxStatus())
		}
	}
	for _, q := range []trail.Query{{Tenant: "acme"}, {Tenant: "acme", Since: now.Add(-time.Hour)}, {Tenant: "acme", TargetType: "doc", TargetID: "d1"}} {
		for range 3 {
			page, err := s.Query(ctx, q)
			if err != nil || len(page.Events) != 1 || page.Events[0].ID != id {
				t.Fatalf("%+v: %d events, %v", q, len(page.Events), err)
			}
		}
		settings(fmt.Sprintf("after %+v", q))
	}
	// Page sizes are a parameter: one prepared statement per shape on the
	// connection, not one (and a cached plan) per size.
	before, _ := readStatements(t, conn)
	for limit := 1; limit <= 20; limit++ {
		if _, err := s.Query(ctx, trail.Query{Tenant: "acme", Limit: limit}); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := readStatements(t, conn); n > before+1 {
		t.Errorf("20 page sizes prepared %d statements", n-before)
	}
	// A failing read: the column it selects is gone.
	if _, err := p.Exec(ctx, "ALTER TABLE "+pgx.Identifier{schema}.Sanitize()+".events RENAME COLUMN span_id TO span_gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Query(ctx, trail.Query{Tenant: "acme"}); err == nil {
		t.Fatal("query of a renamed column: no error")
	}
	settings("after a failed read")
}

// TestGenericShapes pins which queries run with a generic plan: a tenant's
// events only. A subject in a tenant keeps its custom plan: generically the
// planner may walk the tenant's time index and filter (it did for object
// history at 100k events over 10,000 tenants). An object's history in a
// tenant runs it under the settings that leave no sort.
func TestGenericShapes(t *testing.T) {
	at := time.Now()
	for _, c := range []struct {
		q               trail.Query
		generic, object bool
	}{
		{trail.Query{Tenant: "acme"}, true, false},
		{trail.Query{Tenant: "acme", Since: at, Until: at, Limit: 10, Cursor: "c"}, true, false},
		{trail.Query{Tenant: "acme", TargetType: "doc", TargetID: "d1"}, false, true},
		{trail.Query{Tenant: "acme", TargetType: "doc", TargetID: "d1", Since: at, Until: at, Limit: 10, Cursor: "c"}, false, true},
		{trail.Query{Tenant: "acme", TargetType: "doc", TargetID: "d1", Action: "doc.*"}, false, false},
		{trail.Query{AllTenants: true, TargetType: "doc", TargetID: "d1"}, false, false},
		{trail.Query{Tenant: "acme", TargetType: "doc"}, false, false},
		{trail.Query{Tenant: "acme", ActorType: trail.ActorUser, ActorID: "u1"}, false, false},
		{trail.Query{Tenant: "acme", Action: "user.*"}, false, false},
		{trail.Query{AllTenants: true}, false, false},
	} {
		if got := trailpgx.GenericShape(c.q); got != c.generic {
			t.Errorf("GenericShape(%+v) = %v, want %v", c.q, got, c.generic)
		}
		if got := trailpgx.ObjectShape(c.q); got != c.object {
			t.Errorf("ObjectShape(%+v) = %v, want %v", c.q, got, c.object)
		}
	}
}

// TestFirstReadOnConnection checks that a connection's first read of a
// tenant's page prepares nothing (custom plans over the last two months:
// no generic plan built over every partition) and its second prepares the
// shape's one statement, with the same page both times; and that a
// connection that forgot its shapes starts over.
func TestFirstReadOnConnection(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	schema := testenv.FreshSchema(t, testPool(t))
	cfg := &trailpgx.Config{Schema: schema}
	s := newStore(t, cfg)
	var evs []trail.Event
	for i := range 12 { // a year back: more than the first read's two months
		id, _ := uuid.NewV7()
		evs = append(evs, trail.Event{ID: id, OccurredAt: now.AddDate(0, -i, 0), RecordedAt: now, Tenant: "acme",
			Actor: trail.Actor{Type: trail.ActorUser, ID: "u1"}, Action: "doc.update", Outcome: trail.OutcomeSuccess,
			SchemaVersion: trail.SchemaVersion})
	}
	if _, err := s.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, testenv.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	one, err := trailpgx.NewWithAcquirer(ctx, func(ctx context.Context, fn func(*pgx.Conn) error) error { return fn(conn) }, cfg)
	if err != nil {
		t.Fatal(err)
	}
	q := trail.Query{Tenant: "acme", Limit: 5}
	var pages [][]uuid.UUID
	for i, want := range []int{0, 1, 1} {
		page, err := one.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var ids []uuid.UUID
		for _, ev := range page.Events {
			ids = append(ids, ev.ID)
		}
		pages = append(pages, ids)
		if n, _ := readStatements(t, conn); n != want {
			t.Errorf("read %d: %d prepared statements on the connection, want %d", i+1, n, want)
		}
	}
	for i, ids := range pages {
		if len(ids) != 5 || ids[0] != evs[0].ID || ids[4] != evs[4].ID || !slices.Equal(ids, pages[0]) {
			t.Errorf("read %d: page %v, want the 5 newest %v", i+1, ids, evs[:5])
		}
	}
	// A connection that has forgotten (a new one, in practice) starts over:
	// the statement stays prepared, but the read runs on custom plans. The
	// server counts the statement's executions.
	calls := func() int64 {
		t.Helper()
		_, n := readStatements(t, conn)
		return n
	}
	before := calls()
	delete(conn.PgConn().CustomData(), trailpgx.PlannedKey)
	if _, err := one.Query(ctx, q); err != nil {
		t.Fatal(err)
	}
	if n := calls(); n != before {
		t.Errorf("a first read executed the prepared statement (%d executions, %d before)", n, before)
	}
	if _, err := one.Query(ctx, q); err != nil {
		t.Fatal(err)
	}
	if n := calls(); n != before+1 {
		t.Errorf("a second read: %d executions of the prepared statement, want %d", n, before+1)
	}
}

package trailpgx_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/trailpgx"
	"github.com/trailhq/trail/trailprivacy"
	"github.com/trailhq/trail/trailsql"
)

// captureFixture is a migrated store plus a business table "accounts" in the
// store's own schema (dropped with it).
type captureFixture struct {
	s   *trailpgx.Store
	tbl string // quoted, schema-qualified
}

func newCaptureFixture(t *testing.T) captureFixture {
	t.Helper()
	s := newStore(t, nil)
	tbl := pgx.Identifier{s.Schema(), "accounts"}.Sanitize()
	mustExec(t, `CREATE TABLE `+tbl+` (
		id bigint PRIMARY KEY, tenant_id text, plan text NOT NULL, seats int NOT NULL DEFAULT 1,
		active boolean NOT NULL DEFAULT true, price numeric, note text, prefs jsonb,
		password text, updated_at timestamptz NOT NULL DEFAULT now())`)
	return captureFixture{s: s, tbl: tbl}
}

func mustExec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := testPool(t).Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func (f captureFixture) enable(t *testing.T, opts trailpgx.CaptureOptions) {
	t.Helper()
	opts.Schema = f.s.Schema()
	if _, err := trailpgx.EnableCapture(context.Background(), testPool(t), f.tbl, opts); err != nil {
		t.Fatal(err)
	}
}

// all returns every event of q, newest first, across pages.
func all(t testing.TB, s *trailpgx.Store, q trail.Query) []trail.Event {
	t.Helper()
	q.Limit = trail.MaxLimit
	var out []trail.Event
	for {
		p, err := s.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Events...)
		if p.Next == "" {
			return out
		}
		q.Cursor = p.Next
	}
}

func changesJSON(t testing.TB, ev trail.Event) string {
	t.Helper()
	var parts []string
	for _, c := range ev.Changes {
		if c.Redacted {
			parts = append(parts, c.Field+"=redacted")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s:%s>%s", c.Field, orAbsent(c.Old), orAbsent(c.New)))
	}
	return strings.Join(parts, " ")
}

func orAbsent(b []byte) string {
	if b == nil {
		return "∅"
	}
	return string(b)
}

// Insert, update and delete become typed events of the changed columns,
// attributed to the context BeginTx carried.
func TestCaptureInsertUpdateDelete(t *testing.T) {
	t.Parallel()
	f := newCaptureFixture(t)
	f.enable(t, trailpgx.CaptureOptions{TenantColumn: "tenant_id", Ignore: []string{"updated_at"}, Redact: []string{"password"}})
	ctx := userCtx() // acme, user:42, req-1
	err := trailpgx.WithTx(ctx, testPool(t), func(tx pgx.Tx) error {
		for _, q := range []string{
			`INSERT INTO ` + f.tbl + ` (id, tenant_id, plan, seats, price, prefs, password) VALUES (1, 'acme', 'free', 3, 12.50, '{"b":[1,true,null],"a":"x"}', 'hunter2')`,
			`UPDATE ` + f.tbl + ` SET plan = 'pro', seats = 10, note = NULL, password = 's3cret', updated_at = now() + interval '1 s' WHERE id = 1`,
			`UPDATE ` + f.tbl + ` SET updated_at = now() + interval '2 s' WHERE id = 1`, // ignored column only: no event
			`UPDATE ` + f.tbl + ` SET active = false, note = 'gone' WHERE id = 1`,
			`DELETE FROM ` + f.tbl + ` WHERE id = 1`,
		} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	evs := all(t, f.s, trail.Query{Tenant: "acme", TargetType: "accounts", TargetID: "1"})
	if len(evs) != 4 {
		t.Fatalf("got %d events, want 4 (insert, 2 updates, delete): %+v", len(evs), evs)
	}
	// Same occurred_at within one transaction is not guaranteed (clock_timestamp per statement), but order is newest first.
	byAction := map[string][]trail.Event{}
	for _, ev := range evs {
		byAction[ev.Action] = append(byAction[ev.Action], ev)
		if ev.Tenant != "acme" || ev.Actor.Type != trail.ActorUser || ev.Actor.ID != "42" || ev.RequestID != "req-1" || ev.Source != "trigger" {
			t.Errorf("%s: tenant %q actor %v request %q source %q", ev.Action, ev.Tenant, ev.Actor, ev.RequestID, ev.Source)
		}
		if ev.Target != (trail.Target{Type: "accounts", ID: "1"}) || ev.Outcome != trail.OutcomeSuccess || ev.ID.Version() != 7 {
			t.Errorf("%s: target %+v outcome %q id version %d", ev.Action, ev.Target, ev.Outcome, ev.ID.Version())
		}
		if err := ev.Validate(); err != nil {
			t.Errorf("%s: captured event does not validate: %v", ev.Action, err)
		}
	}
	want := map[string][]string{
		"accounts.insert": {`active:∅>true id:∅>1 note:∅>null password=redacted plan:∅>"free" prefs:∅>{"a":"x","b":[1,true,null]} price:∅>12.5 seats:∅>3 tenant_id:∅>"acme"`},
		"accounts.update": {
			`active:true>false note:null>"gone"`, // newest first
			`password=redacted plan:"free">"pro" seats:3>10`,
		},
		"accounts.delete": {`active:false>∅ id:1>∅ note:"gone">∅ password=redacted plan:"pro">∅ prefs:{"a":"x","b":[1,true,null]}>∅ price:12.5>∅ seats:10>∅ tenant_id:"acme">∅`},
	}
	for action, ws := range want {
		got := byAction[action]
		if len(got) != len(ws) {
			t.Fatalf("%s: %d events, want %d", action, len(got), len(ws))
		}
		for i, w := range ws {
			if g := changesJSON(t, got[i]); g != w {
				t.Errorf("%s #%d changes:\n got %s\nwant %s", action, i, g, w)
			}
		}
	}
	// The changed fields are indexed like any other event's.
	if n := len(all(t, f.s, trail.Query{Tenant: "acme", Field: "seats"})); n != 3 {
		t.Errorf("Field seats matched %d events, want 3 (insert, update, delete)", n)
	}
	// A captured event round-trips through Get with canonical bytes.
	got, err := f.s.Get(context.Background(), evs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := got.Canonical()
	b, _ := evs[0].Canonical()
	if string(a) != string(b) {
		t.Errorf("Get and Query disagree:\n%s\n%s", a, b)
	}
}

// A raw statement with no Trail context (psql, a migration, a cron job) is
// captured too: a 10,000-row UPDATE yields 10,000 events attributed to the
// database role, written by one trigger call for the whole statement.
func TestCaptureBulkRawSQL(t *testing.T) {
	t.Parallel()
	f := newCaptureFixture(t)
	const n = 10000
	mustExec(t, `INSERT INTO `+f.tbl+` (id, tenant_id, plan) SELECT g, 't' || (g % 7), 'free' FROM generate_series(1, $1) g`, n)
	f.enable(t, trailpgx.CaptureOptions{TenantColumn: "tenant_id", Ignore: []string{"updated_at"}})

	ctx := context.Background()
	conn, err := testPool(t).Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx) // a plain BEGIN, as psql sends: no Trail settings
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var role string
	if err := tx.QueryRow(ctx, "SELECT session_user").Scan(&role); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SET LOCAL track_functions = 'pl'"); err != nil {
		t.Fatal(err)
	}
	tag, err := tx.Exec(ctx, `UPDATE `+f.tbl+` SET plan = 'pro', updated_at = now()`)
	if err != nil {
		t.Fatal(err)
	}
	if tag.RowsAffected() != n {
		t.Fatalf("updated %d rows", tag.RowsAffected())
	}
	var calls int64
	err = tx.QueryRow(ctx, `SELECT coalesce(pg_stat_get_xact_function_calls(tgfoid), 0) FROM pg_trigger
		WHERE tgrelid = $1::regclass AND tgname = 'trail_capture_update'`, f.tbl).Scan(&calls)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("the capture function ran %d times for one UPDATE of %d rows, want 1", calls, n)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	var count, tenants, stamps, actors int
	err = testPool(t).QueryRow(ctx, `SELECT count(*), count(DISTINCT tenant), count(DISTINCT recorded_at), count(DISTINCT (actor_type, actor_id))
		FROM `+pgx.Identifier{f.s.Schema(), "events"}.Sanitize()+` WHERE action = 'accounts.update'`).Scan(&count, &tenants, &stamps, &actors)
	if err != nil {
		t.Fatal(err)
	}
	if count != n || tenants != 7 || stamps != 1 || actors != 1 {
		t.Fatalf("events %d (want %d), tenants %d (want 7), distinct recorded_at %d (want 1: one statement), actors %d", count, n, tenants, stamps, actors)
	}
	evs := all(t, f.s, trail.Query{Tenant: "t3", Action: "accounts.update"})
	if len(evs) != (n-3)/7+1 {
		t.Fatalf("tenant t3: %d events, want %d", len(evs), (n-3)/7+1)
	}
	ev := evs[0]
	if ev.Actor != (trail.Actor{Type: trail.ActorSystem, ID: "db:" + role}) || ev.RequestID != "" {
		t.Errorf("actor %+v request %q, want system db:%s and none", ev.Actor, ev.RequestID, role)
	}
	if got := changesJSON(t, ev); got != `plan:"free">"pro"` {
		t.Errorf("changes %s", got)
	}
	// Every captured ID is unique, and queued for sealing.
	var ids, queued int
	if err := testPool(t).QueryRow(ctx, "SELECT count(DISTINCT id), (SELECT count(*) FROM "+pgx.Identifier{f.s.Schema(), "seal_pending"}.Sanitize()+") FROM "+
		pgx.Identifier{f.s.Schema(), "events"}.Sanitize()).Scan(&ids, &queued); err != nil {
		t.Fatal(err)
	}
	if ids != n || queued != n {
		t.Errorf("%d distinct IDs and %d queued, want %d", ids, queued, n)
	}
}

// The changes of a rolled-back transaction leave no event.
func TestCaptureRollback(t *testing.T) {
	t.Parallel()
	f := newCaptureFixture(t)
	f.enable(t, trailpgx.CaptureOptions{TenantColumn: "tenant_id"})
	boom := errors.New("boom")
	err := trailpgx.WithTx(userCtx(), testPool(t), func(tx pgx.Tx) error {
		if _, err := tx.Exec(context.Background(), `INSERT INTO `+f.tbl+` (id, tenant_id, plan) SELECT g, 'acme', 'free' FROM generate_series(1, 50) g`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if evs := all(t, f.s, trail.Query{AllTenants: true}); len(evs) != 0 {
		t.Fatalf("%d events after rollback", len(evs))
	}
}

// trailsql.BeginTx carries the context to the triggers as trailpgx does;
// the tenant setting wins over the row's column; a composite key is joined.
func TestCaptureDatabaseSQLAndCompositeKey(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	tbl := pgx.Identifier{s.Schema(), "Memberships"}.Sanitize()
	mustExec(t, `CREATE TABLE `+tbl+` (org text, "user" text, role text, tenant text, PRIMARY KEY (org, "user"))`)
	if _, err := trailpgx.EnableCapture(context.Background(), testPool(t), tbl, trailpgx.CaptureOptions{Schema: s.Schema(), TenantColumn: "tenant"}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", testenv.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := trail.WithActor(trail.WithTenant(context.Background(), "globex"), trail.Actor{Type: trail.ActorService, ID: "billing"})
	err = trailsql.WithTx(ctx, db, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO `+tbl+` VALUES ('a,b', 'c\d', 'admin', 'acme')`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	evs := all(t, s, trail.Query{Tenant: "globex"})
	if len(evs) != 1 {
		t.Fatalf("%d events for globex, want 1 (the setting wins over the row's tenant column)", len(evs))
	}
	ev := evs[0]
	if ev.Action != "memberships.insert" || ev.Target.Type != "memberships" || ev.Target.ID != `a\,b,c\\d` || ev.Actor.String() != "service:billing" {
		t.Errorf("action %q target %+v actor %v", ev.Action, ev.Target, ev.Actor)
	}
	caps, err := trailpgx.ListCaptures(context.Background(), testPool(t), s.Schema())
	if err != nil {
		t.Fatal(err)
	}
	if len(caps) != 1 || caps[0].Name != "memberships" || caps[0].TenantColumn != "tenant" || strings.Join(caps[0].Key, "|") != "org|user" {
		t.Errorf("ListCaptures: %+v", caps)
	}
}

// Bad input: a clear error and nothing installed.
func TestCaptureBadInput(t *testing.T) {
	t.Parallel()
	f := newCaptureFixture(t)
	ctx := context.Background()
	nopk := pgx.Identifier{f.s.Schema(), "nopk"}.Sanitize()
	mustExec(t, "CREATE TABLE "+nopk+" (a int)")
	opts := trailpgx.CaptureOptions{Schema: f.s.Schema()}
	cases := []struct {
		name  string
		table string
		opts  trailpgx.CaptureOptions
		is    error
		msg   string
	}{
		{"unknown table", f.s.Schema() + ".nope", opts, trailpgx.ErrUnknownTable, "no such table"},
		{"no primary key", nopk, opts, trailpgx.ErrNoPrimaryKey, "primary key"},
		{"missing tenant column", f.tbl, trailpgx.CaptureOptions{Schema: f.s.Schema(), TenantColumn: "org_id"}, trailpgx.ErrUnknownColumn, `tenant column "org_id"`},
		{"unknown ignored column", f.tbl, trailpgx.CaptureOptions{Schema: f.s.Schema(), Ignore: []string{"nope"}}, trailpgx.ErrUnknownColumn, `ignored column "nope"`},
		{"unknown redacted column", f.tbl, trailpgx.CaptureOptions{Schema: f.s.Schema(), Redact: []string{"pw"}}, trailpgx.ErrUnknownColumn, `redacted column "pw"`},
		{"ignored and redacted", f.tbl, trailpgx.CaptureOptions{Schema: f.s.Schema(), Ignore: []string{"note"}, Redact: []string{"note"}}, nil, "both ignored and redacted"},
		{"bad name", f.tbl, trailpgx.CaptureOptions{Schema: f.s.Schema(), Name: "Bad Name"}, nil, "resource name"},
		{"schema not migrated", f.tbl, trailpgx.CaptureOptions{Schema: "no_such_trail_schema"}, nil, "migrate the store first"},
	}
	for _, c := range cases {
		_, err := trailpgx.EnableCapture(ctx, testPool(t), c.table, c.opts)
		if err == nil || (c.is != nil && !errors.Is(err, c.is)) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: error %v, want %v containing %q", c.name, err, c.is, c.msg)
		}
	}
	if caps, err := f.s.ListCaptures(ctx); err != nil || len(caps) != 0 {
		t.Fatalf("after refused enables: %+v, %v", caps, err)
	}
	var triggers int
	if err := testPool(t).QueryRow(ctx, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'trail_capture%' AND tgrelid = $1::regclass", f.tbl).Scan(&triggers); err != nil || triggers != 0 {
		t.Fatalf("%d triggers half-installed (%v)", triggers, err)
	}
	if err := trailpgx.DisableCapture(ctx, testPool(t), f.tbl); !errors.Is(err, trailpgx.ErrCaptureNotEnabled) {
		t.Errorf("disable before enable: %v", err)
	}

	// Enabled twice.
	f.enable(t, trailpgx.CaptureOptions{TenantColumn: "tenant_id", RequireTenant: true})
	if _, err := trailpgx.EnableCapture(ctx, testPool(t), f.tbl, opts); !errors.Is(err, trailpgx.ErrCaptureEnabled) {
		t.Errorf("second enable: %v", err)
	}
	// A tenant required but set neither in the transaction nor in the row.
	_, err := testPool(t).Exec(ctx, `INSERT INTO `+f.tbl+` (id, plan) VALUES (1, 'free')`)
	if err == nil || !strings.Contains(err.Error(), "requires a tenant") {
		t.Errorf("insert without tenant: %v", err)
	}
	// A malformed trail.actor is refused, not recorded as someone else. (On
	// a connection of its own, closed after: the setting is session-wide.)
	pc, err := testPool(t).Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := pc.Hijack()
	_, err = c.Exec(ctx, `SELECT set_config('trail.actor', 'root', false); INSERT INTO `+f.tbl+` (id, tenant_id, plan) VALUES (2, 'acme', 'free')`)
	if err == nil || !strings.Contains(err.Error(), "trail.actor") {
		t.Errorf("insert with bad actor: %v", err)
	}
	c.Close(ctx)
	if evs := all(t, f.s, trail.Query{AllTenants: true}); len(evs) != 0 {
		t.Fatalf("%d events recorded by refused statements", len(evs))
	}
	// Disable: no more events; the table is writable.
	if err := f.s.DisableCapture(ctx, f.tbl); err != nil {
		t.Fatal(err)
	}
	mustExec(t, `INSERT INTO `+f.tbl+` (id, plan) VALUES (3, 'free')`)
	if evs := all(t, f.s, trail.Query{AllTenants: true}); len(evs) != 0 {
		t.Fatalf("%d events after disable", len(evs))
	}
}

// Captured events are events like any other: a repeated ID is a duplicate,
// and nobody can change them.
func TestCaptureIdempotentAppendOnly(t *testing.T) {
	t.Parallel()
	f := newCaptureFixture(t)
	f.enable(t, trailpgx.CaptureOptions{TenantColumn: "tenant_id"})
	mustExec(t, `INSERT INTO `+f.tbl+` (id, tenant_id, plan) VALUES (7, 'acme', 'free')`)
	evs := all(t, f.s, trail.Query{Tenant: "acme"})
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	res, err := f.s.Append(context.Background(), []trail.Event{evs[0]})
	if err != nil || len(res) != 1 || !res[0].Duplicate {
		t.Fatalf("re-append of a captured event: %+v, %v", res, err)
	}
	events := pgx.Identifier{f.s.Schema(), "events"}.Sanitize()
	for _, q := range []string{"UPDATE " + events + " SET tenant = 'x'", "DELETE FROM " + events, "TRUNCATE " + events} {
		if _, err := testPool(t).Exec(context.Background(), q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v", q, err)
		}
	}
}

// A value over 8 KiB is recorded as changed without its value, so that one
// wide column cannot push an event past trail.MaxEventBytes.
func TestCaptureOversizedValue(t *testing.T) {
	t.Parallel()
	f := newCaptureFixture(t)
	f.enable(t, trailpgx.CaptureOptions{TenantColumn: "tenant_id", Ignore: []string{"updated_at"}})
	mustExec(t, `INSERT INTO `+f.tbl+` (id, tenant_id, plan, note) VALUES (1, 'acme', 'free', repeat('x', 9000))`)
	evs := all(t, f.s, trail.Query{Tenant: "acme"})
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	if got := changesJSON(t, evs[0]); !strings.Contains(got, "note=redacted") || !strings.Contains(got, `plan:∅>"free"`) {
		t.Errorf("changes %s", got)
	}
	if err := evs[0].Validate(); err != nil {
		t.Error(err)
	}
}

// A partitioned table is captured on its parent, whatever partition a row
// lands in.
func TestCapturePartitionedTable(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	tbl := pgx.Identifier{s.Schema(), "orders"}.Sanitize()
	mustExec(t, `CREATE TABLE `+tbl+` (id int, region text, total numeric, PRIMARY KEY (region, id)) PARTITION BY LIST (region)`)
	mustExec(t, `CREATE TABLE `+pgx.Identifier{s.Schema(), "orders_eu"}.Sanitize()+` PARTITION OF `+tbl+` FOR VALUES IN ('eu')`)
	mustExec(t, `CREATE TABLE `+pgx.Identifier{s.Schema(), "orders_us"}.Sanitize()+` PARTITION OF `+tbl+` FOR VALUES IN ('us')`)
	if _, err := s.EnableCapture(context.Background(), tbl, trailpgx.CaptureOptions{}); err != nil {
		t.Fatal(err)
	}
	mustExec(t, `INSERT INTO `+tbl+` VALUES (1, 'eu', 10), (2, 'us', 20)`)
	mustExec(t, `UPDATE `+tbl+` SET total = total * 2`)
	evs := all(t, s, trail.Query{AllTenants: true, Action: "orders.*"})
	if len(evs) != 4 {
		t.Fatalf("%d events, want 4", len(evs))
	}
	var seen int
	for _, ev := range evs {
		if ev.Action == "orders.update" && ev.Target.ID == "eu,1" {
			seen++
			if got := changesJSON(t, ev); got != "total:10>20" {
				t.Errorf("eu,1 update: %s", got)
			}
		}
	}
	if seen != 1 {
		t.Errorf("%d updates of orders:eu,1, want 1", seen)
	}
}

// Capture is compiled into per-table functions; after an ALTER TABLE they
// fall back to the general path, so writes keep working and new columns are
// captured. Disabling drops the compiled functions.
func TestCaptureSurvivesSchemaChange(t *testing.T) {
	t.Parallel()
	f := newCaptureFixture(t)
	f.enable(t, trailpgx.CaptureOptions{TenantColumn: "tenant_id", Ignore: []string{"updated_at"}, Redact: []string{"password"}})
	mustExec(t, `INSERT INTO `+f.tbl+` (id, tenant_id, plan) VALUES (1, 'acme', 'free')`)
	mustExec(t, `ALTER TABLE `+f.tbl+` DROP COLUMN note, DROP COLUMN prefs, ADD COLUMN region text`)
	mustExec(t, `UPDATE `+f.tbl+` SET region = 'eu', plan = 'pro', password = 'x' WHERE id = 1`)
	mustExec(t, `DELETE FROM `+f.tbl+` WHERE id = 1`)
	evs := all(t, f.s, trail.Query{Tenant: "acme", TargetType: "accounts", TargetID: "1"})
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}
	want := []string{
		`active:true>∅ id:1>∅ password=redacted plan:"pro">∅ price:null>∅ region:"eu">∅ seats:1>∅ tenant_id:"acme">∅`,
		`password=redacted plan:"free">"pro" region:null>"eu"`,
		`active:∅>true id:∅>1 note:∅>null password=redacted plan:∅>"free" prefs:∅>null price:∅>null seats:∅>1 tenant_id:∅>"acme"`,
	}
	for i, w := range want {
		if got := changesJSON(t, evs[i]); got != w {
			t.Errorf("%s:\n got %s\nwant %s", evs[i].Action, got, w)
		}
	}
	var fns int
	count := func() int {
		t.Helper()
		if err := testPool(t).QueryRow(context.Background(), `SELECT count(*) FROM pg_proc WHERE pronamespace = $1::regnamespace AND proname LIKE 'capture\_%\_%'`,
			f.s.Schema()).Scan(&fns); err != nil {
			t.Fatal(err)
		}
		return fns
	}
	if n := count(); n != 3 {
		t.Errorf("%d compiled capture functions, want 3", n)
	}
	if err := f.s.DisableCapture(context.Background(), f.tbl); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 0 {
		t.Errorf("%d compiled capture functions after disable, want 0", n)
	}
}

// A table owner that is not a superuser, only a member of the writer role,
// can enable capture; the compiled functions run as Trail's owner.
func TestCaptureByWriterRole(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	ctx := context.Background()
	role := "r_" + s.Schema()
	if len(role) > 63 {
		role = role[:63]
	}
	r := pgx.Identifier{role}.Sanitize()
	sch := pgx.Identifier{s.Schema()}.Sanitize()
	mustExec(t, "CREATE ROLE "+r+" NOLOGIN; GRANT trail_writer TO "+r+"; GRANT USAGE, CREATE ON SCHEMA "+sch+" TO "+r)
	t.Cleanup(func() {
		testPool(t).Exec(context.Background(), "DROP SCHEMA IF EXISTS "+sch+" CASCADE; DROP OWNED BY "+r+"; DROP ROLE IF EXISTS "+r)
	})
	conn, err := testPool(t).Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	defer conn.Exec(context.Background(), "RESET ROLE")
	if _, err := conn.Exec(ctx, "SET ROLE "+r+"; CREATE TABLE "+sch+".notes (id int PRIMARY KEY, body text)"); err != nil {
		t.Fatal(err)
	}
	if _, err := trailpgx.EnableCapture(ctx, conn.Conn(), sch+".notes", trailpgx.CaptureOptions{Schema: s.Schema()}); err != nil {
		t.Fatalf("enable as a writer-role owner: %v", err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO "+sch+".notes VALUES (1, 'hi')"); err != nil {
		t.Fatal(err)
	}
	if err := trailpgx.DisableCapture(ctx, conn.Conn(), sch+".notes"); err != nil {
		t.Fatalf("disable as a writer-role owner: %v", err)
	}
	if evs := all(t, s, trail.Query{AllTenants: true, Action: "notes.insert"}); len(evs) != 1 || evs[0].Actor.ID != "db:"+strings.TrimSpace(sessionUser(t)) {
		t.Fatalf("events %+v", evs)
	}
}

func sessionUser(t *testing.T) string {
	var u string
	if err := testPool(t).QueryRow(context.Background(), "SELECT session_user").Scan(&u); err != nil {
		t.Fatal(err)
	}
	return u
}

// secretsFixture is a migrated store and a table "users" with deny-listed
// columns (password_hash, api_token) and ordinary ones (email, plan).
func secretsFixture(t *testing.T, s *trailpgx.Store) string {
	t.Helper()
	tbl := pgx.Identifier{s.Schema(), "users"}.Sanitize()
	mustExec(t, `CREATE TABLE `+tbl+` (id int PRIMARY KEY, tenant_id text, email text, plan text, password_hash text, api_token text)`)
	return tbl
}

// writeSecrets inserts and updates users as raw SQL with no Trail context
// (psql, a migration), adds a column session_secret and a column company
// after capture was enabled, and writes them. The secret values all
// contain "s3cr3t".
func writeSecrets(t *testing.T, tbl string) {
	t.Helper()
	mustExec(t, `INSERT INTO `+tbl+` VALUES (1, 'acme', 'a@example.com', 'free', 'hash-s3cr3t-1', 'tok-s3cr3t-1')`)
	mustExec(t, `UPDATE `+tbl+` SET plan = 'pro', password_hash = 'hash-s3cr3t-2', api_token = 'tok-s3cr3t-2' WHERE id = 1`)
	mustExec(t, `UPDATE `+tbl+` SET api_token = 'tok-s3cr3t-3' WHERE id = 1`) // a secret alone: recorded as changed
	mustExec(t, `ALTER TABLE `+tbl+` ADD COLUMN session_secret text, ADD COLUMN company text, ADD COLUMN "refreshToken" text`)
	mustExec(t, `UPDATE `+tbl+` SET session_secret = 'sess-s3cr3t-4', "refreshToken" = 'ref-s3cr3t-4', company = 'Spanish Co', plan = 'team' WHERE id = 1`)
	mustExec(t, `DELETE FROM `+tbl+` WHERE id = 1`)
}

// eventRowsContaining counts the stored event rows whose whole text holds s.
func eventRowsContaining(t *testing.T, s *trailpgx.Store, needle string) int {
	t.Helper()
	var n int
	if err := testPool(t).QueryRow(context.Background(), `SELECT count(*) FROM `+pgx.Identifier{s.Schema(), "events"}.Sanitize()+` e
		WHERE strpos(e::text, $1) > 0`, needle).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func changesOf(t *testing.T, s *trailpgx.Store) []string {
	t.Helper()
	evs := all(t, s, trail.Query{Tenant: "acme", TargetType: "users", TargetID: "1"})
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[len(evs)-1-i] = ev.Action + " " + changesJSON(t, ev) // oldest first
	}
	return out
}

// The default deny-list redacts password_hash and api_token with no option
// at all, and columns added after capture was enabled (session_secret,
// refreshToken) on the general path; no secret value is stored anywhere.
// Ordinary columns, company included ("pan" is a word of the deny-list, not
// a substring), stay in clear.
func TestCaptureDefaultRedaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, nil)
	tbl := secretsFixture(t, s)
	c, err := s.EnableCapture(ctx, tbl, trailpgx.CaptureOptions{TenantColumn: "tenant_id"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.DefaultRedaction || strings.Join(c.DefaultRedacted, ",") != "password_hash,api_token" || c.Redact != nil {
		t.Errorf("EnableCapture: default redaction %v %q, redact %q", c.DefaultRedaction, c.DefaultRedacted, c.Redact)
	}
	writeSecrets(t, tbl)
	want := []string{
		`users.insert api_token=redacted email:∅>"a@example.com" id:∅>1 password_hash=redacted plan:∅>"free" tenant_id:∅>"acme"`,
		`users.update api_token=redacted password_hash=redacted plan:"free">"pro"`,
		`users.update api_token=redacted`,
		`users.update company:null>"Spanish Co" plan:"pro">"team" refreshToken=redacted session_secret=redacted`,
		`users.delete api_token=redacted company:"Spanish Co">∅ email:"a@example.com">∅ id:1>∅ password_hash=redacted plan:"team">∅ refreshToken=redacted session_secret=redacted tenant_id:"acme">∅`,
	}
	if got := changesOf(t, s); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	if n := eventRowsContaining(t, s, "s3cr3t"); n != 0 {
		t.Errorf("%d stored event rows hold a secret value", n)
	}
	if n := eventRowsContaining(t, s, "Spanish Co"); n != 2 {
		t.Errorf("%d stored event rows hold the company in clear, want 2 (update, delete)", n)
	}
	caps, err := s.ListCaptures(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(caps) != 1 || !caps[0].DefaultRedaction || strings.Join(caps[0].DefaultRedacted, ",") != "password_hash,api_token,session_secret,refreshToken" {
		t.Errorf("ListCaptures: %+v", caps)
	}

	// Enabled again, the new columns are on the compiled path: still redacted.
	if err := s.DisableCapture(ctx, tbl); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnableCapture(ctx, tbl, trailpgx.CaptureOptions{TenantColumn: "tenant_id", Redact: []string{"email"}, Ignore: []string{"api_token"}}); err != nil {
		t.Fatal(err)
	}
	mustExec(t, `INSERT INTO `+tbl+` VALUES (2, 'acme', 'b@example.com', 'free', 'hash-s3cr3t-5', 'tok-s3cr3t-5', 'sess-s3cr3t-5', 'Acme', 'ref-s3cr3t-5')`)
	evs := all(t, s, trail.Query{Tenant: "acme", TargetType: "users", TargetID: "2"})
	if len(evs) != 1 || changesJSON(t, evs[0]) != `company:∅>"Acme" email=redacted id:∅>2 password_hash=redacted plan:∅>"free" refreshToken=redacted session_secret=redacted tenant_id:∅>"acme"` {
		t.Errorf("after re-enabling: %d events, %s", len(evs), changesJSON(t, evs[0]))
	}
	if n := eventRowsContaining(t, s, "s3cr3t"); n != 0 {
		t.Errorf("%d stored event rows hold a secret value", n)
	}
}

// NoDefaultRedaction is the explicit opt-out: deny-listed columns, present
// or added later, are recorded in clear; Redact still applies.
func TestCaptureNoDefaultRedaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, nil)
	tbl := secretsFixture(t, s)
	c, err := s.EnableCapture(ctx, tbl, trailpgx.CaptureOptions{TenantColumn: "tenant_id", NoDefaultRedaction: true, Redact: []string{"email"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.DefaultRedaction || c.DefaultRedacted != nil {
		t.Errorf("EnableCapture: default redaction %v %q", c.DefaultRedaction, c.DefaultRedacted)
	}
	writeSecrets(t, tbl)
	want := []string{
		`users.insert api_token:∅>"tok-s3cr3t-1" email=redacted id:∅>1 password_hash:∅>"hash-s3cr3t-1" plan:∅>"free" tenant_id:∅>"acme"`,
		`users.update api_token:"tok-s3cr3t-1">"tok-s3cr3t-2" password_hash:"hash-s3cr3t-1">"hash-s3cr3t-2" plan:"free">"pro"`,
		`users.update api_token:"tok-s3cr3t-2">"tok-s3cr3t-3"`,
		`users.update company:null>"Spanish Co" plan:"pro">"team" refreshToken:null>"ref-s3cr3t-4" session_secret:null>"sess-s3cr3t-4"`,
	}
	got := changesOf(t, s)
	if len(got) != 5 || strings.Join(got[:4], "\n") != strings.Join(want, "\n") {
		t.Errorf("changes:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	if n := eventRowsContaining(t, s, "sess-s3cr3t-4"); n != 2 {
		t.Errorf("%d stored event rows hold session_secret in clear, want 2 (update, delete)", n)
	}
	caps, err := s.ListCaptures(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(caps) != 1 || caps[0].DefaultRedaction || caps[0].DefaultRedacted != nil || strings.Join(caps[0].Redact, ",") != "email" {
		t.Errorf("ListCaptures: %+v", caps)
	}
}

// The triggers' rule (a regular expression generated from the deny-list,
// matched in PostgreSQL) redacts exactly the column names trailprivacy's
// default policy redacts: snake_case, camelCase, acronyms, separators;
// words, not substrings.
func TestCaptureRedactionRuleMatchesTrailprivacy(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	names := []string{
		"password", "password_hash", "PASSWORD_HASH", "passwordHash", "PasswordHash", "newPassword", "userPASSWORD",
		"passwordhash", "password2", "pass_word", "passWord", "my.password", "pwd", "passphrase",
		"secret", "client_secret", "secretKey", "secrets", "token", "api_token", "apiToken", "HTTPToken", "tokenizer", "tokens",
		"api_key", "apikey", "apiKey", "APIKey", "APIKEY", "X-Api-Key", "x api key", "rapid_keys", "api_keys", "api_key_id",
		"access_key", "AWSAccessKeyID", "accessKeyId", "private_key_pem", "authorization", "Authorization_Header",
		"cookie", "set-cookie", "cookies", "session", "session_id", "sessionCount", "session_count", "obsession",
		"credential", "credentials", "userCredentials", "card", "card_number", "cardNumber", "CardNumber", "cardinality",
		"discard", "card_pan", "pan", "company", "span_id", "expand", "PAN", "cvv", "cvv2", "cvc", "ssn", "ssn_last4",
		"iban", "IBAN_number", "email", "plan", "id", "tenant_id", "updated_at", "pässword", "contraseña", "_password_",
		"ABCPassword", "aBCPassword", "x1Password", "2fa_secret",
	}
	pat := trailpgx.DefaultRedactionPattern()
	args := []string{"t", "", "{}", "{}", `{"id"}`, "", pat, "{}"}
	var got []bool
	err := testPool(t).QueryRow(context.Background(), `SELECT array_agg(`+pgx.Identifier{s.Schema()}.Sanitize()+`.capture_redacts($1::text[], n) ORDER BY i)
		FROM unnest($2::text[]) WITH ORDINALITY u(n, i)`, args, names).Scan(&got)
	if err != nil {
		t.Fatal(err)
	}
	pol := trailprivacy.DefaultPolicy()
	var redacted int
	for i, n := range names {
		want := pol.ActionFor("", n) == trailprivacy.ActionRedact
		if got[i] != want {
			t.Errorf("column %q: the capture rule redacts %v, trailprivacy %v", n, got[i], want)
		}
		if want {
			redacted++
		}
	}
	if redacted < 40 || redacted > len(names)-20 {
		t.Errorf("%d of %d names redacted: the corpus no longer tests both sides", redacted, len(names))
	}
	// With the rule off ('') nothing is redacted but the listed columns.
	args[6], args[7] = "", `{"email"}`
	var off []bool
	if err := testPool(t).QueryRow(context.Background(), `SELECT array_agg(`+pgx.Identifier{s.Schema()}.Sanitize()+`.capture_redacts($1::text[], n) ORDER BY i)
		FROM unnest($2::text[]) WITH ORDINALITY u(n, i)`, args, []string{"password", "email", "plan"}).Scan(&off); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(off) != "[false true false]" {
		t.Errorf("rule off: %v", off)
	}
}

// Captures enabled before migration 0009 (6 trigger arguments) are given
// the rule as it is in the migration: the deny-list's, generated in Go.
func TestCaptureLegacyRule(t *testing.T) {
	b, err := os.ReadFile("migrations/0009_capture_redaction.up.sql")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "'"+trailpgx.DefaultRedactionPattern()+"'") {
		t.Errorf("migration 0009's rule for older captures is not the rule generated from trailprivacy.DefaultDenyList:\n%s\n"+
			"If the deny-list changed, captures enabled before 0009 keep the old rule: add a migration that updates capture_redacts, or re-enable them.",
			trailpgx.DefaultRedactionPattern())
	}
}

// A capture enabled before migration 0009 (by the 0003 functions, 6 trigger
// arguments) stored secrets in clear; migrating gives it the default
// redaction, on its compiled path and after a later ALTER TABLE.
func TestCaptureUpgradeRedactsExistingCaptures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := testPool(t)
	s, err := trailpgx.New(ctx, p, &trailpgx.Config{Schema: testenv.FreshSchema(t, p)})
	if err != nil {
		t.Fatal(err)
	}
	if err := trailpgx.MigrateTo(ctx, s, 8); err != nil {
		t.Fatal(err)
	}
	tbl := secretsFixture(t, s)
	if _, err := s.EnableCapture(ctx, tbl, trailpgx.CaptureOptions{TenantColumn: "tenant_id"}); err == nil || !strings.Contains(err.Error(), "migration 0009") {
		t.Fatalf("EnableCapture on a schema at 0008: %v, want an error asking to migrate", err)
	}
	// Enable it the way EnableCapture did before 0009.
	sch := pgx.Identifier{s.Schema()}.Sanitize()
	args := []string{"users", "tenant_id", "{}", "{}", `{"id"}`, ""}
	var fns []string
	if err := p.QueryRow(ctx, "SELECT "+sch+".capture_install($1::regclass, $2::text[])", tbl, args).Scan(&fns); err != nil {
		t.Fatal(err)
	}
	for i, tr := range []struct{ name, event, ref string }{
		{"trail_capture_insert", "INSERT", "NEW TABLE AS trail_new"},
		{"trail_capture_update", "UPDATE", "OLD TABLE AS trail_old NEW TABLE AS trail_new"},
		{"trail_capture_delete", "DELETE", "OLD TABLE AS trail_old"},
	} {
		mustExec(t, fmt.Sprintf("CREATE TRIGGER %s AFTER %s ON %s REFERENCING %s FOR EACH STATEMENT EXECUTE FUNCTION %s('users', 'tenant_id', '{}', '{}', '{\"id\"}', '')",
			tr.name, tr.event, tbl, tr.ref, fns[i]))
	}
	mustExec(t, `INSERT INTO `+tbl+` VALUES (1, 'acme', 'a@example.com', 'free', 'hash-0-s3cr3t', 'tok-0-s3cr3t')`)
	if n := eventRowsContaining(t, s, "hash-0-s3cr3t"); n != 1 {
		t.Fatalf("before 0009: %d events hold the password hash in clear, want 1", n)
	}
	caps, err := s.ListCaptures(ctx)
	if err != nil || len(caps) != 1 || caps[0].DefaultRedaction {
		t.Fatalf("ListCaptures before 0009: %+v, %v", caps, err)
	}

	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	mustExec(t, `UPDATE `+tbl+` SET password_hash = 'hash-1-s3cr3t', api_token = 'tok-1-s3cr3t', plan = 'pro' WHERE id = 1`)
	mustExec(t, `ALTER TABLE `+tbl+` ADD COLUMN session_secret text`)
	mustExec(t, `UPDATE `+tbl+` SET session_secret = 'sess-2-s3cr3t', plan = 'team' WHERE id = 1`)
	want := []string{
		`users.insert api_token:∅>"tok-0-s3cr3t" email:∅>"a@example.com" id:∅>1 password_hash:∅>"hash-0-s3cr3t" plan:∅>"free" tenant_id:∅>"acme"`,
		`users.update api_token=redacted password_hash=redacted plan:"free">"pro"`,
		`users.update plan:"pro">"team" session_secret=redacted`,
	}
	if got := changesOf(t, s); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	for _, v := range []string{"hash-1-s3cr3t", "tok-1-s3cr3t", "sess-2-s3cr3t"} {
		if n := eventRowsContaining(t, s, v); n != 0 {
			t.Errorf("after 0009: %d events hold %q", n, v)
		}
	}
	caps, err = s.ListCaptures(ctx)
	if err != nil || len(caps) != 1 || !caps[0].DefaultRedaction || strings.Join(caps[0].DefaultRedacted, ",") != "password_hash,api_token,session_secret" {
		t.Errorf("ListCaptures after 0009: %+v, %v", caps, err)
	}
}

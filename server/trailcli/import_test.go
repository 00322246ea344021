package trailcli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailsqlite"
)

// djangoTables creates, in a fresh PostgreSQL database, the tables a Django
// SaaS has — content types, the seed design's AuditLog, django-auditlog's
// LogEntry and a django-simple-history table — as Django's migrations
// create them, and returns its DSN.
func djangoTables(t *testing.T) (string, *pgx.Conn) {
	t.Helper()
	dsn := freshPostgresDB(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	_, err = conn.Exec(ctx, `
CREATE TABLE django_content_type (id serial PRIMARY KEY, app_label varchar(100) NOT NULL, model varchar(100) NOT NULL);
INSERT INTO django_content_type (id, app_label, model) VALUES (1, 'auth', 'user'), (7, 'billing', 'subscription');
CREATE TABLE core_auditlog (
	id bigserial PRIMARY KEY, action varchar(50) NOT NULL, user_id integer NULL,
	timestamp timestamptz NOT NULL, content_type_id integer NULL, object_id varchar(36) NOT NULL,
	description text NOT NULL);
CREATE TABLE auditlog_logentry (
	id bigserial PRIMARY KEY, content_type_id integer NOT NULL, object_pk varchar(255) NOT NULL,
	object_id bigint NULL, object_repr text NOT NULL, action smallint NOT NULL, changes jsonb NULL,
	actor_id integer NULL, remote_addr inet NULL, timestamp timestamptz NOT NULL,
	additional_data jsonb NULL, cid varchar(255) NULL, changes_text text NOT NULL DEFAULT '',
	serialized_data jsonb NULL, remote_port integer NULL);
CREATE TABLE billing_historicalsubscription (
	id bigint NOT NULL, tenant_id varchar(64) NOT NULL, plan varchar(20) NOT NULL, seats integer NOT NULL,
	renews_on date NULL, price numeric(10,2) NOT NULL,
	history_id serial PRIMARY KEY, history_date timestamptz NOT NULL, history_change_reason varchar(100) NULL,
	history_type varchar(1) NOT NULL, history_user_id integer NULL);
`)
	if err != nil {
		t.Fatal(err)
	}
	return dsn, conn
}

func TestImportDjangoTables(t *testing.T) {
	t.Parallel() // the embedded store makes its own master key file
	dsn, conn := djangoTables(t)
	ctx := context.Background()
	_, err := conn.Exec(ctx, `
INSERT INTO core_auditlog (action, user_id, timestamp, content_type_id, object_id, description) VALUES
	('SUBSCRIPTION_CHANGE', 42, '2025-03-01 10:00:00+00', 7, '9', 'Plan free -> pro'),
	('USER_DELETE', NULL, '2025-03-02 11:00:00+00', 1, '17', 'Deleted user bob'),
	('LOGIN', 42, '2025-03-03 12:00:00+00', NULL, '', 'Signed in'),
	('!!!', 42, '2025-03-04 12:00:00+00', NULL, '', 'unreadable action');
INSERT INTO auditlog_logentry (content_type_id, object_pk, object_repr, action, changes, actor_id, remote_addr, timestamp, additional_data) VALUES
	(7, '9', 'Subscription #9', 0, '{"plan": ["None", "free"], "seats": ["None", "3"]}', 42, '203.0.113.9', '2025-03-01 09:00:00+00', '{"tenant": "acme"}'),
	(7, '9', 'Subscription #9', 1, '{"plan": ["free", "pro"]}', 42, NULL, '2025-03-01 10:00:00+00', NULL),
	(7, '9', 'Subscription #9', 2, '{"plan": ["pro", "None"]}', NULL, NULL, '2025-03-05 10:00:00+00', NULL),
	(7, '9', 'Subscription #9', 9, '{}', 42, NULL, '2025-03-06 10:00:00+00', NULL),
	(7, '10', 'Subscription #10', 1, '"not an object"', 42, NULL, '2025-03-06 10:00:00+00', NULL);
INSERT INTO billing_historicalsubscription (id, tenant_id, plan, seats, renews_on, price, history_date, history_change_reason, history_type, history_user_id) VALUES
	(9, 'acme', 'free', 3, NULL, 0, '2025-03-01 09:00:00+00', NULL, '+', 42),
	(9, 'acme', 'pro', 3, '2026-03-01', 49.90, '2025-03-01 10:00:00+00', 'upgrade', '~', 42),
	(9, 'acme', 'pro', 10, '2026-03-01', 49.90, '2025-03-02 10:00:00+00', NULL, '~', NULL),
	(11, 'globex', 'team', 5, NULL, 20, '2025-03-01 08:00:00+00', NULL, '+', 7),
	(11, 'globex', 'team', 5, NULL, 20, '2025-03-09 08:00:00+00', 'churned', '-', 7),
	(12, 'globex', 'team', 1, NULL, 20, '2025-03-01 08:00:00+00', NULL, '?', 7);
`)
	if err != nil {
		t.Fatal(err)
	}
	db := tempDB(t)

	// The seed's AuditLog: one unreadable action skipped, the rest imported.
	r := run(t, db, env{}, "import", "seed", "--from-postgres", dsn, "--table", "core_auditlog", "--tenant", "acme")
	if r.code != 1 || !strings.Contains(r.stdout, "imported 4 rows of core_auditlog: 3 events stored, 0 already stored, 1 rows skipped") ||
		!strings.Contains(r.stderr, "skipped core_auditlog row 4: action \"!!!\"") {
		t.Fatalf("seed import: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	evs := jsonEvents(t, db, "--tenant", "acme", "--action", "subscription.change")
	if len(evs) != 1 {
		t.Fatalf("subscription.change events: %d", len(evs))
	}
	ev := evs[0]
	if ev.Actor.ID != "42" || ev.Target.Type != "subscription" || ev.Target.ID != "9" || ev.Description != "Plan free -> pro" ||
		!ev.OccurredAt.Equal(time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)) || ev.Source != "import:seed" {
		t.Errorf("imported seed event %+v", ev)
	}
	if n := len(jsonEvents(t, db, "--tenant", "acme", "--action", "user.delete", "--actor", "system:unknown")); n != 1 {
		t.Errorf("user.delete by the unknown (SET_NULL) user: %d events, want 1", n)
	}
	if n := len(jsonEvents(t, db, "--tenant", "acme", "--action", "legacy.login")); n != 1 {
		t.Errorf("LOGIN as legacy.login: %d events, want 1", n)
	}

	// django-auditlog: "None" is null, the unknown action code and the
	// malformed changes are skipped.
	r = run(t, db, env{}, "import", "auditlog", "--from-postgres", dsn, "--tenant", "acme")
	if r.code != 1 || !strings.Contains(r.stdout, "3 events stored") || strings.Count(r.stderr, "skipped auditlog_logentry row") != 2 {
		t.Fatalf("auditlog import: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	evs = jsonEvents(t, db, "--tenant", "acme", "--action", "subscription.create")
	if len(evs) != 1 || len(evs[0].Changes) != 2 || evs[0].Changes[0].Old != nil || string(evs[0].Changes[0].New) != `"free"` ||
		evs[0].Actor.IP != "203.0.113.9" || evs[0].Target.Name != "Subscription #9" {
		t.Errorf("auditlog create: %+v", evs)
	}

	// django-simple-history: updates are diffs from the version before;
	// tenants from the row.
	r = run(t, db, env{}, "import", "simple-history", "--from-postgres", dsn, "--table", "billing_historicalsubscription", "--tenant-column", "tenant_id")
	if r.code != 1 || !strings.Contains(r.stdout, "imported 6 rows of billing_historicalsubscription: 5 events stored") ||
		!strings.Contains(r.stderr, `history_type "?"`) {
		t.Fatalf("simple-history import: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	var hist []trail.Event
	for _, ev := range jsonEvents(t, db, "--tenant", "acme", "--target", "subscription:9") {
		if ev.Source == "import:simple-history" {
			hist = append(hist, ev)
		}
	}
	if len(hist) != 3 {
		t.Fatalf("acme subscription 9 history: %d events, want 3: %+v", len(hist), hist)
	}
	up := hist[1] // newest first: the second is the upgrade
	want := map[string][2]string{"plan": {`"free"`, `"pro"`}, "price": {`"0.00"`, `"49.90"`}, "renews_on": {"null", `"2026-03-01T00:00:00Z"`}}
	if up.Action != "subscription.update" || up.Description != "upgrade" || len(up.Changes) != len(want) {
		t.Fatalf("upgrade event %+v", up)
	}
	for _, c := range up.Changes {
		if w, ok := want[c.Field]; !ok || string(c.Old) != w[0] || string(c.New) != w[1] {
			t.Errorf("upgrade change %s: %s -> %s, want %v", c.Field, c.Old, c.New, w)
		}
	}
	if n := len(jsonEvents(t, db, "--tenant", "globex", "--action", "subscription.delete")); n != 1 {
		t.Errorf("globex deletions: %d, want 1", n)
	}

	// A second import stores nothing new.
	before := countEvents(t, db)
	r = run(t, db, env{}, "import", "simple-history", "--from-postgres", dsn, "--table", "billing_historicalsubscription", "--tenant-column", "tenant_id")
	if !strings.Contains(r.stdout, "0 events stored, 5 already stored") || countEvents(t, db) != before {
		t.Errorf("re-import: %s, %d events (was %d)", r.stdout, countEvents(t, db), before)
	}

	// A table of another layout: refused before anything is written.
	r = run(t, db, env{}, "import", "simple-history", "--from-postgres", dsn, "--table", "core_auditlog")
	if r.code == 0 || !strings.Contains(r.stderr, "has no column") || countEvents(t, db) != before {
		t.Errorf("wrong layout: exit %d, stderr %q", r.code, r.stderr)
	}

	// A tenant that is not one: a usage error (exit 2), nothing written;
	// before, every row was skipped one by one and the import exited 1.
	r = run(t, db, env{}, "import", "auditlog", "--from-postgres", dsn, "--tenant", "not a tenant")
	if r.code != 2 || !strings.Contains(r.stderr, "--tenant") || strings.Contains(r.stderr, "skipped") || countEvents(t, db) != before {
		t.Errorf("bad --tenant: exit %d, stderr %q", r.code, r.stderr)
	}

	// Imported events are sealed like any other.
	mustRun(t, db, env{}, "seal")
	if r := run(t, db, env{}, "verify"); r.code != 0 {
		t.Errorf("verify after import: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestImportSimpleHistoryScale imports a django-simple-history table of
// 100,000 rows (20,000 objects, five versions each) and imports it again.
func TestImportSimpleHistoryScale(t *testing.T) {
	t.Parallel() // the embedded store makes its own master key file
	if testing.Short() {
		t.Skip("-short: 100,000 rows")
	}
	dsn, conn := djangoTables(t)
	ctx := context.Background()
	const objects, versions = 20000, 5
	_, err := conn.Exec(ctx, fmt.Sprintf(`
INSERT INTO billing_historicalsubscription (id, tenant_id, plan, seats, price, history_date, history_type, history_user_id)
SELECT o, 'tenant' || (o %% 50), (ARRAY['free','team','pro','enterprise'])[1 + (o + v) %% 4], 1 + v, 10 * v,
	'2025-01-01'::timestamptz + make_interval(days => v, secs => o),
	CASE WHEN v = 1 THEN '+' WHEN v = %d THEN '-' ELSE '~' END, 1 + o %% 900
FROM generate_series(1, %d) o, generate_series(1, %d) v`, versions, objects, versions))
	if err != nil {
		t.Fatal(err)
	}
	db := tempDB(t)
	r := mustRun(t, db, env{}, "import", "simple-history", "--from-postgres", dsn, "--table", "billing_historicalsubscription", "--tenant-column", "tenant_id")
	if !strings.Contains(r.stdout, "imported 100000 rows of billing_historicalsubscription: 100000 events stored, 0 already stored, 0 rows skipped") {
		t.Fatalf("first import: %s", r.stdout)
	}
	r = mustRun(t, db, env{}, "import", "simple-history", "--from-postgres", dsn, "--table", "billing_historicalsubscription", "--tenant-column", "tenant_id")
	if !strings.Contains(r.stdout, "0 events stored, 100000 already stored") {
		t.Fatalf("second import: %s", r.stdout)
	}
	if n := storedEvents(t, db); n != objects*versions {
		t.Fatalf("events stored: %d, want %d", n, objects*versions)
	}
	// One object's timeline, with its diffs.
	evs := jsonEvents(t, db, "--tenant", "tenant7", "--target", "subscription:7")
	if len(evs) != versions {
		t.Fatalf("subscription 7: %d events, want %d", len(evs), versions)
	}
	upd := evs[1] // newest first: the last update
	var fields []string
	for _, c := range upd.Changes {
		fields = append(fields, c.Field)
	}
	if upd.Action != "subscription.update" || strings.Join(fields, ",") != "plan,price,seats" {
		b, _ := json.Marshal(upd)
		t.Errorf("last update of subscription 7: %s", b)
	}
}

// storedEvents counts the events in the SQLite file.
func storedEvents(t *testing.T, db string) int {
	t.Helper()
	st, err := trailsqlite.Open(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n int
	if err := st.DB().QueryRow("SELECT count(*) FROM trail_events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

package trailsqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/migrate"
)

// TestMigrationIndexPerChunk upgrades a file written at schema version 5
// (descriptions and changed fields indexed by the row trigger) through
// migration 0006: the old rows stay findable by word and by field, new ones
// are indexed by Append, a delete still clears both, and neither the insert
// trigger nor the CHECK (which made every INSERT keep a statement journal)
// is left.
func TestMigrationIndexPerChunk(t *testing.T) {
	ctx := context.Background()
	path, db := fileAtVersion(t, 5)
	for i, desc := range []string{"Upgraded the plan", "Renamed the workspace"} {
		id := uuid.New()
		if _, err := db.Exec(`INSERT INTO trail_events (id, occurred_at, recorded_at, tenant, actor_type, action, outcome,
			description, changes, schema_version) VALUES (?, ?, ?, 'acme', 'user', 'plan.change', 'success', ?, ?, 2)`,
			id[:], 1000+i, 1000+i, desc, `[{"field":"plan","old":"free","new":"pro"}]`); err != nil {
			t.Fatal(err)
		}
	}
	s := upgradeAndAppend(t, path, db, trail.Event{Tenant: "acme", Actor: trail.Actor{Type: trail.ActorUser, ID: "42"}, Action: "plan.change",
		Description: "Downgraded the plan", Changes: []trail.Change{trail.Changed("plan", "pro", "free")}})
	count := func(q string) int {
		t.Helper()
		var n int
		if err := s.DB().QueryRow(q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	for q, want := range map[string]int{
		"SELECT count(*) FROM trail_events_fts WHERE trail_events_fts MATCH 'plan'":      2,
		"SELECT count(*) FROM trail_events_fts WHERE trail_events_fts MATCH 'workspace'": 1,
		"SELECT count(*) FROM trail_event_fields WHERE field = 'plan'":                   3,
		"SELECT count(*) FROM sqlite_schema WHERE name = 'trail_events_ai'":              0,
		"SELECT count(*) FROM trail_seal_pending":                                        1,
	} {
		if n := count(q); n != want {
			t.Errorf("%s = %d, want %d", q, n, want)
		}
	}
	var schema string
	if err := s.DB().QueryRow("SELECT sql FROM sqlite_schema WHERE name = 'trail_events'").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(schema, "CHECK") {
		t.Errorf("trail_events still has a CHECK after 0006:\n%s", schema)
	}
	page, err := s.Query(ctx, trail.Query{Tenant: "acme", Text: "plan"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 2 {
		t.Errorf("Query Text=plan: %d events, want 2", len(page.Events))
	}
	// Retention's delete clears both side tables, old rows and new.
	if _, err := s.DB().Exec("DELETE FROM trail_events"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"SELECT count(*) FROM trail_events_fts WHERE trail_events_fts MATCH 'plan OR workspace'", "SELECT count(*) FROM trail_event_fields"} {
		if n := count(q); n != 0 {
			t.Errorf("%s = %d after delete, want 0", q, n)
		}
	}
	if n := count("SELECT count(*) FROM trail_events_fts_docsize"); n != 0 {
		t.Errorf("FTS5 docsize rows after delete = %d, want 0", n)
	}
}

// TestMigrationDayLedIndexes upgrades a file written at schema version 8
// (subject indexes led by the tenant or the target) through migration 0009:
// the events already there are found by actor, object and action (their
// days are filled in), and so are events appended after it.
func TestMigrationDayLedIndexes(t *testing.T) {
	ctx := context.Background()
	path, db := fileAtVersion(t, 8)
	// Three days in acme, one in globex; the first exactly at a midnight.
	const dayUS = 86400000000
	at := []int64{20000 * dayUS, 20000*dayUS + 5, 20003*dayUS - 1, 20010 * dayUS}
	for i, us := range at {
		id := uuid.New()
		tenant := []string{"acme", "acme", "acme", "globex"}[i]
		if _, err := db.Exec(`INSERT INTO trail_events (id, occurred_at, recorded_at, tenant, actor_type, actor_id, action,
			target_type, target_id, outcome, schema_version) VALUES (?, ?, ?, ?, 'user', 'u1', 'plan.change', 'subscription', 's1', 'success', 2)`,
			id[:], us, us, tenant); err != nil {
			t.Fatal(err)
		}
	}
	s := upgradeAndAppend(t, path, db, trail.Event{Tenant: "acme", Actor: trail.Actor{Type: trail.ActorUser, ID: "u1"}, Action: "plan.change",
		Target: trail.Target{Type: "subscription", ID: "s1"}})
	for _, c := range []struct {
		q    trail.Query
		want int
	}{
		{trail.Query{Tenant: "acme", ActorID: "u1"}, 4},
		{trail.Query{Tenant: "acme", Action: "plan.change"}, 4},
		{trail.Query{Tenant: "acme", Action: "plan.*"}, 4},
		{trail.Query{Tenant: "globex", ActorID: "u1"}, 1},
		{trail.Query{AllTenants: true, TargetType: "subscription", TargetID: "s1"}, 5},
		{trail.Query{Tenant: "acme", TargetType: "subscription", TargetID: "s1", Limit: 1}, 4},
	} {
		var n int
		for p := c.q; ; {
			page, err := s.Query(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			n += len(page.Events)
			if p.Cursor = page.Next; p.Cursor == "" {
				break
			}
		}
		if n != c.want {
			t.Errorf("Query %+v after 0009: %d events, want %d", c.q, n, c.want)
		}
	}
	var days, tenantDays int
	if err := s.DB().QueryRow("SELECT (SELECT count(*) FROM trail_days), (SELECT count(*) FROM trail_tenant_days)").Scan(&days, &tenantDays); err != nil {
		t.Fatal(err)
	}
	// Days 20000, 20002, 20010 and today; acme's are three of them
	// (two events on 20000), globex's one.
	if days != 4 || tenantDays != 4 {
		t.Errorf("after 0009 and one Append: %d days, %d tenant days; want 4 and 4", days, tenantDays)
	}
}

// fileAtVersion returns a new database file migrated up to version (the
// first version migrations), open for the test to write rows the way that
// schema took them, and its path.
func fileAtVersion(t *testing.T, version int) (string, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "old.db")
	ms, err := migrate.Load(migrationFS, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	if ms[version-1].Version != version {
		t.Fatalf("migration %d is not at index %d", version, version-1)
	}
	old, err := migrate.New(ms[:version], nil)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Up(context.Background(), migrate.SQLDB(db)); err != nil {
		t.Fatal(err)
	}
	return path, db
}

// upgradeAndAppend closes db, opens the file as a Store (which runs the
// migrations after fileAtVersion's) and appends ev, as a service would
// right after upgrading. The store is closed when the test ends.
func upgradeAndAppend(t *testing.T, path string, db *sql.DB, ev trail.Event) *Store {
	t.Helper()
	db.Close()
	ctx := context.Background()
	s, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := ev.Normalize(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, []trail.Event{ev}); err != nil {
		t.Fatal(err)
	}
	return s
}

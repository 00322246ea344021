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
	path := filepath.Join(t.TempDir(), "old.db")
	ms, err := migrate.Load(migrationFS, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	old, err := migrate.New(ms[:5], nil)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Up(ctx, migrate.SQLDB(db)); err != nil {
		t.Fatal(err)
	}
	for i, desc := range []string{"Upgraded the plan", "Renamed the workspace"} {
		id := uuid.New()
		if _, err := db.Exec(`INSERT INTO trail_events (id, occurred_at, recorded_at, tenant, actor_type, action, outcome,
			description, changes, schema_version) VALUES (?, ?, ?, 'acme', 'user', 'plan.change', 'success', ?, ?, 2)`,
			id[:], 1000+i, 1000+i, desc, `[{"field":"plan","old":"free","new":"pro"}]`); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := trail.Event{Tenant: "acme", Actor: trail.Actor{Type: trail.ActorUser, ID: "42"}, Action: "plan.change",
		Description: "Downgraded the plan", Changes: []trail.Change{trail.Changed("plan", "pro", "free")}}
	if err := ev.Normalize(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, []trail.Event{ev}); err != nil {
		t.Fatal(err)
	}
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

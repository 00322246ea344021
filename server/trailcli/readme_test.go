package trailcli

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailsqlite"
)

// readmeSnippet is the README's Go example, kept here so that it compiles
// and works; the table setup before it is the reader's own schema.
func readmeSnippet(ctx context.Context, path string) error {
	client, err := trailsqlite.NewClient(ctx, path, &trailsqlite.ClientConfig{Source: "billing"})
	if err != nil {
		return err
	}
	defer client.Close()
	if _, err := client.DB().ExecContext(ctx, `CREATE TABLE subscriptions (id TEXT PRIMARY KEY, plan TEXT); INSERT INTO subscriptions VALUES ('sub_acme','starter')`); err != nil {
		return err
	}

	// Once per request, usually in middleware: who is acting, in which tenant.
	ctx = trail.WithTenant(ctx, "acme")
	ctx = trail.WithActor(ctx, trail.Actor{Type: trail.ActorUser, ID: "42", Name: "Alice Chen"})

	tx, err := client.DB().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE subscriptions SET plan = ? WHERE id = ?`, "pro", "sub_acme"); err != nil {
		return err
	}
	// The event exists if and only if the transaction commits.
	if _, err := client.RecordTx(ctx, tx, trail.Event{
		Action:      "subscription.update",
		Target:      trail.Target{Type: "subscription", ID: "sub_acme"},
		Description: "Changed subscription plan to pro for tenant Acme",
		Changes:     []trail.Change{trail.Changed("plan", "starter", "pro")},
	}); err != nil {
		return err
	}
	return tx.Commit()
}

// The README's transaction example records an event the CLI then shows.
func TestReadmeSnippet(t *testing.T) {
	db := filepath.Join(t.TempDir(), "app.db")
	t.Setenv("TRAIL_MASTER_KEY", "") // the README's newcomer has none: a key file is made beside app.db
	if err := readmeSnippet(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, db, env{}, "history", "subscription:sub_acme")
	for _, want := range []string{"acme  subscription.update  by user:42 Alice Chen", `plan  "starter" → "pro"`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("history lacks %q:\n%s", want, r.stdout)
		}
	}
}

// TestQueryMissingKey: a value whose key row is gone is reported as a
// missing key (naming the subject and where it looked), not as tampering,
// and `trail query` exits non-zero.
func TestQueryMissingKey(t *testing.T) {
	db := filepath.Join(t.TempDir(), "app.db")
	t.Setenv("TRAIL_MASTER_KEY", "")
	if err := readmeSnippet(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	sqldb, err := sql.Open("sqlite", "file:"+db+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	res, err := sqldb.Exec(`DELETE FROM trail_subject_keys WHERE subject = 'user:42'`)
	if n, _ := res.RowsAffected(); err != nil || n != 1 {
		t.Fatalf("delete the key row: %d, %v", n, err)
	}
	sqldb.Close()
	r := run(t, db, env{}, "query", "--tenant", "acme")
	if r.code == 0 {
		t.Fatalf("trail query exited 0 with a missing key:\n%s", r.stdout)
	}
	for _, want := range []string{"no key for subject user:42", "the SQLite database"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q does not say %q", r.stderr, want)
		}
	}
	if strings.Contains(r.stderr, "does not authenticate") {
		t.Errorf("a missing key reads as tampering: %q", r.stderr)
	}
}

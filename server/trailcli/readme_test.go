package trailcli

import (
	"context"
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

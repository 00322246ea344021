package trailsqlite_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailprivacy"
)

// TestNewClientStoresNoPlaintext is the README's path on the embedded store
// with no configuration at all: one call creates the database and its
// master key file, RecordTx writes in the service's own transaction, and no
// secret or personal value is in any file on disk, while the client reads
// them back.
func TestNewClientStoresNoPlaintext(t *testing.T) {
	t.Setenv("TRAIL_MASTER_KEY", "")
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	ctx := context.Background()
	var notices []string
	client, err := trailsqlite.NewClient(ctx, path, &trailsqlite.ClientConfig{Source: "billing", Notice: func(s string) { notices = append(notices, s) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(notices) != 1 || !strings.Contains(notices[0], "app.db.master.key") {
		t.Errorf("notices %q, want one about the created key file", notices)
	}
	rctx := trail.WithTenant(ctx, "acme")
	rctx = trail.WithActor(rctx, trail.Actor{Type: trail.ActorUser, ID: "42", Name: "Alice Chen", Email: "alice@example.com"})
	rctx = trail.WithRequest(rctx, trail.Request{IP: "203.0.113.9", UserAgent: "AliceBrowser/1.0"})
	if _, err := client.DB().ExecContext(ctx, `CREATE TABLE users (id TEXT PRIMARY KEY, password_hash TEXT)`); err != nil {
		t.Fatal(err)
	}
	tx, err := client.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO users VALUES ('42', 'x')`); err != nil {
		t.Fatal(err)
	}
	res, err := client.RecordTx(rctx, tx, trail.Event{
		Action:   "user.update",
		Target:   trail.Target{Type: "user", ID: "42", Name: "Alice Chen"},
		Changes:  []trail.Change{trail.Changed("password_hash", "x", "hunter2-password"), trail.Changed("api_token", nil, "tok_live_4242")},
		Metadata: map[string]any{"password": "meta-password-value", "token": "meta-token-value"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := client.Get(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Actor.Email != "alice@example.com" || got.Actor.IP != "203.0.113.9" || got.Target.Name != "Alice Chen" {
		t.Errorf("Get did not reveal: %+v %+v", got.Actor, got.Target)
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	if !strings.Contains(string(all), res.ID.String()) && !strings.Contains(string(all), "user.update") {
		t.Fatal("the files do not hold the event")
	}
	for _, v := range []string{"hunter2-password", "tok_live_4242", "meta-password-value", "meta-token-value", "Alice Chen", "alice@example.com", "203.0.113.9", "AliceBrowser/1.0"} {
		if strings.Contains(string(all), v) {
			t.Errorf("%q is on disk in plaintext", v)
		}
	}
}

// TestNewClientMalformedKey: a configured key that cannot be read is an
// error, never a fallback to a new key file or to plaintext.
func TestNewClientMalformedKey(t *testing.T) {
	t.Setenv("TRAIL_MASTER_KEY", "not-a-key")
	path := filepath.Join(t.TempDir(), "app.db")
	_, err := trailsqlite.NewClient(context.Background(), path, nil)
	if err == nil || !strings.Contains(err.Error(), "TRAIL_MASTER_KEY") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(path + ".master.key"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a key file was created beside a refused setup: %v", err)
	}
	// Plaintext with a key configured is a contradiction, refused.
	t.Setenv("TRAIL_MASTER_KEY", "")
	if _, err := trailsqlite.NewClient(context.Background(), path, &trailsqlite.ClientConfig{Privacy: trailprivacy.Setup{Plaintext: true, MasterKeyFile: "k"}}); err == nil {
		t.Error("Plaintext with a MasterKeyFile was accepted")
	}
}

// TestRecordTxNewSubjectRollback: on SQLite the caller's transaction holds
// the write lock, so a new subject's key is created inside it; rolled back,
// the key goes with the event, and the next event of that subject gets a key
// that is kept and reads back.
func TestRecordTxNewSubjectRollback(t *testing.T) {
	t.Setenv("TRAIL_MASTER_KEY", "")
	ctx := context.Background()
	client, err := trailsqlite.NewClient(ctx, filepath.Join(t.TempDir(), "app.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	rctx := trail.WithActor(trail.WithTenant(ctx, "acme"), trail.Actor{Type: trail.ActorUser, ID: "new", Email: "new@example.com"})
	tx, err := client.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.RecordTx(rctx, tx, trail.Event{Action: "user.login"}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	var keys int
	if err := client.DB().QueryRowContext(ctx, `SELECT count(*) FROM trail_subject_keys WHERE subject = 'user:new'`).Scan(&keys); err != nil || keys != 0 {
		t.Fatalf("%d keys of user:new after rollback (%v)", keys, err)
	}
	res, err := client.Record(rctx, trail.Event{Action: "user.login"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := client.Get(ctx, res.ID)
	if err != nil || got.Actor.Email != "new@example.com" {
		t.Fatalf("Get: %v %+v", err, got.Actor)
	}
	page, err := client.Query(ctx, trail.Query{Tenant: "acme"})
	if err != nil || len(page.Events) != 1 {
		t.Fatalf("after a rollback and one Record: %v, %d events", err, len(page.Events))
	}
}

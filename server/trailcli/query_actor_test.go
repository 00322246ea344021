package trailcli

import (
	"context"
	"strings"
	"testing"

	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailprivacy"
)

// TestQueryActorEmail: on a store whose e-mails are encrypted, trail query
// --actor-email finds one person's events exactly, through the tenant's
// pseudonyms, and needs --tenant (exit 2 otherwise).
func TestQueryActorEmail(t *testing.T) { // not parallel: sets the environment
	t.Setenv("TRAIL_MASTER_KEY", "")
	db := tempDB(t)
	ctx := context.Background()
	st, p := encryptedSQLite(t, db)
	const ann, bob = "ann@acme.test", "bob@acme.test"
	evs := append(privateEvents(t, p, ann, 12, 2, 1, "user.update"), privateEvents(t, p, bob, 5, 0, 1, "user.update")...)
	if _, err := st.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	st.Close()

	out := mustRun(t, db, env{}, "query", "--tenant", "acme", "--actor-email", ann, "--json", "--limit", "1000").stdout
	if n := strings.Count(out, "\n"); n != 10 || strings.Count(out, ann) != 10 || strings.Contains(out, bob) {
		t.Fatalf("--actor-email %s: %d lines: %.300s", ann, n, out)
	}
	if out := mustRun(t, db, env{}, "query", "--tenant", "acme", "--actor-email", "ANN@acme.test", "--json").stdout; out != "" {
		t.Fatalf("the match is exact, got %.200s", out)
	}
	if r := run(t, db, env{}, "query", "--actor-email", ann); r.code != 2 || !strings.Contains(r.stderr, "--tenant") {
		t.Fatalf("without --tenant: exit %d, stderr %q", r.code, r.stderr)
	}
}

// encryptedSQLite opens the SQLite store db with a privacy layer whose
// master key is in db's .master.key file, where trail finds it.
func encryptedSQLite(t *testing.T, db string) (*trailsqlite.Store, *trailprivacy.Privacy) {
	t.Helper()
	ctx := context.Background()
	st, err := trailsqlite.Open(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	kms, _, err := trailprivacy.OpenMasterKey(trailprivacy.MasterKeyConfig{CreateFile: db + ".master.key"})
	if err != nil {
		t.Fatal(err)
	}
	ks := trailprivacy.NewSQLKeyStore(st.DB())
	if err := ks.Init(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := trailprivacy.New(ctx, trailprivacy.Config{KMS: kms, Keys: ks})
	if err != nil {
		t.Fatal(err)
	}
	return st, p
}

package trailcli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/trailpgx"
	"github.com/trailhq/trail/trailseal/sealtest"
)

// freshPostgresDB creates a database of its own on the test server (the
// CLI's PostgreSQL store lives in the default schema "trail") and returns
// its DSN; it is dropped at the end of the test.
func freshPostgresDB(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	admin := testenv.PostgresDSN()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		testenv.Unavailable(t, "PostgreSQL", err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	name := "t_cli_seal_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database: %v", err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// openPostgres opens and migrates the CLI's PostgreSQL store at dsn (schema
// trail), as the CLI would; the caller closes it.
func openPostgres(t *testing.T, dsn string) *trailpgx.Store {
	t.Helper()
	ctx := context.Background()
	st, err := trailpgx.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

// masterKeyFile writes a new random master key, base64 as the CLI reads it,
// to a file of its own and returns its path.
func masterKeyFile(t *testing.T) string {
	t.Helper()
	var mk [32]byte
	rand.Read(mk[:])
	master := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(master, []byte(base64.StdEncoding.EncodeToString(mk[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return master
}

// TestSealVerifyProvePostgres: `trail seal`, `verify`, `prove` and
// `checkpoints export` on the PostgreSQL store (--postgres), a tampering
// named by tenant and seq, and retention's purge verifying as purged.
func TestSealVerifyProvePostgres(t *testing.T) {
	dsn := freshPostgresDB(t)
	ctx := context.Background()
	st := openPostgres(t, dsn)
	defer st.Close()
	acme := sealtest.Events(t, "acme", 0, 12)
	if _, err := st.Append(ctx, append(acme, sealtest.Events(t, "globex", 0, 7)...)); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "signing.key")
	pg := []string{"--postgres", dsn, "--signing-key-file", key}
	mustRun(t, "", env{}, "keys", "signing", "generate", "--signing-key-file", key)
	if r := mustRun(t, "", env{}, append([]string{"seal"}, pg...)...); !strings.Contains(r.stdout, "Sealed 19 events into 2 logs") {
		t.Fatalf("seal: %q", r.stdout)
	}
	if r := mustRun(t, "", env{}, append([]string{"verify"}, pg...)...); !strings.Contains(r.stdout, "Verified 19 events in 2 logs") || !strings.Contains(r.stdout, "OK:") {
		t.Fatalf("verify: %q", r.stdout)
	}
	if r := mustRun(t, "", env{}, append([]string{"prove", acme[3].ID.String()}, pg...)...); !strings.Contains(r.stdout, `"index": 3`) {
		t.Fatalf("prove: %q", r.stdout)
	}
	out := filepath.Join(t.TempDir(), "acme.json")
	mustRun(t, "", env{}, append([]string{"checkpoints", "export", "--tenant", "acme", out}, pg...)...)

	// Tamper as a superuser would: triggers off, one field edited.
	tamper := func(sql string, args ...any) {
		t.Helper()
		if err := pgx.BeginFunc(ctx, mustConn(t, dsn), func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, sql, args...)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	tamper("UPDATE trail.events SET description = 'nothing happened' WHERE id = $1", acme[5].ID)
	r := run(t, "", env{}, append([]string{"verify", "--checkpoint", out}, pg...)...)
	if r.code == 0 || !strings.Contains(r.stdout, `PROBLEM tenant "acme" seq 5: modified`) {
		t.Fatalf("verify after tampering: exit %d, %q", r.code, r.stdout)
	}
	tamper("UPDATE trail.events SET description = $2 WHERE id = $1", acme[5].ID, acme[5].Description)

	// Retention: acme's first four events purged; the log still verifies.
	var n int64
	if err := mustConn(t, dsn).QueryRow(ctx, "SELECT trail.purge_events($1, 'acme')", sealtest.Base.Add(4*time.Second)).Scan(&n); err != nil || n != 4 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	if r := mustRun(t, "", env{}, append([]string{"verify", "--json"}, pg...)...); !strings.Contains(r.stdout, `"purged": 4`) {
		t.Fatalf("verify after purge: %q", r.stdout)
	}
	if r := mustRun(t, "", env{}, append([]string{"verify"}, pg...)...); !strings.Contains(r.stdout, "4 sealed events were purged by retention") || !strings.Contains(r.stdout, "OK:") {
		t.Fatalf("verify after purge: %q", r.stdout)
	}
}

func mustConn(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// TestServeSealsPostgres: `trail serve --postgres` with a signing key runs
// the sealer on PostgreSQL: checkpoints are served, and after it stops its
// lease is released and `trail verify --postgres` passes.
func TestServeSealsPostgres(t *testing.T) {
	dsn := freshPostgresDB(t)
	ctx := context.Background()
	st := openPostgres(t, dsn)
	defer st.Close()
	if _, err := st.Append(ctx, sealtest.Events(t, "acme", 0, 30)); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "signing.key")
	mustRun(t, "", env{}, "keys", "signing", "generate", "--signing-key-file", key)
	master := masterKeyFile(t)
	base, admin, stop := startServe(t, tempDB(t), "--postgres", dsn, "--signing-key-file", key, "--master-key-file", master,
		"--checkpoint-interval", "50ms", "--seal-interval", "20ms")
	if admin == "" {
		t.Fatal("no admin key printed")
	}
	// Poll until the sealer has signed acme's 30 events (the bound only
	// keeps a broken sealer from hanging the test).
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body := get(t, base+"/v1/checkpoints/latest?tenant=acme", admin)
		if code == 200 && strings.Contains(string(body), `"size":30`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint of size 30 from the serving sealer: %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, out := stop(); code != 0 {
		t.Fatalf("serve exited %d: %s", code, out)
	}
	var held bool
	if err := mustConn(t, dsn).QueryRow(ctx, "SELECT coalesce(bool_or(expires_at > clock_timestamp()), false) FROM trail.seal_leases").Scan(&held); err != nil || held {
		t.Fatalf("lease still held after serve stopped (%v)", err)
	}
	if r := mustRun(t, "", env{}, "verify", "--postgres", dsn, "--signing-key-file", key); !strings.Contains(r.stdout, "Verified 30 events in 1 logs") {
		t.Fatalf("verify: %q", r.stdout)
	}
}

package trailcli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/trailpgx"
)

// `trail capture enable|list|disable` on PostgreSQL, in a schema of the
// test's own, and the events the triggers write.
func TestCaptureCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testenv.PostgresDSN()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		testenv.Unavailable(t, "PostgreSQL", err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	schema := "t_cli_capture_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), dsn)
		if err == nil {
			c.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			c.Close(context.Background())
		}
	})
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema+"; CREATE TABLE "+schema+".users (id int PRIMARY KEY, org text, email text, password text, seen_at timestamptz); CREATE TABLE "+schema+".nokey (a int)"); err != nil {
		t.Fatal(err)
	}
	pg := []string{"--postgres", dsn, "--schema", schema}
	cmd := func(args ...string) []string { return append(args, pg...) }

	r := mustRun(t, "", env{}, cmd("capture", "enable", schema+".users", "--tenant-column", "org", "--ignore", "seen_at", "--redact", "password")...)
	if !strings.Contains(r.stdout, "users.insert|update|delete") {
		t.Errorf("enable said %q", r.stdout)
	}
	r = mustRun(t, "", env{}, cmd("capture", "list", "--json")...)
	var c trailpgx.Capture
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
		t.Fatalf("list --json: %v: %q", err, r.stdout)
	}
	if c.Name != "users" || c.TenantColumn != "org" || strings.Join(c.Ignore, ",") != "seen_at" || strings.Join(c.Redact, ",") != "password" || strings.Join(c.Key, ",") != "id" {
		t.Errorf("list: %+v", c)
	}
	if r := mustRun(t, "", env{}, cmd("capture", "list")...); !strings.Contains(r.stdout, "users") || !strings.Contains(r.stdout, "password") {
		t.Errorf("list table: %q", r.stdout)
	}

	if _, err := conn.Exec(ctx, "UPDATE "+schema+".users SET email = 'x' WHERE false; INSERT INTO "+schema+".users VALUES (1, 'acme', 'a@example.com', 'pw', now())"); err != nil {
		t.Fatal(err)
	}
	st, err := trailpgx.Open(ctx, dsn, &trailpgx.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p, err := st.Query(ctx, trail.Query{Tenant: "acme", TargetType: "users", TargetID: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 1 || p.Events[0].Action != "users.insert" || p.Events[0].Source != "trigger" || p.Events[0].Actor.Type != trail.ActorSystem {
		t.Fatalf("events: %+v", p.Events)
	}

	// Bad input: exit 2 and a message naming the problem.
	for _, bad := range []struct {
		args []string
		msg  string
	}{
		{cmd("capture", "enable", schema+".users"), "already enabled"},
		{cmd("capture", "enable", schema+".nokey"), "primary key"},
		{cmd("capture", "enable", schema+".nope"), "no such table"},
		{cmd("capture", "enable", schema+".nokey", "--tenant-column", "org"), "primary key"},
		{[]string{"capture", "list"}, "--postgres"},
	} {
		r := run(t, "", env{}, bad.args...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, bad.msg) {
			t.Errorf("trail %s: exit %d, stderr %q, want 2 and %q", strings.Join(bad.args, " "), r.code, r.stderr, bad.msg)
		}
	}

	mustRun(t, "", env{}, cmd("capture", "disable", schema+".users")...)
	if r := run(t, "", env{}, cmd("capture", "disable", schema+".users")...); r.code != ExitUsage || !strings.Contains(r.stderr, "not enabled") {
		t.Errorf("second disable: %d %q", r.code, r.stderr)
	}
	if r := mustRun(t, "", env{}, cmd("capture", "list")...); !strings.Contains(r.stdout, "No table is captured") {
		t.Errorf("list after disable: %q", r.stdout)
	}
}

// `trail capture enable` redacts the deny-listed columns by default and
// says so; the global --no-default-redaction turns that off for the table;
// `trail capture list` shows which.
func TestCaptureDefaultRedactionCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testenv.PostgresDSN()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		testenv.Unavailable(t, "PostgreSQL", err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	schema := "t_cli_capture_red_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), dsn)
		if err == nil {
			c.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			c.Close(context.Background())
		}
	})
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema+"; CREATE TABLE "+schema+".accounts (id int PRIMARY KEY, org text, plan text, password_hash text, api_token text); CREATE TABLE "+schema+".keys (id int PRIMARY KEY, org text, api_token text)"); err != nil {
		t.Fatal(err)
	}
	pg := []string{"--postgres", dsn, "--schema", schema}
	cmd := func(args ...string) []string { return append(args, pg...) }

	r := mustRun(t, "", env{}, cmd("capture", "enable", schema+".accounts", "--tenant-column", "org")...)
	if !strings.Contains(r.stdout, "Default redaction on: password_hash, api_token") {
		t.Errorf("enable said %q", r.stdout)
	}
	r = mustRun(t, "", env{}, cmd("capture", "enable", schema+".keys", "--tenant-column", "org", "--no-default-redaction")...)
	if !strings.Contains(r.stdout, "Default redaction off") {
		t.Errorf("enable --no-default-redaction said %q", r.stdout)
	}

	r = mustRun(t, "", env{}, cmd("capture", "list", "--json")...)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], `"default_redaction":false`) {
		t.Fatalf("list --json: %q", r.stdout)
	}
	var acc, keys trailpgx.Capture
	if err := json.Unmarshal([]byte(lines[0]), &acc); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &keys); err != nil {
		t.Fatal(err)
	}
	if acc.Name != "accounts" || !acc.DefaultRedaction || strings.Join(acc.DefaultRedacted, ",") != "password_hash,api_token" ||
		keys.Name != "keys" || keys.DefaultRedaction || keys.DefaultRedacted != nil {
		t.Errorf("list --json: %+v %+v", acc, keys)
	}
	r = mustRun(t, "", env{}, cmd("capture", "list")...)
	if !strings.Contains(r.stdout, "DEFAULT REDACTION") || !strings.Contains(r.stdout, "on: password_hash,api_token") || !strings.Contains(r.stdout, "off") {
		t.Errorf("list: %q", r.stdout)
	}

	if _, err := conn.Exec(ctx, "INSERT INTO "+schema+".accounts VALUES (1, 'acme', 'free', 'hash-s3cr3t', 'tok-s3cr3t'); INSERT INTO "+schema+".keys VALUES (1, 'acme', 'key-in-clear')"); err != nil {
		t.Fatal(err)
	}
	count := func(needle string) int {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+schema+".events e WHERE strpos(e::text, $1) > 0", needle).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count("s3cr3t"); n != 0 {
		t.Errorf("%d events hold the accounts' secrets", n)
	}
	if n := count(`""redacted"": true`); n != 1 { // quotes doubled in the row's text
		t.Errorf("%d events with redacted changes, want 1 (accounts.insert)", n)
	}
	if n := count("key-in-clear"); n != 1 {
		t.Errorf("%d events hold the keys' api_token, want 1 (--no-default-redaction)", n)
	}
}

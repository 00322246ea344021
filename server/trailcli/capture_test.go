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

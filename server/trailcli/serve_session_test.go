package trailcli

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailhq/trail/server/trailsqlite"
)

// TestServeSessionSecret: replicas given the same --session-secret-file (or
// TRAIL_SESSION_SECRET) accept each other's UI sessions and keep no secret
// in the database; a server with another secret refuses them (sign-in
// again), even on the same database.
func TestServeSessionSecret(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "trail.db")
	secretFile := filepath.Join(dir, "session.secret")
	const secret = "0123456789abcdef0123456789abcdef0123456789ab"
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TRAIL_SESSION_SECRET", "")
	a, admin, _ := startServe(t, db, "--session-secret-file", secretFile)
	c := noRedirects(&http.Client{})
	session := uiSignIn(t, c, a, admin)["trail_session"]

	probe := func(base string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/ui/session", nil)
		req.AddCookie(&http.Cookie{Name: session.Name, Value: session.Value})
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := probe(a); code != http.StatusNoContent {
		t.Fatalf("the signing server: %d", code)
	}
	// A replica with the same secret, from the environment.
	t.Setenv("TRAIL_SESSION_SECRET", secret)
	b, _, _ := startServe(t, db)
	if code := probe(b); code != http.StatusNoContent {
		t.Fatalf("a replica with the same secret: %d", code)
	}
	// Another secret: the cookie is not one it signed.
	t.Setenv("TRAIL_SESSION_SECRET", strings.Repeat("z", 32))
	other, _, _ := startServe(t, db)
	if code := probe(other); code != http.StatusUnauthorized {
		t.Fatalf("a server with another secret: %d, want 401", code)
	}
	// Nothing of it in the database.
	st, err := trailsqlite.Open(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n int
	err = st.DB().QueryRow(`SELECT COUNT(*) FROM trail_ui_secrets WHERE name = 'ui-session'`).Scan(&n)
	if err == nil && n != 0 || err != nil && !strings.Contains(err.Error(), "no such table") {
		t.Fatalf("the database keeps a session secret: %d rows, %v", n, err)
	}
}

// TestServeSessionSecretBadFlags: a short secret, both forms at once, an
// unreadable file are bad usage: exit 2, one line naming the flag, and no
// database.
func TestServeSessionSecretBadFlags(t *testing.T) {
	short := filepath.Join(t.TempDir(), "short")
	if err := os.WriteFile(short, []byte("tooshort\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("s", 32)
	t.Setenv("TRAIL_SESSION_SECRET", "")
	t.Setenv("TRAIL_SESSION_SECRET_FILE", "")
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"short", nil, []string{"--session-secret", "tooshort"}, "--session-secret: 8 bytes"},
		{"short env", map[string]string{"TRAIL_SESSION_SECRET": "x"}, nil, "--session-secret: 1 bytes"},
		{"short file", nil, []string{"--session-secret-file", short}, "--session-secret-file " + short + ": 8 bytes"},
		{"missing file", nil, []string{"--session-secret-file", short + ".missing"}, "--session-secret-file: open"},
		{"both", nil, []string{"--session-secret", long, "--session-secret-file", short}, "not both"},
	} {
		t.Run(c.name, func(t *testing.T) { wantServeUsage(t, c.env, c.args, c.want) })
	}
}

// wantServeUsage runs trail serve with the environment vars and args and wants bad usage:
// exit 2, one line containing want, and no database created.
func wantServeUsage(t *testing.T, vars map[string]string, args []string, want string) {
	t.Helper()
	for k, v := range vars {
		t.Setenv(k, v)
	}
	db := filepath.Join(t.TempDir(), "trail.db")
	r := run(t, db, env{}, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	if r.code != ExitUsage || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, want) {
		t.Errorf("exit %d, stderr %q; want exit 2 and %q", r.code, r.stderr, want)
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Errorf("a database was created")
	}
}

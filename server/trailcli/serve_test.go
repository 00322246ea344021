package trailcli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to read while the server writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var (
	listenRE = regexp.MustCompile(`listening on (https?://127\.0\.0\.1:\d+)`)
	keyRE    = regexp.MustCompile(`export TRAIL_KEY=(trail_[A-Za-z0-9_-]{43})`)
)

// startServe runs `trail serve` in-process on a free port and returns its
// base URL, the printed admin key, and a stop function (the SIGTERM path)
// that returns the exit code and output.
func startServe(t *testing.T, db string, args ...string) (base, key string, stop func() (int, string)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	term, w := false, 0
	e := &Env{Ctx: ctx, Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Loc: time.UTC, StdinIsTerminal: &term, Width: &w}
	done := make(chan int, 1)
	go func() {
		done <- e.Main(append([]string{"--db", db, "serve", "--addr", "127.0.0.1:0"}, args...))
	}()
	deadline := time.After(60 * time.Second)
	for {
		if m := listenRE.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
			break
		}
		select {
		case code := <-done:
			cancel()
			t.Fatalf("serve exited %d: %s %s", code, out.String(), errb.String())
		case <-deadline:
			cancel()
			t.Fatalf("serve did not start: %s %s", out.String(), errb.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if m := keyRE.FindStringSubmatch(out.String()); m != nil {
		key = m[1]
	}
	stopped := false
	stop = func() (int, string) {
		if stopped {
			return 0, out.String()
		}
		stopped = true
		cancel()
		return <-done, out.String() + errb.String()
	}
	t.Cleanup(func() { stop() })
	return base, key, stop
}

func get(t *testing.T, url, key string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestServeDemo is the README's run command: serve --demo seeds the demo,
// prints a working admin key and URLs, answers, and stops cleanly.
func TestServeDemo(t *testing.T) {
	db := filepath.Join(t.TempDir(), "trail.db")
	base, key, stop := startServe(t, db, "--demo")
	if key == "" {
		t.Fatal("no admin key printed")
	}
	code, body := get(t, base+"/v1/events?tenant=acme&action=subscription.*", key)
	var page struct {
		Events []struct {
			Tenant, Action string
		}
	}
	json.Unmarshal(body, &page)
	if code != 200 || len(page.Events) == 0 {
		t.Fatalf("demo query: %d %s", code, body)
	}
	for _, ev := range page.Events {
		if ev.Tenant != "acme" || !strings.HasPrefix(ev.Action, "subscription.") {
			t.Fatalf("demo query returned %+v", ev)
		}
	}
	if code, _ := get(t, base+"/v1/events", ""); code != 401 {
		t.Fatalf("no key: %d", code)
	}
	exit, out := stop()
	if exit != 0 || !strings.Contains(out, "Seeded") || !strings.Contains(out, "/v1/tail") || !strings.Contains(out, "Stopped.") {
		t.Fatalf("exit %d, output:\n%s", exit, out)
	}

	// A second start keeps the data, prints a fresh demo key, and the old
	// key still works.
	base, key2, stop := startServe(t, db, "--demo")
	if key2 == "" || key2 == key {
		t.Fatalf("second start printed key %q", key2)
	}
	if code, _ := get(t, base+"/v1/stats?tenant=acme", key); code != 200 {
		t.Fatalf("first key after restart: %d", code)
	}
	if _, out := stop(); !strings.Contains(out, "already holds events") {
		t.Fatalf("second start output:\n%s", out)
	}
}

// TestServeAdminKeyFromEnv: TRAIL_ADMIN_KEY is the admin key, nothing printed.
func TestServeAdminKeyFromEnv(t *testing.T) {
	const admin = "trail_my-own-admin-key-for-this-deployment-0001"
	t.Setenv("TRAIL_ADMIN_KEY", admin)
	db := filepath.Join(t.TempDir(), "trail.db")
	base, key, _ := startServe(t, db)
	if key != "" {
		t.Fatalf("a key was printed although TRAIL_ADMIN_KEY is set")
	}
	if code, body := get(t, base+"/v1/keys", admin); code != 200 {
		t.Fatalf("TRAIL_ADMIN_KEY: %d %s", code, body)
	}
}

func TestServeBadFlags(t *testing.T) {
	db := filepath.Join(t.TempDir(), "trail.db")
	if r := run(t, db, env{}, "serve", "--addr", "256.0.0.1:99999"); r.code != 1 || !strings.Contains(r.stderr, "--addr") {
		t.Fatalf("bad addr: %+v", r)
	}
	if r := run(t, db, env{}, "serve", "--rate-limit", "-1"); r.code != 2 {
		t.Fatalf("negative rate: %+v", r)
	}
	if r := run(t, db, env{}, "serve", "--postgres", "postgres://nobody@127.0.0.1:1/x?connect_timeout=2"); r.code != 1 || !strings.Contains(r.stderr, "PostgreSQL") {
		t.Fatalf("unreachable PostgreSQL: %+v", r)
	}
}

// TestKeysCommands creates, lists and revokes keys and checks them against a
// running server.
func TestKeysCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "trail.db")
	mustRun(t, db, env{}, "migrate")
	r := mustRun(t, db, env{}, "keys", "create", "--tenant", "acme", "--role", "reader", "--expires", "90d", "--json")
	var created struct{ ID, Key string }
	if err := json.Unmarshal([]byte(r.stdout), &created); err != nil || created.ID == "" || !strings.HasPrefix(created.Key, "trail_") {
		t.Fatalf("keys create --json: %q %v", r.stdout, err)
	}
	r = mustRun(t, db, env{}, "keys", "create", "--all", "--role", "admin", "--name", "ops")
	if !strings.Contains(r.stdout, "all tenants") || keyLine(r.stdout) == "" {
		t.Fatalf("keys create: %q", r.stdout)
	}
	r = mustRun(t, db, env{}, "keys", "list")
	if !strings.Contains(r.stdout, created.ID) || !strings.Contains(r.stdout, "acme") || strings.Contains(r.stdout, created.Key) {
		t.Fatalf("keys list: %q", r.stdout)
	}
	base, _, _ := startServe(t, db)
	if code, body := get(t, base+"/v1/events", created.Key); code != 200 {
		t.Fatalf("created key: %d %s", code, body)
	}
	mustRun(t, db, env{}, "keys", "revoke", created.ID)
	if code, _ := get(t, base+"/v1/events", created.Key); code != 401 {
		t.Fatalf("revoked key: %d, want 401", code)
	}
	r = mustRun(t, db, env{}, "keys", "list", "--json")
	if !strings.Contains(r.stdout, `"revoked_at"`) {
		t.Fatalf("keys list --json: %q", r.stdout)
	}
	for _, bad := range [][]string{
		{"keys", "create", "--role", "reader"},
		{"keys", "create", "--tenant", "acme", "--all", "--role", "reader"},
		{"keys", "create", "--tenant", "acme", "--role", "root"},
		{"keys", "create", "--tenant", "acme corp", "--role", "reader"},
		{"keys", "create", "--tenant", "acme", "--role", "reader", "--expires", "soon"},
		{"keys", "revoke", "nope"},
	} {
		if r := run(t, db, env{}, bad...); r.code != 2 || r.stderr == "" {
			t.Errorf("%v: exit %d %q", bad, r.code, r.stderr)
		}
	}
}

func keyLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "trail_") {
			return l
		}
	}
	return ""
}

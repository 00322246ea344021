package trailcli

import (
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestStreamsCLI: trail streams create, list, show, pause, resume,
// rotate-secret and delete on the SQLite store, against an HTTPS receiver
// trusted through --ca-file; the secret is printed once and never again;
// every change is an event; bad input is one line and exit 2.
func TestStreamsCLI(t *testing.T) {
	var posts atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		posts.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	db := tempDB(t)
	t.Setenv("TRAIL_MASTER_KEY", "")

	// Bad input: one line, exit 2, nothing stored.
	r := run(t, db, env{}, "streams", "create", "--tenant", "acme", "--type", "webhook")
	if r.code != 2 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, "destination.url") {
		t.Fatalf("no url: %d %q", r.code, r.stderr)
	}
	// Untrusted certificate: refused with the reason.
	r = run(t, db, env{}, "streams", "create", "--tenant", "acme", "--type", "webhook", "--url", srv.URL+"/hook")
	if r.code != 1 || !strings.Contains(r.stderr, "certificate") {
		t.Fatalf("untrusted: %d %q", r.code, r.stderr)
	}

	r = mustRun(t, db, env{}, "streams", "create", "--tenant", "acme", "--name", "siem", "--type", "webhook", "--url", srv.URL+"/hook", "--ca-file", ca)
	if !strings.Contains(r.stdout, "whsec_") || posts.Load() != 1 {
		t.Fatalf("create: %q (posts %d)", r.stdout, posts.Load())
	}
	secret := r.stdout[strings.Index(r.stdout, "whsec_"):][:70]
	id := strings.Fields(r.stdout)[3]
	if !strings.HasPrefix(id, "ls_") {
		t.Fatalf("id %q in %q", id, r.stdout)
	}
	list := mustRun(t, db, env{}, "streams", "list")
	if !strings.Contains(list.stdout, id) || !strings.Contains(list.stdout, "pending") {
		t.Fatalf("list: %q", list.stdout)
	}
	show := mustRun(t, db, env{}, "streams", "show", id, "--json")
	var got struct {
		Stream struct {
			HasSecret bool `json:"has_secret"`
		} `json:"stream"`
	}
	if err := json.Unmarshal([]byte(show.stdout), &got); err != nil || !got.Stream.HasSecret {
		t.Fatalf("show: %v %q", err, show.stdout)
	}
	if strings.Contains(show.stdout+list.stdout, secret) {
		t.Fatal("the secret is shown again")
	}
	mustRun(t, db, env{}, "streams", "pause", id)
	if r := mustRun(t, db, env{}, "streams", "list", "--tenant", "acme"); !strings.Contains(r.stdout, "paused") {
		t.Fatalf("after pause: %q", r.stdout)
	}
	mustRun(t, db, env{}, "streams", "resume", id)
	rot := mustRun(t, db, env{}, "streams", "rotate-secret", id)
	if !strings.Contains(rot.stdout, "whsec_") || strings.Contains(rot.stdout, secret) {
		t.Fatalf("rotate: %q", rot.stdout)
	}
	mustRun(t, db, env{}, "streams", "delete", id)
	if r := run(t, db, env{}, "streams", "show", id); r.code != 2 || !strings.Contains(r.stderr, "no such log stream") {
		t.Fatalf("show deleted: %d %q", r.code, r.stderr)
	}
	evs := jsonEvents(t, db, "--tenant", "acme", "--action", "log_stream.*")
	var actions []string
	for i := len(evs) - 1; i >= 0; i-- {
		actions = append(actions, evs[i].Action)
		if evs[i].Target.ID != id || evs[i].Actor.ID != "cli" {
			t.Fatalf("event %+v", evs[i])
		}
	}
	if strings.Join(actions, " ") != "log_stream.create log_stream.pause log_stream.resume log_stream.rotate_secret log_stream.delete" {
		t.Fatalf("events %v", actions)
	}
}

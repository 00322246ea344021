package trailcli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailclient"
)

// TestViewerTokenCLI: trail viewer-token asks a running server for a viewer
// link with the flags' narrowing; the link opens; bad input is one line and
// exit 2 (checked here, or refused by the server and named by its flag);
// a key that may not issue, and a server that is away, exit 1.
func TestViewerTokenCLI(t *testing.T) {
	ctx := context.Background()
	st, err := trailsqlite.Open(ctx, filepath.Join(t.TempDir(), "trail.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ks, err := trailserver.NewSQLKeyStore(ctx, st.DB(), trailserver.DialectSQLite)
	if err != nil {
		t.Fatal(err)
	}
	secret := map[string]string{}
	for _, k := range []struct {
		name, tenant string
		role         trailserver.Role
	}{{"admin", "", trailserver.RoleAdmin}, {"acme-admin", "acme", trailserver.RoleAdmin}, {"reader", "", trailserver.RoleReader}} {
		_, sec, err := trailserver.CreateKey(ctx, ks, trailserver.NewKeyRequest{Tenant: k.tenant, All: k.tenant == "", Role: k.role, Name: k.name}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		secret[k.name] = sec
	}
	ev := trail.Event{Tenant: "acme", Actor: trail.Actor{Type: trail.ActorUser, ID: "42"}, Action: "user.create", Target: trail.Target{Type: "user", ID: "7"}}
	if err := ev.Normalize(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, []trail.Event{ev}); err != nil {
		t.Fatal(err)
	}
	srv, err := trailserver.New(trailserver.Config{Store: st, Keys: ks, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { srv.Close(); ts.Close() })
	t.Setenv("TRAIL_URL", "")
	t.Setenv("TRAIL_API_KEY", "")
	t.Setenv("TRAIL_KEY", "")

	vt := func(key string, args ...string) result {
		return run(t, "", env{}, append([]string{"viewer-token", "--url", ts.URL, "--api-key", secret[key]}, args...)...)
	}

	t.Run("a narrowed link that opens", func(t *testing.T) {
		before := time.Now()
		r := vt("acme-admin", "--tenant", "acme", "--expires", "30m", "--action", "user.*,billing.*", "--actor", "user:42",
			"--export", "--viewer-id", "u_9", "--viewer-name", "Cora", "--json")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		var tok trailclient.ViewerToken
		if err := json.Unmarshal([]byte(r.stdout), &tok); err != nil {
			t.Fatalf("--json: %v: %q", err, r.stdout)
		}
		if tok.Tenant != "acme" || !strings.HasPrefix(tok.URL, ts.URL+"/viewer/?token=v1.") || !strings.HasPrefix(tok.Token, "v1.") {
			t.Fatalf("token %+v", tok)
		}
		if d := tok.ExpiresAt.Sub(before); d < 29*time.Minute || d > 31*time.Minute {
			t.Fatalf("expires in %s, want 30m", d)
		}
		resp, err := http.Get(tok.URL)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), ev.ID.String()) {
			t.Fatalf("the link answers %d, with the event: %v", resp.StatusCode, strings.Contains(string(page), ev.ID.String()))
		}
		// The flags reached the server: its viewer_token.create event.
		p, err := st.Query(ctx, trail.Query{Tenant: "acme", Action: "viewer_token.create", Limit: 10})
		if err != nil || len(p.Events) != 1 {
			t.Fatalf("viewer_token.create events: %d, %v", len(p.Events), err)
		}
		m := p.Events[0].Metadata
		acts, _ := m["actions"].([]any)
		if len(acts) != 2 || acts[0] != "user.*" || acts[1] != "billing.*" || m["actor"] != "user:42" || m["export"] != true || m["viewer"] != "u_9" || m["viewer_token"] != tok.ID {
			t.Fatalf("recorded metadata %v", m)
		}

		// The default output is the link and how to embed it; the key may
		// come from TRAIL_KEY, the server from TRAIL_URL.
		t.Setenv("TRAIL_URL", ts.URL)
		t.Setenv("TRAIL_KEY", secret["admin"])
		os.Unsetenv("TRAIL_API_KEY") // set (to "") by the test, it would win
		r = run(t, "", env{}, "viewer-token", "--tenant", "globex")
		if r.code != 0 || !strings.Contains(r.stdout, "\n  "+ts.URL+"/viewer/?token=v1.") || !strings.Contains(r.stdout, "<trail-viewer src=") {
			t.Fatalf("exit %d: %q %q", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("bad input is one line and exit 2", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"--tenant", "Not A Tenant"}, "--tenant"},
			{[]string{"--tenant", "acme", "--expires", "soon"}, "--expires"},
			{[]string{"--tenant", "acme", "--expires", "13h"}, "--expires"},
			{[]string{"--tenant", "acme", "--action", "!user.*"}, "--action"},
			{[]string{"--tenant", "acme", "--actor", "42"}, "--actor"},
			{[]string{"--tenant", "acme", "--target", "user:"}, "--target"},
			{[]string{"--tenant", "acme", "--action", "Bad Action"}, "--action"}, // refused by the server
			{[]string{}, "--tenant"},
		} {
			r := vt("admin", c.args...)
			msg := strings.TrimSpace(r.stderr)
			if r.code != ExitUsage || strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "trail: ") || !strings.Contains(msg, c.want) || r.stdout != "" {
				t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit 2 naming %s", c.args, r.code, r.stderr, r.stdout, c.want)
			}
		}
		r := run(t, "", env{}, "viewer-token", "--url", "ftp://x", "--api-key", "k", "--tenant", "acme")
		if r.code != ExitUsage || !strings.Contains(r.stderr, "--url") {
			t.Errorf("ftp URL: exit %d %q", r.code, r.stderr)
		}
	})

	t.Run("a key that may not, and a server away, fail", func(t *testing.T) {
		for _, c := range []struct{ key, tenant, want string }{
			{"acme-admin", "globex", "403"}, // another tenant's admin
			{"reader", "acme", "403"},       // not an admin
		} {
			r := vt(c.key, "--tenant", c.tenant)
			if r.code != ExitFailure || !strings.Contains(r.stderr, c.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
				t.Errorf("%s for %s: exit %d %q", c.key, c.tenant, r.code, r.stderr)
			}
		}
		p, err := st.Query(ctx, trail.Query{AllTenants: true, Action: "viewer_token.create", Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var tenants []string
		for _, e := range p.Events {
			tenants = append(tenants, e.Tenant)
		}
		slices.Sort(tenants)
		if !slices.Equal(tenants, []string{"acme", "globex"}) {
			t.Fatalf("tokens issued for %v: a refused request minted one", tenants)
		}
		away := httptest.NewServer(http.NotFoundHandler())
		away.Close()
		r := run(t, "", env{}, "viewer-token", "--url", away.URL, "--api-key", secret["admin"], "--tenant", "acme")
		if r.code != ExitFailure || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("server away: exit %d %q", r.code, r.stderr)
		}
	})
}

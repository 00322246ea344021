package trailserver_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailserver"
)

type viewerToken struct {
	Token     string    `json:"token"`
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Tenant    string    `json:"tenant"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (f *fixture) viewerToken(keyName string, req map[string]any) viewerToken {
	f.t.Helper()
	r := f.json("POST", "/v1/viewer-tokens", keyName, req)
	if r.status != http.StatusCreated {
		f.t.Fatalf("POST /v1/viewer-tokens %v: %d %s", req, r.status, clip(r.body))
	}
	var vt viewerToken
	if err := json.Unmarshal(r.body, &vt); err != nil {
		f.t.Fatal(err)
	}
	return vt
}

// page GETs a viewer page (not an API call: HTML, no key).
func (f *fixture) page(path string) (int, string, http.Header) {
	f.t.Helper()
	resp, err := f.ts.Client().Get(f.ts.URL + path)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// rowTenants are the data-tenant attributes of a viewer page's rows.
func rowTenants(body string) []string {
	var ts []string
	for _, part := range strings.Split(body, `data-tenant="`)[1:] {
		ts = append(ts, part[:strings.IndexByte(part, '"')])
	}
	return ts
}

func TestViewerTokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		clock := &testClock{t: time.Now()}
		f := newFixture(t, b, func(c *trailserver.Config) { c.Now = clock.now })

		t.Run("who may issue", func(t *testing.T) {
			for _, c := range []struct {
				key, tenant string
				status      int
			}{
				{"readerA", "acme", http.StatusForbidden},  // not an admin key
				{"adminA", "globex", http.StatusForbidden}, // another tenant
				{"adminA", "", http.StatusBadRequest},      // one tenant is required
				{"admin", "acme", http.StatusCreated},      // all-tenant admin
				{"adminA", "acme", http.StatusCreated},     // the tenant's admin
				{"adminA", "ac me", http.StatusBadRequest}, // not a tenant
			} {
				r := f.json("POST", "/v1/viewer-tokens", c.key, map[string]any{"tenant": c.tenant})
				if r.status != c.status {
					t.Errorf("%s for %q: %d, want %d: %s", c.key, c.tenant, r.status, c.status, clip(r.body))
				}
			}
			for _, bad := range []map[string]any{
				{"tenant": "acme", "expires_in": "13h"},
				{"tenant": "acme", "actions": []string{"a,b"}},
				{"tenant": "acme", "actor": "nobody"},
				{"tenant": "acme", "viewer": map[string]any{"id": "u1", "email": "a\x01@b"}},
				{"tenant": "acme", "scope": "all"},
			} {
				if r := f.json("POST", "/v1/viewer-tokens", "adminA", bad); r.status != http.StatusBadRequest {
					t.Errorf("%v: %d, want 400", bad, r.status)
				}
			}
		})

		t.Run("the viewer shows its tenant only, read-only, audited as the viewer", func(t *testing.T) {
			vt := f.viewerToken("adminA", map[string]any{"tenant": "acme", "viewer": map[string]any{"id": "cust_7", "name": "Cora Admin"}})
			code, body, h := f.page(vt.URL)
			if code != http.StatusOK {
				t.Fatalf("viewer: %d %.500s", code, body)
			}
			ts := rowTenants(body)
			if len(ts) < 2 {
				t.Fatalf("viewer rows %v", ts)
			}
			for _, tn := range ts {
				if tn != "acme" {
					t.Fatalf("viewer of acme shows a %q row", tn)
				}
			}
			if strings.Contains(body, f.globexEvent.String()) || strings.Contains(body, f.platformEvent.String()) {
				t.Fatal("viewer shows another tenant's event")
			}
			// The second view does not show the first one's audit.read.
			if _, again, _ := f.page(vt.URL); strings.Contains(again, "audit.read") {
				t.Fatal("the viewer shows access events")
			}
			if !strings.Contains(body, `plan: &#34;free&#34; → &#34;pro&#34;`) {
				t.Fatal("the viewer does not show what changed")
			}
			if !strings.Contains(body, "Cora Admin") {
				t.Fatal("viewer does not name the viewer")
			}
			if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Fatalf("CSP without configured origins: %s", csp)
			}
			// A tenant parameter changes nothing; export is not granted.
			if _, body2, _ := f.page(vt.URL + "&tenant=globex"); strings.Contains(body2, `data-tenant="globex"`) {
				t.Fatal("tenant=globex widened the viewer")
			}
			if code, _, _ := f.page("/viewer/export?format=csv&token=" + url.QueryEscape(vt.Token)); code != http.StatusForbidden {
				t.Fatalf("export without the grant: %d", code)
			}
			var views int
			for _, ev := range f.events(trail.Query{Tenant: "acme", ActorType: trail.ActorUser, ActorID: "cust_7"}) {
				if ev.Action == "audit.read" && ev.Metadata["viewer_token"] == vt.ID && ev.Actor.Name == "Cora Admin" {
					views++
				}
			}
			if views != 3 { // three page views
				t.Fatalf("%d audit.read events by the viewer, want 3", views)
			}
		})

		t.Run("a narrowed token with export", func(t *testing.T) {
			vt := f.viewerToken("admin", map[string]any{"tenant": "acme", "actions": []string{"user.*"}, "export": true})
			_, body, _ := f.page(vt.URL)
			if !strings.Contains(body, "user.delete") || strings.Contains(body, "subscription.update") {
				t.Fatalf("narrowed viewer: %.1500s", body)
			}
			code, csv, h := f.page("/viewer/export?format=csv&token=" + url.QueryEscape(vt.Token))
			if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") {
				t.Fatalf("export: %d %s", code, h.Get("Content-Type"))
			}
			lines := strings.Split(strings.TrimSpace(csv), "\n")
			if len(lines) != 2 || !strings.Contains(lines[1], "user.delete") || !strings.Contains(lines[1], ",acme,") {
				t.Fatalf("export:\n%s", csv)
			}
		})

		t.Run("a token cannot be widened, moved or replayed late", func(t *testing.T) {
			vt := f.viewerToken("adminA", map[string]any{"tenant": "acme", "actions": []string{"user.*"}})
			parts := strings.Split(vt.Token, ".")
			claims := mustB64(t, parts[1])
			forged := map[string]string{
				"other tenant":  strings.Replace(claims, `"ten":"acme"`, `"ten":"globex"`, 1),
				"no narrowing":  strings.Replace(claims, `,"act":["user.*"]`, ``, 1),
				"export added":  strings.Replace(claims, `}`, `,"export":true}`, 1),
				"later expiry":  strings.Replace(claims, `"exp":`, `"exp":9`, 1),
				"unknown claim": strings.Replace(claims, `}`, `,"all":true}`, 1),
			}
			for name, c := range forged {
				if c == claims {
					t.Fatalf("%s: the claims %s did not change", name, claims)
				}
				tok := "v1." + b64(c) + "." + parts[2]
				if code, body, _ := f.page("/viewer/?token=" + url.QueryEscape(tok)); code != http.StatusUnauthorized || strings.Contains(body, "data-tenant") {
					t.Errorf("%s: %d", name, code)
				}
			}
			for name, tok := range map[string]string{
				"flipped signature": "v1." + parts[1] + "." + flip(parts[2]),
				"session cookie":    "s1." + parts[1] + "." + parts[2],
				"empty":             "",
			} {
				if code, _, _ := f.page("/viewer/?token=" + url.QueryEscape(tok)); code != http.StatusUnauthorized {
					t.Errorf("%s: %d", name, code)
				}
			}
			if code, _, _ := f.page(vt.URL); code != http.StatusOK {
				t.Fatalf("the genuine token: %d", code)
			}
			clock.add(16 * time.Minute) // past the default 15 min
			code, body, _ := f.page(vt.URL)
			if code != http.StatusUnauthorized || !strings.Contains(body, "expired") {
				t.Fatalf("expired token: %d %.300s", code, body)
			}
		})

		t.Run("revoking the issuing key withdraws its tokens", func(t *testing.T) {
			_, secret, err := trailserver.CreateKey(context.Background(), f.keys, trailserver.NewKeyRequest{Tenant: "acme", Role: trailserver.RoleAdmin, Name: "saas"}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			f.secret["saas"] = secret
			vt := f.viewerToken("saas", map[string]any{"tenant": "acme"})
			if code, _, _ := f.page(vt.URL); code != http.StatusOK {
				t.Fatalf("before: %d", code)
			}
			keys, _ := f.keys.List(context.Background(), "acme")
			for _, k := range keys {
				if k.Name == "saas" {
					f.keys.Revoke(context.Background(), k.ID, time.Now())
				}
			}
			if code, _, _ := f.page(vt.URL); code != http.StatusUnauthorized {
				t.Fatalf("after revocation: %d", code)
			}
		})

		t.Run("frame origins and brand per tenant", func(t *testing.T) {
			if r := f.json("PUT", "/v1/viewer-settings/acme", "adminA", map[string]any{"frame_origins": []string{"https://app.example.com", "http://127.0.0.1:8080"}, "name": "Acme Cloud", "accent": "#0a7f5a"}); r.status != http.StatusOK {
				t.Fatalf("PUT settings: %d %s", r.status, clip(r.body))
			}
			if r := f.json("PUT", "/v1/viewer-settings/globex", "adminA", map[string]any{}); r.status != http.StatusForbidden {
				t.Fatalf("PUT another tenant's settings: %d", r.status)
			}
			for _, bad := range []map[string]any{
				{"frame_origins": []string{"*"}}, {"frame_origins": []string{"https://a.example/path"}},
				{"frame_origins": []string{"https://a.example 'unsafe-inline'"}}, {"accent": "red;}body{"},
			} {
				if r := f.json("PUT", "/v1/viewer-settings/acme", "adminA", bad); r.status != http.StatusBadRequest {
					t.Errorf("%v: %d", bad, r.status)
				}
			}
			r := f.do("GET", "/v1/viewer-settings/acme", "readerA", nil)
			if r.status != http.StatusForbidden {
				t.Fatalf("reader GET settings: %d", r.status)
			}
			r = f.do("GET", "/v1/viewer-settings/acme", "adminA", nil)
			var got struct {
				FrameOrigins []string `json:"frame_origins"`
				Name         string   `json:"name"`
			}
			if err := json.Unmarshal(r.body, &got); r.status != http.StatusOK || err != nil || len(got.FrameOrigins) != 2 || got.Name != "Acme Cloud" {
				t.Fatalf("GET settings: %d %s", r.status, clip(r.body))
			}
			vt := f.viewerToken("adminA", map[string]any{"tenant": "acme"})
			code, body, h := f.page(vt.URL)
			if code != http.StatusOK || !strings.Contains(body, "Acme Cloud") {
				t.Fatalf("branded viewer: %d", code)
			}
			if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors https://app.example.com http://127.0.0.1:8080") {
				t.Fatalf("CSP: %s", csp)
			}
			_, css, _ := f.page("/viewer/theme.css?token=" + url.QueryEscape(vt.Token))
			if !strings.Contains(css, "--brand-accent:#0a7f5a") {
				t.Fatalf("theme: %s", css)
			}
			// globex has no settings: its viewer cannot be framed.
			gt := f.viewerToken("admin", map[string]any{"tenant": "globex"})
			if _, _, h := f.page(gt.URL); !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Fatalf("globex CSP: %s", h.Get("Content-Security-Policy"))
			}
		})
	})
}

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestViewerRateLimit: a viewer link has a rate limit of its own.
func TestViewerRateLimit(t *testing.T) {
	clock := &testClock{t: time.Now()} // still: no tokens come back
	f := newFixture(t, backends[0], func(c *trailserver.Config) { c.Now, c.RateLimit, c.RateBurst = clock.now, 1, 2 })
	vt := f.viewerToken("admin", map[string]any{"tenant": "acme"})
	other := f.viewerToken("admin", map[string]any{"tenant": "acme"})
	for i, want := range []int{http.StatusOK, http.StatusOK, http.StatusTooManyRequests} {
		if code, _, _ := f.page(vt.URL); code != want {
			t.Fatalf("request %d: %d, want %d", i+1, code, want)
		}
	}
	if code, _, _ := f.page(other.URL); code != http.StatusOK {
		t.Fatalf("another link: %d", code)
	}
}

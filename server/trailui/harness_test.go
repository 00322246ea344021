package trailui_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/internal/demo"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailprivacy"
)

// site is a running server with the demo data on a temp SQLite store, keys
// of several scopes, and a few hand-made events.
type site struct {
	t      testing.TB
	store  *trailsqlite.Store
	keys   trailserver.KeyStore
	srv    *trailserver.Server
	ts     *httptest.Server
	data   *demo.Dataset
	now    time.Time
	secret map[string]string // admin (all tenants), reader (all), acme, globex (tenant readers), ingest

	xssEvent    uuid.UUID // acme, description with a <script>
	globexEvent uuid.UUID // a globex event
	acmeSub     uuid.UUID // the newest change of subscription sub_acme
}

const xssDescription = `Renamed project to <script>window.__xss=1;alert(1)</script><img src=x onerror="window.__xss=2">`

func newSite(t testing.TB, clock func() time.Time) *site {
	t.Helper()
	return newSiteN(t, clock, 1500)
}

// newSiteN is newSite with n demo events.
func newSiteN(t testing.TB, clock func() time.Time, n int) *site {
	t.Helper()
	return newSiteWith(t, clock, n, nil)
}

// newSiteWith is newSiteN whose server gets the integrity the func makes
// (it may seal the store first).
func newSiteWith(t testing.TB, clock func() time.Time, n int, integrity func(st *trailsqlite.Store) *trailserver.Integrity) *site {
	return newSiteOpts(t, clock, n, integrity, nil)
}

// newSiteOpts is newSiteWith, with a privacy layer when privacy is set:
// privacy(st) returns it, over st's key table; the demo is seeded through
// it (names and e-mails stored encrypted) and the server reveals reads.
func newSiteOpts(t testing.TB, clock func() time.Time, n int, integrity func(st *trailsqlite.Store) *trailserver.Integrity,
	privacy func(st *trailsqlite.Store) *trailprivacy.Privacy) *site {
	t.Helper()
	ctx := context.Background()
	st, err := trailsqlite.Open(ctx, filepath.Join(t.TempDir(), "trail.db"), &trailsqlite.Config{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ks, err := trailserver.NewSQLKeyStore(ctx, st.DB(), trailserver.DialectSQLite)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	d, err := demo.Generate(demo.Config{Now: now, Events: n})
	if err != nil {
		t.Fatal(err)
	}
	var p *trailprivacy.Privacy
	var seedOpts *demo.SeedOptions
	if privacy != nil {
		p = privacy(st)
		seedOpts = &demo.SeedOptions{Transform: p}
	}
	if _, err := demo.Seed(ctx, st, d, seedOpts); err != nil {
		t.Fatal(err)
	}
	s := &site{t: t, store: st, keys: ks, data: d, now: now, secret: map[string]string{}}
	for _, k := range []struct {
		name, tenant string
		role         trailserver.Role
	}{
		{"admin", "", trailserver.RoleAdmin}, {"reader", "", trailserver.RoleReader},
		{"acme", "acme", trailserver.RoleReader}, {"globex", "globex", trailserver.RoleReader},
		{"ingest", "acme", trailserver.RoleIngest},
	} {
		_, sec, err := trailserver.CreateKey(ctx, ks, trailserver.NewKeyRequest{Tenant: k.tenant, All: k.tenant == "", Role: k.role, Name: k.name + " key"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		s.secret[k.name] = sec
	}
	xss := trail.Event{
		Tenant: "acme", Actor: trail.Actor{Type: trail.ActorUser, ID: "evil", Name: `<b>Mallory</b>`},
		Action: "project.update", Target: trail.Target{Type: "project", ID: "prj_xss", Name: `<i>x</i>`},
		Description: xssDescription,
		Changes:     []trail.Change{trail.Changed("name", "Apollo", `<script>alert(3)</script>`)},
		Metadata:    map[string]any{"note": `</pre><script>alert(4)</script>`},
		OccurredAt:  now.Add(-10 * time.Minute),
	}
	if err := xss.Normalize(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, []trail.Event{xss}); err != nil {
		t.Fatal(err)
	}
	s.xssEvent = xss.ID
	for i := len(d.Events) - 1; i >= 0; i-- {
		ev := d.Events[i]
		if s.globexEvent == uuid.Nil && ev.Tenant == "globex" {
			s.globexEvent = ev.ID
		}
		if s.acmeSub == uuid.Nil && ev.Tenant == "acme" && ev.Target.Type == "subscription" && len(ev.Changes) > 0 {
			s.acmeSub = ev.ID
		}
	}
	if clock == nil {
		clock = time.Now
	}
	cfg := trailserver.Config{Store: st, Keys: ks, RateLimit: -1, Now: clock}
	if p != nil {
		cfg.Transform, cfg.Reveal = p, p
	}
	if integrity != nil {
		cfg.Integrity = integrity(st)
	}
	srv, err := trailserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.srv = srv
	s.ts = httptest.NewServer(srv)
	t.Cleanup(func() { srv.Close(); s.ts.Close() })
	return s
}

func (s *site) url(path string) string { return s.ts.URL + path }

// client is a cookie-keeping HTTP client that does not follow redirects.
type client struct {
	s    *site
	c    *http.Client
	csrf string
}

func (s *site) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{s: s, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *client) get(path string) (int, string, http.Header) {
	c.s.t.Helper()
	resp, err := c.c.Get(c.s.url(path))
	if err != nil {
		c.s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := csrfRE.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	return resp.StatusCode, string(b), resp.Header
}

func (c *client) post(path string, form url.Values) (int, string, http.Header) {
	c.s.t.Helper()
	resp, err := c.c.PostForm(c.s.url(path), form)
	if err != nil {
		c.s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// login signs in with the named key and fails the test unless it works.
func (c *client) login(name string) {
	c.s.t.Helper()
	if code, _, _ := c.get("/ui/login"); code != http.StatusOK {
		c.s.t.Fatalf("GET /ui/login: %d", code)
	}
	code, body, h := c.post("/ui/login", url.Values{"csrf": {c.csrf}, "key": {c.s.secret[name]}, "next": {"/ui/"}})
	if code != http.StatusSeeOther || h.Get("Location") != "/ui/" {
		c.s.t.Fatalf("sign-in as %s: %d %s %.300s", name, code, h.Get("Location"), body)
	}
}

// clockAt is a settable clock for the server and the UI.
type clockAt struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clockAt) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clockAt) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func mustContain(t testing.TB, body string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(body, s) {
			t.Fatalf("page lacks %q:\n%.2000s", s, body)
		}
	}
}

func mustNotContain(t testing.TB, body string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if strings.Contains(body, s) {
			t.Fatalf("page contains %q", s)
		}
	}
}

func mustURL(t testing.TB, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

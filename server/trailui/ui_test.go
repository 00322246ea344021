package trailui_test

import (
	"context"
	"crypto/tls"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailui"
)

func TestSignInSessionCookieAndHeaders(t *testing.T) {
	s := newSite(t, nil)
	c := s.client()
	code, _, h := c.get("/ui/?actor=user:1")
	if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/ui/login?next=") {
		t.Fatalf("signed out: %d %q, want a redirect to the sign-in page", code, h.Get("Location"))
	}
	code, body, h := c.get("/ui/login")
	if code != http.StatusOK {
		t.Fatal(code)
	}
	if h.Get("Content-Security-Policy") != trailui.CSP || !strings.Contains(trailui.CSP, "script-src 'self'") || strings.Contains(trailui.CSP, "unsafe") {
		t.Fatalf("CSP %q", h.Get("Content-Security-Policy"))
	}
	mustContain(t, body, `name="htmx-config"`, `"allowEval":false`, `"includeIndicatorStyles":false`)
	mustNotContain(t, body, "<script>", "style=", "onclick")

	// A wrong key is refused and creates no session.
	code, body, _ = c.post("/ui/login", url.Values{"csrf": {c.csrf}, "key": {"trail_wrongwrongwrongwrongwrong"}})
	if code != http.StatusUnauthorized {
		t.Fatalf("wrong key: %d", code)
	}
	mustContain(t, body, "cannot sign in")
	c.csrf = csrfRE.FindStringSubmatch(body)[1]
	resp, err := c.c.PostForm(s.url("/ui/login"), url.Values{"csrf": {c.csrf}, "key": {s.secret["reader"]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	var sess *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "trail_session" && ck.Value != "" {
			sess = ck
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Secure || sess.Path != "/ui/" {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, not Secure on plain HTTP, Path /ui/", sess)
	}
	code, body, h = c.get("/ui/")
	if code != http.StatusOK {
		t.Fatalf("list: %d", code)
	}
	if h.Get("Cache-Control") != "no-store" || h.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("headers %v", h)
	}
	mustContain(t, body, `id="events"`, "reader key", `id="older"`)

	// The cookie is Secure over TLS.
	req := httptest.NewRequest("GET", "https://trail.example/ui/login", nil)
	req.TLS = &tls.ConnectionState{}
	rec := httptest.NewRecorder()
	s.srv.ServeHTTP(rec, req)
	if ck := rec.Result().Cookies(); len(ck) == 0 || !ck[0].Secure || !ck[0].HttpOnly {
		t.Fatalf("TLS cookies %+v: want Secure", ck)
	}
}

func TestKeysThatCannotSignIn(t *testing.T) {
	s := newSite(t, nil)
	for _, secret := range []string{s.secret["ingest"], "", "short", strings.Repeat("x", 300)} {
		c := s.client()
		c.get("/ui/login")
		code, _, h := c.post("/ui/login", url.Values{"csrf": {c.csrf}, "key": {secret}})
		if code != http.StatusUnauthorized || h.Get("Set-Cookie") != "" && strings.Contains(h.Get("Set-Cookie"), "trail_session=") {
			t.Fatalf("key %.10q: %d, want 401 and no session", secret, code)
		}
	}
}

func TestCSRF(t *testing.T) {
	s := newSite(t, nil)
	c := s.client()
	// Sign-in without the double-submit token, or with a wrong one.
	c.get("/ui/login")
	for _, form := range []url.Values{
		{"key": {s.secret["admin"]}},
		{"key": {s.secret["admin"]}, "csrf": {wrongToken(c.csrf)}},
	} {
		if code, _, _ := c.post("/ui/login", form); code != http.StatusForbidden {
			t.Fatalf("sign-in with csrf %q: %d, want 403", form.Get("csrf"), code)
		}
	}
	// A fresh client has no CSRF cookie at all.
	if code, _, _ := s.client().post("/ui/login", url.Values{"key": {s.secret["admin"]}, "csrf": {c.csrf}}); code != http.StatusForbidden {
		t.Fatalf("sign-in without the cookie: %d", code)
	}
	// A cross-origin POST with the right token is refused too.
	req, _ := http.NewRequest("POST", s.url("/ui/login"), strings.NewReader(url.Values{"key": {s.secret["admin"]}, "csrf": {c.csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	resp, err := c.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin sign-in: %d", resp.StatusCode)
	}

	c.login("admin")
	c.get("/ui/")
	if code, _, _ := c.post("/ui/logout", url.Values{"csrf": {"nope"}}); code != http.StatusForbidden {
		t.Fatalf("sign-out with a wrong token: %d, want 403", code)
	}
	if code, _, _ := c.get("/ui/"); code != http.StatusOK {
		t.Fatalf("the refused sign-out ended the session: %d", code)
	}
	if code, _, _ := c.post("/ui/logout", url.Values{"csrf": {c.csrf}}); code != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", code)
	}
	if code, _, _ := c.get("/ui/"); code != http.StatusSeeOther {
		t.Fatalf("after sign-out: %d, want a redirect", code)
	}
}

func TestSessionExpiryAndRevocation(t *testing.T) {
	clk := &clockAt{t: time.Now()}
	s := newSite(t, clk.now)
	c := s.client()
	c.login("admin")
	if code, _, _ := c.get("/ui/"); code != http.StatusOK {
		t.Fatal(code)
	}
	clk.add(trailui.DefaultSessionTTL - time.Minute)
	if code, _, _ := c.get("/ui/"); code != http.StatusOK {
		t.Fatalf("before expiry: %d", code)
	}
	clk.add(2 * time.Minute)
	if code, _, h := c.get("/ui/"); code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/ui/login") {
		t.Fatalf("after expiry: %d %q, want the sign-in page", code, h.Get("Location"))
	}

	// Revoking the key ends its live sessions at once.
	c2 := s.client()
	c2.login("reader")
	keys, err := s.keys.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Name == "reader key" {
			if err := s.keys.Revoke(context.Background(), k.ID, clk.now().Add(-time.Second)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if code, _, _ := c2.get("/ui/"); code != http.StatusSeeOther {
		t.Fatalf("revoked key's session: %d, want a redirect to sign in", code)
	}
}

func TestEscaping(t *testing.T) {
	s := newSite(t, nil)
	c := s.client()
	c.login("acme")
	for _, path := range []string{"/ui/events/" + s.xssEvent.String(), "/ui/?action=project.update", "/ui/objects/project/prj_xss", "/ui/actors/user:evil"} {
		code, body, _ := c.get(path)
		if code != http.StatusOK {
			t.Fatalf("%s: %d", path, code)
		}
		mustNotContain(t, body, "<script>window", "<script>alert", "<img src=x", "<b>Mallory", "</pre><script>")
		mustContain(t, body, "&lt;script&gt;")
		if !strings.Contains(body, "Mallory") {
			t.Fatalf("%s: the actor is missing", path)
		}
	}
	// Reflected input is escaped too.
	_, body, _ := c.get("/ui/?text=" + url.QueryEscape(`"><script>alert(5)</script>`))
	mustNotContain(t, body, `"><script>alert(5)`)
}

func TestTenantViewer(t *testing.T) {
	s := newSite(t, nil)
	admin := s.client()
	admin.login("admin")
	_, body, _ := admin.get("/ui/")
	mustContain(t, body, `name="tenant"`, `id="tenant-list"`, `<option value="globex">`)

	c := s.client()
	c.login("acme")
	for _, path := range []string{"/ui/", "/ui/?tenant=globex", "/ui/tail", "/ui/actors/user:1"} {
		code, body, _ := c.get(path)
		if code != http.StatusOK {
			t.Fatalf("%s: %d", path, code)
		}
		mustNotContain(t, body, `name="tenant"`, "tenant-list", ">globex<", "Globex")
	}
	// The list holds acme's events only, whatever the URL says.
	_, body, _ = c.get("/ui/export?format=jsonl&tenant=globex")
	n := 0
	for line := range strings.Lines(body) {
		var ev trail.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("export line %q: %v", line, err)
		}
		if ev.Tenant != "acme" {
			t.Fatalf("a tenant viewer's export holds a %q event", ev.Tenant)
		}
		n++
	}
	if n < 100 {
		t.Fatalf("export: %d events", n)
	}
	// Another tenant's event is a 404, exactly like a missing one.
	code, body, _ := c.get("/ui/events/" + s.globexEvent.String())
	if code != http.StatusNotFound {
		t.Fatalf("globex event for an acme viewer: %d", code)
	}
	code2, body2, _ := c.get("/ui/events/0190a5c8-7d3e-7cc1-8a55-2f0e4d7e1b2a")
	if code2 != http.StatusNotFound || strings.Contains(body, "globex") || strings.Contains(body2, "globex") {
		t.Fatalf("missing event: %d", code2)
	}
	// Globex's subscription history is empty for acme.
	_, body, _ = c.get("/ui/objects/subscription/sub_globex?tenant=globex")
	mustContain(t, body, `id="no-events"`)
	// The admin sees the globex event.
	if code, _, _ := admin.get("/ui/events/" + s.globexEvent.String()); code != http.StatusOK {
		t.Fatalf("admin: %d", code)
	}
}

func TestFiltersAndPaging(t *testing.T) {
	s := newSite(t, nil)
	c := s.client()
	c.login("admin")
	_, body, _ := c.get("/ui/?tenant=globex&action=subscription.*")
	mustContain(t, body, "subscription.")
	rows := strings.Count(body, "<tr data-id=")
	if rows == 0 {
		t.Fatal("no subscription rows for globex")
	}
	mustNotContain(t, body, ">acme<")
	// A bad filter shows the form again with the message.
	code, body, _ := c.get("/ui/?since=yesterday-ish")
	if code != http.StatusBadRequest {
		t.Fatalf("bad since: %d", code)
	}
	mustContain(t, body, `id="filter-error"`, "since", `value="yesterday-ish"`)
	// Dates in the UI's forms: a date-only until includes that day.
	day := s.now.Add(-40 * 24 * time.Hour).Format("2006-01-02")
	_, body, _ = c.get("/ui/?tenant=acme&since=" + day + "&until=" + day)
	for _, m := range strings.Split(body, `<time datetime="`)[1:] {
		if !strings.HasPrefix(m, day) {
			t.Fatalf("an event outside %s: %.40s", day, m)
		}
	}
	// Keyset paging: older, then newer returns to the first page.
	_, first, _ := c.get("/ui/?tenant=acme")
	older := hrefOf(t, first, "older")
	_, second, _ := c.get(older)
	if firstRow(first) == firstRow(second) {
		t.Fatal("the older page starts like the first")
	}
	_, third, _ := c.get(hrefOf(t, second, "older"))
	_, back, _ := c.get(hrefOf(t, third, "newer"))
	if firstRow(back) != firstRow(second) {
		t.Fatal("newer from page 3 is not page 2")
	}
	_, back, _ = c.get(hrefOf(t, back, "newer"))
	// Page 1 again (with the audit.read events of these views on top).
	if !strings.Contains(back, firstRow(first)) {
		t.Fatal("newer from page 2 is not page 1")
	}
	mustNotContain(t, back, `id="newer"`)
}

func hrefOf(t testing.TB, body, id string) string {
	if t != nil {
		t.Helper()
	}
	i := strings.Index(body, `href="`)
	for i >= 0 {
		rest := body[i+6:]
		end := strings.IndexByte(rest, '"')
		if strings.HasPrefix(rest[end:], `" id="`+id+`"`) {
			href := strings.ReplaceAll(rest[:end], "&amp;", "&")
			return href
		}
		j := strings.Index(rest, `href="`)
		if j < 0 {
			break
		}
		i += 6 + j
	}
	if t != nil {
		t.Fatalf("no link #%s", id)
	}
	panic("no link #" + id)
}

func firstRow(body string) string {
	i := strings.Index(body, "<tr data-id=")
	if i < 0 {
		return ""
	}
	return body[i : i+60]
}

func TestDetailHistoryAndAudit(t *testing.T) {
	s := newSite(t, nil)
	c := s.client()
	c.login("acme")
	code, body, _ := c.get("/ui/events/" + s.acmeSub.String())
	if code != http.StatusOK {
		t.Fatal(code)
	}
	mustContain(t, body, `id="changes"`, `<table class="diff">`, `id="history-link"`, "pending", "Raw JSON")
	code, body, _ = c.get("/ui/objects/subscription/sub_acme?tenant=acme")
	if code != http.StatusOK {
		t.Fatal(code)
	}
	mustContain(t, body, `id="timeline"`, `id="state-table"`, "plan")
	// Every UI read is an audit.read by the viewer's key.
	p, err := s.store.Query(context.Background(), trail.Query{Tenant: "acme", Action: "audit.read", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var sawEvent, sawHistory bool
	for _, ev := range p.Events {
		if ev.Target.Type == "event" && ev.Target.ID == s.acmeSub.String() && ev.Metadata["endpoint"] == "GET /ui/events/"+s.acmeSub.String() {
			sawEvent = true
		}
		if ev.Metadata["object"] == "subscription:sub_acme" {
			sawHistory = true
		}
	}
	if !sawEvent || !sawHistory {
		t.Fatalf("audit.read of the detail %v, of the history %v", sawEvent, sawHistory)
	}
}

func TestExportCSV(t *testing.T) {
	s := newSite(t, nil)
	c := s.client()
	c.login("admin")
	code, body, h := c.get("/ui/export?format=csv&tenant=globex&action=subscription.*")
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") {
		t.Fatalf("%d %s", code, h.Get("Content-Type"))
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 2 {
		t.Fatalf("%d records", len(recs))
	}
	for _, r := range recs[1:] {
		if r[3] != "globex" || !strings.HasPrefix(r[9], "subscription.") {
			t.Fatalf("row %v", r)
		}
	}
	// Signed out, the export is refused.
	if code, _, _ := s.client().get("/ui/export?format=csv"); code != http.StatusUnauthorized {
		t.Fatalf("signed-out export: %d", code)
	}
}

func TestNotFoundPages(t *testing.T) {
	s := newSite(t, nil)
	c := s.client()
	c.login("admin")
	for _, p := range []string{"/ui/events/nope", "/ui/nope"} {
		if code, _, _ := c.get(p); code != http.StatusNotFound {
			t.Fatalf("%s: %d", p, code)
		}
	}
	if code, _, _ := c.get("/ui/static/htmx.min.js"); code != http.StatusOK {
		t.Fatal("htmx is not served")
	}
}

func TestActorPageOddIDs(t *testing.T) {
	s := newSite(t, nil)
	c := s.client()
	c.login("admin")
	code, body, _ := c.get("/ui/actors/" + url.PathEscape("user:a?b#c/d"))
	if code != http.StatusOK {
		t.Fatalf("%d", code)
	}
	mustContain(t, body, `action="/ui/actors/user:a%3Fb%23c%2Fd"`, "user:a?b#c/d")
}

// TestActorLinks: links built from an event carry its tenant, so the common
// click asks for the actor in one tenant; without it an all-tenant viewer
// gets the actor in every tenant.
func TestActorLinks(t *testing.T) {
	s := newSite(t, nil)
	c := s.client()
	c.login("admin")
	link := `href="/ui/actors/user:evil?tenant=acme"`
	for _, path := range []string{"/ui/events/" + s.xssEvent.String(), "/ui/?tenant=acme&actor=user:evil", "/ui/objects/project/prj_xss?tenant=acme"} {
		code, body, _ := c.get(path)
		if code != http.StatusOK {
			t.Fatalf("%s: %d", path, code)
		}
		mustContain(t, body, link)
	}
	short := s.xssEvent.String()[24:]
	for path, want := range map[string]string{
		"/ui/actors/user:evil?tenant=acme": `in tenant <span class="mono">acme</span>`,
		"/ui/actors/user:evil":             "across targets and tenants",
	} {
		code, body, _ := c.get(path)
		if code != http.StatusOK {
			t.Fatalf("%s: %d", path, code)
		}
		mustContain(t, body, want, short)
	}
	// Another tenant: the same actor has no events there.
	_, body, _ := c.get("/ui/actors/user:evil?tenant=globex")
	if strings.Contains(body, short) {
		t.Fatalf("user:evil in globex lists acme's event")
	}
}

// wrongToken returns a token one character off tok, never tok itself.
func wrongToken(tok string) string {
	first := "x"
	if strings.HasPrefix(tok, "x") {
		first = "y"
	}
	return first + tok[1:]
}

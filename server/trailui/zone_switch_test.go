package trailui_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestZoneSwitch: the header's switch (POST /ui/zone) keeps the choice in
// the trail_tz cookie app.js reads (path /, not HttpOnly) and goes back to
// the page with its typed times in the zone chosen; it takes a page of the
// UI only, the session's CSRF token, and utc or local.
func TestZoneSwitch(t *testing.T) {
	s := newSite(t, nil)
	c := s.client()
	c.login("admin")
	c.get("/ui/") // the session's CSRF token
	c.c.Jar.SetCookies(mustURL(t, s.url("/")), []*http.Cookie{{Name: "trail_browser_tz", Value: "America%2FLos_Angeles", Path: "/"}})

	post := func(form url.Values) (int, string, *http.Cookie) {
		t.Helper()
		code, _, h := c.post("/ui/zone", form)
		var tz *http.Cookie
		for _, ck := range (&http.Response{Header: h}).Cookies() {
			if ck.Name == "trail_tz" {
				tz = ck
			}
		}
		return code, h.Get("Location"), tz
	}
	code, loc, tz := post(url.Values{"csrf": {c.csrf}, "tz": {"utc"}, "next": {"/ui/?tenant=acme&since=2026-12-02&until=2026-12-02"}})
	if code != http.StatusSeeOther || loc != "/ui/?since=2026-12-02T08%3A00&tenant=acme&until=2026-12-03T08%3A00" {
		t.Fatalf("to UTC: %d %s", code, loc)
	}
	if tz == nil || tz.Value != "utc" || tz.Path != "/" || tz.HttpOnly || tz.MaxAge < 86400 {
		t.Fatalf("cookie %+v", tz)
	}
	// Back to the browser's zone: the page now shows UTC.
	code, loc, tz = post(url.Values{"csrf": {c.csrf}, "tz": {"local"}, "next": {"/ui/objects/subscription/sub_acme?tenant=acme&at=2026-12-03T01:30"}})
	if code != http.StatusSeeOther || loc != "/ui/objects/subscription/sub_acme?at=2026-12-02T17%3A30&tenant=acme" || tz == nil || tz.Value != "local" {
		t.Fatalf("to local: %d %s %+v", code, loc, tz)
	}
	// Without next, the Referer; a next outside the UI goes home.
	code, loc, _ = post(url.Values{"csrf": {c.csrf}, "tz": {"utc"}, "next": {"https://evil.example/ui/"}})
	if code != http.StatusSeeOther || loc != "/ui/" {
		t.Fatalf("foreign next: %d %s", code, loc)
	}
	form := url.Values{"csrf": {c.csrf}, "tz": {"local"}}.Encode()
	req, _ := http.NewRequest("POST", s.url("/ui/zone"), strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Referer", s.url("/ui/access?since=2026-12-02T08:00"))
	resp, err := c.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/ui/access?since=2026-12-02T00%3A00" {
		t.Fatalf("from the Referer: %d %s", resp.StatusCode, loc)
	}
	// Refused: another value, no CSRF token.
	if code, _, tz := post(url.Values{"csrf": {c.csrf}, "tz": {"Europe/Paris"}, "next": {"/ui/"}}); code != http.StatusBadRequest || tz != nil {
		t.Fatalf("tz=Europe/Paris: %d %+v", code, tz)
	}
	if code, _, tz := post(url.Values{"tz": {"utc"}, "next": {"/ui/"}}); code != http.StatusForbidden || tz != nil {
		t.Fatalf("no CSRF token: %d %+v", code, tz)
	}
}

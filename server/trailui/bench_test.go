package trailui_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// benchPages measures the server time of rendering UI pages over the demo
// data on SQLite: the handler alone (no network), including the store query,
// the audit.read write every page makes, and the template. The 10 M events on
// PostgreSQL figure is measured by `trail bench`, not here.
func BenchmarkPages(b *testing.B) {
	s := newSiteN(b, nil, 50_000)
	c := s.client()
	c.login("admin")
	u := s.ts.URL
	var cookie string
	for _, ck := range c.c.Jar.Cookies(mustURL(b, u+"/ui/")) {
		if ck.Name == "trail_session" {
			cookie = ck.Name + "=" + ck.Value
		}
	}
	if cookie == "" {
		b.Fatal("no session")
	}
	for _, p := range []struct{ name, path string }{
		{"list", "/ui/"},
		{"list-filtered", "/ui/?tenant=acme&action=subscription.*&since=30d"},
		{"list-page-3", ""}, // filled below
		{"detail", "/ui/events/" + s.acmeSub.String()},
		{"history", "/ui/objects/subscription/sub_acme?tenant=acme"},
		// The API's answers to the same reads, for the UI's overhead.
		{"api-list", "/v1/events?limit=50"},
		{"api-detail", "/v1/events/" + s.acmeSub.String()},
		{"api-history", "/v1/objects/subscription/sub_acme/history?tenant=acme&limit=50"},
	} {
		if p.name == "list-page-3" {
			_, body, _ := c.get("/ui/?tenant=acme")
			_, body, _ = c.get(hrefOf(nil, body, "older"))
			p.path = hrefOf(nil, body, "older")
		}
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest("GET", p.path, nil)
				req.Header.Set("Cookie", cookie)
				api := strings.HasPrefix(p.path, "/v1/")
				if api {
					req.Header.Set("Authorization", "Bearer "+s.secret["admin"])
				}
				rec := httptest.NewRecorder()
				s.srv.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK || !api && !strings.Contains(rec.Body.String(), "</html>") {
					b.Fatalf("%s: %d", p.path, rec.Code)
				}
			}
		})
	}
}

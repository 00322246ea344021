package trailui_test

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestSignInRedirectStaysInUI: the page a sign-in returns to (next) is a
// clean local path under /ui/, whatever the sign-in form was given: dot
// segments, encoded or not, other hosts, backslashes, other prefixes all
// land on /ui/, and a path with dot segments inside the UI is cleaned.
func TestSignInRedirectStaysInUI(t *testing.T) {
	s := newSiteN(t, nil, 10)
	c := s.client()
	for _, tc := range []struct{ next, want string }{
		{"/ui/../../evil", "/ui/"},
		{"/ui/../evil/ui/", "/ui/"},
		{"/ui/%2e%2e/%2e%2e/evil", "/ui/"},
		{"/ui/.%2E/evil", "/ui/"},
		{"/ui/..%2f..%2fevil", "/ui/"},
		{"/ui%2f..%2fevil", "/ui/"},
		{"/ui%2fevents", "/ui/events"}, // decodes under the UI: re-encoded so the browser agrees
		{"/ui/../uiadmin/", "/ui/"},
		{"/uix/", "/ui/"},
		{"//evil.example/ui/", "/ui/"},
		{"/\\evil.example/ui/", "/ui/"},
		{"/ui/\\..\\..\\evil", "/ui/"},
		{"https://evil.example/ui/", "/ui/"},
		{"javascript:alert(1)//ui/", "/ui/"},
		{"ui/events", "/ui/"},
		{"/ui/\t/evil", "/ui/"},
		{"", "/ui/"},
		// Inside the UI: kept, or cleaned.
		{"/ui/./events/../?tenant=acme", "/ui/?tenant=acme"},
		{"/ui//actors/user:1", "/ui/actors/user:1"},
		{"/ui/actors/user:1?tenant=acme&since=30d", "/ui/actors/user:1?tenant=acme&since=30d"},
		{"/ui/objects/file/a%2Fb", "/ui/objects/file/a%2Fb"},
		{"/ui", "/ui/"},
	} {
		if code, _, _ := c.get("/ui/login"); code != http.StatusOK {
			t.Fatalf("GET /ui/login: %d", code)
		}
		code, body, h := c.post("/ui/login", url.Values{"csrf": {c.csrf}, "key": {s.secret["reader"]}, "next": {tc.next}})
		if code != http.StatusSeeOther || h.Get("Location") != tc.want {
			t.Errorf("next=%q: %d, Location %q; want %q %.200s", tc.next, code, h.Get("Location"), tc.want, body)
			continue
		}
		// Where a browser goes from the sign-in page.
		to := mustURL(t, s.url("/ui/login")).ResolveReference(mustURL(t, h.Get("Location")))
		if to.Host != mustURL(t, s.ts.URL).Host || !strings.HasPrefix(to.EscapedPath(), "/ui/") {
			t.Errorf("next=%q leads to %v", tc.next, to)
		}
	}

	// The sign-in page carries only the cleaned next in its form.
	_, body, _ := s.client().get("/ui/login?next=" + url.QueryEscape("/ui/../../evil"))
	if !strings.Contains(body, `name="next" value="/ui/"`) || strings.Contains(html.UnescapeString(body), "evil") {
		t.Errorf("sign-in page for a hostile next: %.2000s", body)
	}
}

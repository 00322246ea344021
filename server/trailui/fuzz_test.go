package trailui

import (
	"net/url"
	"path"
	"strings"
	"testing"
)

// FuzzSafeNext: the post-sign-in redirect never leaves the UI, carries no
// dot segment for the browser to resolve, and is kept as it is once safe.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/ui/", "/ui/events/x", "//evil.example", "/ui/\\evil", "https://evil.example/ui/", "/ui/\r\nLocation: x", "/uix",
		"/ui/../../evil", "/ui/%2e%2e/%2e%2e/evil", "/ui/..%2f..%2fevil", "/ui/./events/x?tenant=acme", "/ui//evil.example", "/ui/objects/file/a%2Fb", "/ui%2f", "/ui%2F..%2Fevil"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://trail.example/ui/login")
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext("/ui", next)
		if !strings.HasPrefix(got, "/ui/") || strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\\r\n") {
			t.Fatalf("safeNext(%q) = %q", next, got)
		}
		u, err := url.Parse(got)
		if err != nil || u.Scheme != "" || u.Host != "" {
			t.Fatalf("safeNext(%q) = %q: %v", next, got, err)
		}
		if c := path.Clean(u.Path) + "/"; c != u.Path && c != u.Path+"/" {
			t.Fatalf("safeNext(%q) = %q: the path is not clean", next, got)
		}
		// Where a browser goes: same host, under the UI.
		if to := base.ResolveReference(u); to.Host != "trail.example" || !strings.HasPrefix(to.Path, "/ui/") {
			t.Fatalf("safeNext(%q) = %q leads to %v", next, got, to)
		}
		if again := safeNext("/ui", got); again != got {
			t.Fatalf("safeNext(%q) = %q, but safeNext(%q) = %q", next, got, got, again)
		}
	})
}

// FuzzFilterURL: a filter survives its own links (the shareable URL and the
// paging links), whatever its values.
func FuzzFilterURL(f *testing.F) {
	f.Add("acme", "user:1", "subscription.*", "subscription:sub_1", "2026-01-02", "30d", "success", "plan & <b>", "AQ", "-,AQ")
	f.Fuzz(func(t *testing.T, tenant, actor, action, target, since, until, outcome, text, cursor, prev string) {
		q := url.Values{}
		for k, v := range map[string]string{"tenant": tenant, "actor": actor, "action": action, "target": target,
			"since": since, "until": until, "outcome": outcome, "text": text, "cursor": cursor, "prev": prev} {
			q.Set(k, v)
		}
		f1 := parseFilter(q)
		u, err := url.Parse(f1.URL("/ui/"))
		if err != nil {
			t.Fatal(err)
		}
		f2 := parseFilter(u.Query())
		if f1.Values().Encode() != f2.Values().Encode() {
			t.Fatalf("round trip: %v != %v", f1.Values(), f2.Values())
		}
		if f1.Cursor != "" {
			back, err := url.Parse(f1.NewerURL("/ui/"))
			if err != nil || !strings.HasPrefix(back.Path, "/ui/") {
				t.Fatalf("newer link %v %v", back, err)
			}
			if parseFilter(back.Query()).Values().Encode() != f1.Values().Encode() {
				t.Fatal("the newer link lost the filter")
			}
		}
		older, err := url.Parse(f1.OlderURL("/ui/", "AQ"))
		if err != nil || parseFilter(older.Query()).Values().Encode() != f1.Values().Encode() {
			t.Fatalf("the older link lost the filter: %v", err)
		}
	})
}

package trailui

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzSafeNext: the post-sign-in redirect never leaves the UI.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/ui/", "/ui/events/x", "//evil.example", "/ui/\\evil", "https://evil.example/ui/", "/ui/\r\nLocation: x", "/uix"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext("/ui", next)
		if !strings.HasPrefix(got, "/ui/") || strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\\r\n") {
			t.Fatalf("safeNext(%q) = %q", next, got)
		}
		if got != "/ui/" && got != next {
			t.Fatalf("safeNext(%q) rewrote to %q", next, got)
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

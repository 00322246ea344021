package trailui

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestRezoneURL: the zone switch keeps a page's instants: dates and times
// typed without a zone are rewritten from the zone shown into the zone
// chosen; RFC 3339, durations, other parameters and text stay.
func TestRezoneURL(t *testing.T) {
	la, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in       string
		from, to *time.Location
		want     string
	}{
		{"/ui/?since=2026-12-02T00:00&tenant=acme&until=2026-12-03T00:00", la, time.UTC, "/ui/?since=2026-12-02T08%3A00&tenant=acme&until=2026-12-03T08%3A00"},
		{"/ui/?since=2026-12-02T08:00&until=2026-12-03T08:00", time.UTC, la, "/ui/?since=2026-12-02T00%3A00&until=2026-12-03T00%3A00"},
		// A date: midnight; as an until bound, the end of that day.
		{"/ui/?since=2026-12-02&until=2026-12-02", la, time.UTC, "/ui/?since=2026-12-02T08%3A00&until=2026-12-03T08%3A00"},
		{"/ui/?since=2026-07-02+17:30:05", la, time.UTC, "/ui/?since=2026-07-03T00%3A30%3A05"}, // PDT, seconds kept
		{"/ui/objects/subscription/sub_acme?at=2026-12-02T17:30&tenant=acme", la, time.UTC, "/ui/objects/subscription/sub_acme?at=2026-12-03T01%3A30&tenant=acme"},
		// Unchanged: instants in every zone, nothing zoned, junk.
		{"/ui/?since=7d&range=7d&tenant=acme", la, time.UTC, "/ui/?since=7d&range=7d&tenant=acme"},
		{"/ui/?since=2026-12-02T00:00:00Z", la, time.UTC, "/ui/?since=2026-12-02T00:00:00Z"},
		{"/ui/?text=2026-12-02", la, time.UTC, "/ui/?text=2026-12-02"},
		{"/ui/?since=last+tuesday", la, time.UTC, "/ui/?since=last+tuesday"},
		{"/ui/tail", la, time.UTC, "/ui/tail"},
		// 01:30 comes twice in Los Angeles on 2026-11-01: the second one
		// (PST) has no wall time of its own and stays an instant.
		{"/ui/?since=2026-11-01T09:30", time.UTC, la, "/ui/?since=2026-11-01T09%3A30%3A00Z"},
		{"/ui/?since=2026-11-01T08:30", time.UTC, la, "/ui/?since=2026-11-01T01%3A30"},
	} {
		got := rezoneURL(c.in, c.from, c.to)
		if got != c.want {
			t.Errorf("rezoneURL(%s, %s → %s) = %s, want %s", c.in, c.from, c.to, got, c.want)
		}
	}
}

// FuzzRezoneURL: whatever a URL holds, a bound the switch rewrites names
// the same instant in the new zone as it did in the old one.
func FuzzRezoneURL(f *testing.F) {
	for _, s := range []string{"2026-12-02", "2026-12-02T00:00", "2026-03-08T02:30", "2026-11-01 01:30:00", "7d", "2026-12-02T00:00:00Z", "x", "0000-01-01 ", "0000-01-01", "9999-12-31T23:00", "2020-11-01 9:00"} {
		f.Add(s, true)
	}
	la, _ := time.LoadLocation("America/Los_Angeles")
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	f.Fuzz(func(t *testing.T, v string, until bool) {
		k := "since"
		if until {
			k = "until"
		}
		for _, z := range [][2]*time.Location{{la, time.UTC}, {time.UTC, la}, {la, tokyo}} {
			next := "/ui/?" + url.Values{k: {v}}.Encode()
			got := rezoneURL(next, z[0], z[1])
			if got == next {
				continue
			}
			u, err := url.Parse(got)
			if err != nil {
				t.Fatalf("rezoneURL(%q) = %q: %v", next, got, err)
			}
			before, e1 := uiTime(strings.TrimSpace(v), until, z[0]) // as the filter reads it
			after, e2 := uiTime(u.Query().Get(k), until, z[1])
			if e1 != nil || e2 != nil || before != after {
				t.Fatalf("%s=%q in %s is %s; rewritten %q in %s is %s", k, v, z[0], before, u.Query().Get(k), z[1], after)
			}
		}
	})
}

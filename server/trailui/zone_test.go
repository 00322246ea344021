package trailui

import (
	"net/http"
	"testing"
	"time"
)

// TestUITimeInZone: dates and times typed in the UI are read in the zone
// the page shows; RFC 3339 and durations pass through to the API.
func TestUITimeInZone(t *testing.T) {
	la, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in    string
		until bool
		zone  *time.Location
		want  string
	}{
		{"2026-12-02", false, la, "2026-12-02T08:00:00Z"},
		{"2026-12-02", true, la, "2026-12-03T08:00:00Z"},
		{"2026-12-02T00:00", false, la, "2026-12-02T08:00:00Z"},
		{"2026-12-02T17:30:05", false, la, "2026-12-03T01:30:05Z"},
		{"2026-07-02 17:30", false, la, "2026-07-03T00:30:00Z"}, // PDT
		{"2026-12-02", false, time.UTC, "2026-12-02T00:00:00Z"},
		{"2026-12-02T00:00", false, nil, "2026-12-02T00:00:00Z"},
		{"2026-12-02T00:00:00-08:00", false, time.UTC, "2026-12-02T00:00:00-08:00"},
		{"7d", false, la, "7d"},
	} {
		got, e := uiTime(c.in, c.until, c.zone)
		if e != nil || got != c.want {
			t.Errorf("uiTime(%q, %v, %v) = %q, %v; want %q", c.in, c.until, c.zone, got, e, c.want)
		}
	}
	now := time.Date(2026, 12, 7, 16, 0, 0, 0, time.UTC)
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"2026-12-02T00:00", "2026-12-02T00:00"},
		{"2026-12-02T00:00:07", "2026-12-02T00:00:07"},
		{"2026-12-02T08:00:00Z", "2026-12-02T00:00"},
		{"7d", "2026-11-30T08:00"},
		{"last tuesday", "last tuesday"},
	} {
		if got := InputValue(c.in, false, la, now); got != c.want {
			t.Errorf("InputValue(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestZoneOf(t *testing.T) {
	for _, c := range []struct {
		cookies map[string]string
		want    string
		utc     bool
	}{
		{nil, "UTC", false},
		{map[string]string{browserZoneCookie: "America%2FLos_Angeles"}, "America/Los_Angeles", false},
		{map[string]string{browserZoneCookie: "America%2FLos_Angeles", zoneCookie: "utc"}, "UTC", true},
		{map[string]string{browserZoneCookie: "America%2FLos_Angeles", zoneCookie: "local"}, "America/Los_Angeles", false},
		{map[string]string{browserZoneCookie: "Not%2FA_Zone"}, "UTC", false},
		{map[string]string{browserZoneCookie: "..%2F..%2Fetc%2Fpasswd"}, "UTC", false},
		{map[string]string{browserZoneCookie: "Local"}, "UTC", false},
	} {
		r, _ := http.NewRequest("GET", "/ui/", nil)
		for k, v := range c.cookies {
			r.AddCookie(&http.Cookie{Name: k, Value: v})
		}
		loc, utc := zoneOf(r)
		if loc.String() != c.want || utc != c.utc {
			t.Errorf("%v: zone %s, utc %v; want %s, %v", c.cookies, loc, utc, c.want, c.utc)
		}
	}
}

func FuzzUITime(f *testing.F) {
	for _, s := range []string{"2026-12-02", "2026-12-02T00:00", "7d", "2026-12-02T00:00:00Z", "2026-13-40"} {
		f.Add(s, true)
	}
	la, _ := time.LoadLocation("America/Los_Angeles")
	now := time.Date(2026, 12, 7, 16, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string, until bool) {
		out, e := uiTime(s, until, la)
		if e != nil {
			return
		}
		// A form the UI reads becomes RFC 3339 in UTC; anything else goes
		// to the API unchanged, which checks it.
		if ts, err := time.Parse(time.RFC3339, out); err == nil && out != s && ts.Location() != time.UTC {
			t.Fatalf("uiTime(%q) = %q, not UTC", s, out)
		}
		_ = InputValue(s, until, la, now)
	})
}

package trailcli

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseRef(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, typ, id string
		ok          bool
	}{
		{"user:42", "user", "42", true},
		{"subscription:sub_acme", "subscription", "sub_acme", true},
		{"order:2026:17", "order", "2026:17", true},
		{"public.orders:9", "public.orders", "9", true},
		{"system", "system", "", true},
		{"user:", "", "", false},
		{":42", "", "", false},
		{"", "", "", false},
		{"User:42", "", "", false},
		{"9user:1", "", "", false},
		{"user:4\n2", "", "", false},
		{"user:\x00", "", "", false},
		{"us\xffer:1", "", "", false},
		{"user:" + strings.Repeat("x", 300), "", "", false},
		{strings.Repeat("a", 65) + ":1", "", "", false},
	} {
		typ, id, err := ParseRef(tc.in)
		if (err == nil) != tc.ok || typ != tc.typ || id != tc.id {
			t.Errorf("ParseRef(%q) = %q, %q, %v; want %q, %q, ok=%v", tc.in, typ, id, err, tc.typ, tc.id, tc.ok)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\n\x00") {
			t.Errorf("ParseRef(%q): error is not one clean line: %q", tc.in, err)
		}
	}
}

func TestParseActorAndTarget(t *testing.T) {
	t.Parallel()
	if typ, id, err := ParseActor("service:billing"); err != nil || typ != "service" || id != "billing" {
		t.Errorf("ParseActor(service:billing) = %q %q %v", typ, id, err)
	}
	if typ, id, err := ParseActor("system"); err != nil || typ != "system" || id != "" {
		t.Errorf("ParseActor(system) = %q %q %v", typ, id, err)
	}
	for _, bad := range []string{"robot:1", "tenant:acme", "user:"} {
		if _, _, err := ParseActor(bad); err == nil {
			t.Errorf("ParseActor(%q) accepted", bad)
		}
	}
	if _, _, err := ParseTarget("subscription"); err == nil {
		t.Error("ParseTarget without id accepted")
	}
	if typ, id, err := ParseTarget("invoice:inv_1"); err != nil || typ != "invoice" || id != "inv_1" {
		t.Errorf("ParseTarget(invoice:inv_1) = %q %q %v", typ, id, err)
	}
}

func TestParseTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	paris := time.FixedZone("CET", 3600)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"now", now},
		{"30d", now.Add(-30 * 24 * time.Hour)},
		{"12h", now.Add(-12 * time.Hour)},
		{"90m", now.Add(-90 * time.Minute)},
		{"45s", now.Add(-45 * time.Second)},
		{"2w", now.Add(-14 * 24 * time.Hour)},
		{"1d12h", now.Add(-36 * time.Hour)},
		{"0d", now},
		{"2026-01-02T03:04:05Z", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"2026-01-02T03:04:05.123456+02:00", time.Date(2026, 1, 2, 1, 4, 5, 123456000, time.UTC)},
		{"2026-01-02", time.Date(2026, 1, 2, 0, 0, 0, 0, paris)},
		{"2026-01-02 15:04", time.Date(2026, 1, 2, 15, 4, 0, 0, paris)},
		{"2026-01-02T15:04:05", time.Date(2026, 1, 2, 15, 4, 5, 0, paris)},
	} {
		got, err := ParseTime(tc.in, now, paris)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "30", "30x", "d30", "-30d", "30 d", "yesterday", "2026-13-01", "2026-02-30",
		"1969-12-31T00:00:00Z", "99999999999d", "5000000w", "2026-01-02T25:00:00Z", "3d\n", "\xff"} {
		if got, err := ParseTime(bad, now, paris); err == nil {
			t.Errorf("ParseTime(%q) = %v, want an error", bad, got)
		} else if strings.ContainsAny(err.Error(), "\n") {
			t.Errorf("ParseTime(%q): multi-line error %q", bad, err)
		}
	}
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"user:42", "system", "order:2026:17", "user:", ":", "a.b-c_d:x y", "user:\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		typ, id, err := ParseRef(s)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error for %q", s)
			}
			return
		}
		// What parses round-trips, and is clean text.
		back := typ
		if id != "" {
			back += ":" + id
		}
		if back != s {
			t.Fatalf("ParseRef(%q) = %q, %q: does not round-trip", s, typ, id)
		}
		if !utf8.ValidString(id) || strings.ContainsFunc(id, isControl) || typ == "" {
			t.Fatalf("ParseRef(%q) accepted %q, %q", s, typ, id)
		}
	})
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"30d", "1d12h", "now", "2026-01-02", "2026-01-02T03:04:05Z", "2026-01-02 15:04", "999999999w", "0s"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTime(s, now, time.UTC)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error for %q", s)
			}
			return
		}
		if y := got.UTC().Year(); y < 1970 || y > 9999 {
			t.Fatalf("ParseTime(%q) = %v: year out of range", s, got)
		}
		if d, err := ParseAgo(s); err == nil && !got.Equal(now.Add(-d)) {
			t.Fatalf("ParseTime(%q) = %v, but ParseAgo says %v ago", s, got, d)
		}
	})
}

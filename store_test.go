package trail

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestQueryValidate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	cursor := EncodeCursor(Cursor{OccurredAt: now, ID: uuid.MustParse("01936c8e-7a00-7000-8000-000000000001")})
	valid := []Query{
		{Tenant: "acme"},
		{AllTenants: true},
		{Tenant: "acme", ActorType: ActorUser, ActorID: "42", Action: "user.delete", TargetType: "user", TargetID: "17",
			Since: now.Add(-time.Hour), Until: now, Outcome: OutcomeDenied, Field: "plan", Text: "plan pro", Limit: MaxLimit, Cursor: cursor},
		{AllTenants: true, Action: "subscription.*"},
		{AllTenants: true, Action: "billing.invoice.*"},
		{AllTenants: true, Since: now},
		{AllTenants: true, Until: now},
		{AllTenants: true, Limit: 1},
		{AllTenants: true, ActorID: "42"},
		{AllTenants: true, Text: "Zoë café"},
	}
	for _, q := range valid {
		if err := q.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", q, err)
		}
	}
	tests := []struct {
		name  string
		q     Query
		field string
	}{
		{"tenant", Query{Tenant: "a b"}, "tenant"},
		{"no tenant", Query{}, "tenant"},
		{"no tenant with filters", Query{Action: "user.delete", Limit: 10}, "tenant"},
		{"tenant and all tenants", Query{Tenant: "acme", AllTenants: true}, "tenant"},
		{"bad tenant and all tenants", Query{Tenant: "a b", AllTenants: true}, "tenant"},
		{"actor type", Query{Tenant: "acme", ActorType: "robot"}, "actor"},
		{"action", Query{Tenant: "acme", Action: "Delete"}, "action"},
		{"action star only", Query{Tenant: "acme", Action: "*"}, "action"},
		{"action bare prefix", Query{Tenant: "acme", Action: "user"}, "action"},
		{"action double star", Query{Tenant: "acme", Action: "user.**"}, "action"},
		{"action negated star", Query{Tenant: "acme", Action: "!*"}, "action"},
		{"action empty in a list", Query{Tenant: "acme", Action: "user.delete,"}, "action"},
		{"action upper case in a list", Query{Tenant: "acme", Action: "*.delete,User.create"}, "action"},
		{"action too many patterns", Query{Tenant: "acme", Action: strings.Repeat("a.b,", MaxActionPatterns) + "a.b"}, "action"},
		{"action prefix too long", Query{Tenant: "acme", Action: strings.Repeat("a", MaxActionLen) + ".*"}, "action"},
		{"outcome", Query{Tenant: "acme", Outcome: "ok"}, "outcome"},
		{"until before since", Query{Tenant: "acme", Since: now, Until: now.Add(-time.Second)}, "until"},
		{"until equals since", Query{Tenant: "acme", Since: now, Until: now}, "until"},
		{"negative limit", Query{Tenant: "acme", Limit: -1}, "limit"},
		{"huge limit", Query{Tenant: "acme", Limit: MaxLimit + 1}, "limit"},
		{"actor id too long", Query{Tenant: "acme", ActorID: strings.Repeat("x", 2*MaxIDLen+1)}, "actor"},
		{"target too long", Query{Tenant: "acme", TargetType: "user", TargetID: strings.Repeat("x", 2*MaxIDLen)}, "target"},
		{"field NUL", Query{Tenant: "acme", Field: "a\x00"}, "field"},
		{"text NUL", Query{Tenant: "acme", Text: "\x00"}, "text"},
		{"text bad utf8", Query{Tenant: "acme", Text: "caf\xe9"}, "text"},
		{"actor bad utf8", Query{Tenant: "acme", ActorID: "\xff"}, "actor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.q.Validate()
			if !errors.Is(err, ErrInvalidQuery) {
				t.Fatalf("Validate = %v, want ErrInvalidQuery", err)
			}
			if !strings.Contains(err.Error(), ": "+tt.field+": ") {
				t.Errorf("error %q does not name %q", err, tt.field)
			}
		})
	}
	if err := (&Query{Tenant: "acme", Cursor: "nope"}).Validate(); !errors.Is(err, ErrInvalidCursor) {
		t.Errorf("bad cursor: %v, want ErrInvalidCursor", err)
	}
}

func TestQueryLimitAndPrefix(t *testing.T) {
	t.Parallel()
	for limit, want := range map[int]int{0: DefaultLimit, -5: DefaultLimit, 1: 1, 500: 500, MaxLimit: MaxLimit, MaxLimit + 1: MaxLimit} {
		q := Query{Limit: limit}
		if got := q.EffectiveLimit(); got != want {
			t.Errorf("EffectiveLimit(%d) = %d, want %d", limit, got, want)
		}
	}
	for p, want := range map[string]string{"subscription.*": "subscription.", "a.b.*": "a.b.", "sub*": "sub", "user.delete": "", "": "", "a.*.b*": ""} {
		got, ok := PatternPrefix(p)
		if got != want || ok != (want != "") {
			t.Errorf("PatternPrefix(%q) = %q, %v", p, got, ok)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	cursors := []Cursor{
		{OccurredAt: time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC), ID: uuid.MustParse("01936c8e-7a00-7000-8000-000000000001")},
		{OccurredAt: time.Unix(0, 0).UTC(), ID: uuid.Nil},
		{OccurredAt: time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), ID: uuid.Max},
		{OccurredAt: time.Date(1970, 1, 1, 0, 0, 0, 1000, time.UTC), ID: uuid.MustParse("ffffffff-0000-7000-8000-00000000ffff")},
	}
	seen := map[string]bool{}
	for _, c := range cursors {
		s := EncodeCursor(c)
		if seen[s] {
			t.Errorf("two cursors encode to %s", s)
		}
		seen[s] = true
		if strings.ContainsAny(s, "+/=") {
			t.Errorf("cursor %q is not URL-safe", s)
		}
		got, err := DecodeCursor(s)
		if err != nil {
			t.Fatalf("DecodeCursor(%q): %v", s, err)
		}
		if !got.OccurredAt.Equal(c.OccurredAt) || got.ID != c.ID || got.OccurredAt.Location() != time.UTC {
			t.Errorf("round trip %+v -> %+v", c, got)
		}
	}
	// A cursor keeps microseconds, as stores do.
	c := Cursor{OccurredAt: time.Date(2026, 1, 1, 0, 0, 0, 1999, time.UTC)}
	got, err := DecodeCursor(EncodeCursor(c))
	if err != nil || got.OccurredAt.Nanosecond() != 1000 {
		t.Errorf("sub-microsecond cursor: %v %v", got.OccurredAt, err)
	}
}

func TestDecodeCursorInvalid(t *testing.T) {
	t.Parallel()
	good := EncodeCursor(Cursor{OccurredAt: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), ID: uuid.MustParse("01936c8e-7a00-7000-8000-000000000001")})
	raw, err := base64.RawURLEncoding.DecodeString(good)
	if err != nil {
		t.Fatal(err)
	}
	// A version 1 cursor, as EncodeCursor made them before the checksum.
	v1 := append([]byte{1}, raw[1:25]...)
	// Version 3, with a checksum that matches.
	wrongVersion := append([]byte(nil), raw...)
	wrongVersion[0] = 3
	binary.BigEndian.PutUint32(wrongVersion[25:], crc32.Checksum(wrongVersion[:25], cursorCRC))
	badSum := append([]byte(nil), raw...)
	badSum[28]++
	lastBits := good[:len(good)-1] + string(good[len(good)-1]+1)
	bad := map[string]string{
		"empty":             "",
		"garbage":           "not a cursor!",
		"short":             good[:len(good)-2],
		"long":              good + "AA",
		"padded std base64": base64.URLEncoding.EncodeToString(raw),
		"std alphabet":      base64.RawStdEncoding.EncodeToString(append([]byte{1}, make([]byte, 24)...)) + "+",
		"wrong version":     base64.RawURLEncoding.EncodeToString(wrongVersion),
		"version 1":         base64.RawURLEncoding.EncodeToString(v1),
		"bad checksum":      base64.RawURLEncoding.EncodeToString(badSum),
		"checksum cut off":  base64.RawURLEncoding.EncodeToString(raw[:25]),
		"newline inside":    good[:10] + "\n" + good[10:],
		"trailing newline":  good + "\n",
		"unused bits set":   lastBits,
		"space":             " " + good,
		"unicode":           "é" + good,
	}
	for name, s := range bad {
		if s == good {
			t.Fatalf("%s: not a change", name)
		}
		if c, err := DecodeCursor(s); !errors.Is(err, ErrInvalidCursor) {
			t.Errorf("%s: DecodeCursor(%q) = %+v, %v; want ErrInvalidCursor", name, s, c, err)
		}
		q := Query{Tenant: "acme", Cursor: s}
		if s != "" {
			if err := q.Validate(); !errors.Is(err, ErrInvalidCursor) {
				t.Errorf("%s: Query.Validate = %v", name, err)
			}
		}
	}
}

// TestCursorFlippedBit: a cursor checks itself. Every one-bit change of its
// bytes, every one-bit change of its text and every changed character is
// refused, not read as another position.
func TestCursorFlippedBit(t *testing.T) {
	t.Parallel()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for _, c := range []Cursor{
		{OccurredAt: time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC), ID: uuid.MustParse("01936c8e-7a00-7000-8000-000000000001")},
		{OccurredAt: time.Unix(0, 0).UTC(), ID: uuid.Nil},
		{OccurredAt: time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), ID: uuid.Max},
	} {
		s := EncodeCursor(c)
		raw, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		refused := func(what, bad string) {
			t.Helper()
			if bad == s {
				t.Fatalf("%s: no change", what)
			}
			if got, err := DecodeCursor(bad); !errors.Is(err, ErrInvalidCursor) {
				t.Errorf("%s: DecodeCursor(%q) = %+v, %v; want ErrInvalidCursor", what, bad, got, err)
			}
		}
		for i := range len(raw) * 8 {
			b := append([]byte(nil), raw...)
			b[i/8] ^= 1 << (i % 8)
			refused(fmt.Sprintf("byte %d bit %d", i/8, i%8), base64.RawURLEncoding.EncodeToString(b))
		}
		for i := range len(s) * 8 {
			b := []byte(s)
			b[i/8] ^= 1 << (i % 8)
			refused(fmt.Sprintf("character %d bit %d", i/8, i%8), string(b))
		}
		for i := range len(s) {
			for _, r := range alphabet {
				if byte(r) != s[i] {
					refused(fmt.Sprintf("character %d to %c", i, r), s[:i]+string(r)+s[i+1:])
				}
			}
		}
	}
}

// TestCursorGolden pins the cursor format with the vectors in
// testdata/cursor/vectors.txt: "<occurred_at> <id> <cursor>" lines that must
// encode and decode exactly so, and "refused <cursor>" lines (version 1
// cursors among them) that DecodeCursor must refuse.
// go test -run TestCursorGolden -update rewrites the cursors of the first kind.
func TestCursorGolden(t *testing.T) {
	t.Parallel()
	const path = "testdata/cursor/vectors.txt"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	accepted, refused := 0, 0
	for n, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0 || strings.HasPrefix(line, "#"):
		case f[0] == "refused" && len(f) == 2:
			refused++
			if c, err := DecodeCursor(f[1]); !errors.Is(err, ErrInvalidCursor) {
				t.Errorf("line %d: DecodeCursor(%q) = %+v, %v; want ErrInvalidCursor", n+1, f[1], c, err)
			}
		case len(f) == 3:
			accepted++
			at, err := time.Parse(time.RFC3339Nano, f[0])
			if err != nil {
				t.Fatalf("line %d: %v", n+1, err)
			}
			c := Cursor{OccurredAt: at, ID: uuid.MustParse(f[1])}
			got := EncodeCursor(c)
			if *update {
				line = f[0] + " " + f[1] + " " + got
			} else if got != f[2] {
				t.Errorf("line %d: EncodeCursor = %s, want %s", n+1, got, f[2])
			}
			back, err := DecodeCursor(f[2])
			if !*update && (err != nil || !back.OccurredAt.Equal(at) || back.ID != c.ID) {
				t.Errorf("line %d: DecodeCursor(%s) = %+v, %v", n+1, f[2], back, err)
			}
		default:
			t.Fatalf("line %d: %q", n+1, line)
		}
		out = append(out, line)
	}
	if accepted < 3 || refused < 2 {
		t.Fatalf("%d accepted and %d refused vectors; the file is too short", accepted, refused)
	}
	if *update {
		if err := os.WriteFile(path, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

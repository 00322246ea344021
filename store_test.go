package trail

import (
	"encoding/base64"
	"errors"
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
		{"action star in middle", Query{Tenant: "acme", Action: "user.*.x"}, "action"},
		{"action double star", Query{Tenant: "acme", Action: "user.**"}, "action"},
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
	for action, want := range map[string]string{"subscription.*": "subscription.", "a.b.*": "a.b.", "user.delete": "", "": ""} {
		q := Query{Action: action}
		got, ok := q.ActionPrefix()
		if got != want || ok != (want != "") {
			t.Errorf("ActionPrefix(%q) = %q, %v", action, got, ok)
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
	wrongVersion := append([]byte(nil), raw...)
	wrongVersion[0] = 2
	lastBits := good[:len(good)-1] + string(good[len(good)-1]+1)
	bad := map[string]string{
		"empty":             "",
		"garbage":           "not a cursor!",
		"short":             good[:len(good)-2],
		"long":              good + "AA",
		"padded std base64": base64.URLEncoding.EncodeToString(raw),
		"std alphabet":      base64.RawStdEncoding.EncodeToString(append([]byte{1}, make([]byte, 24)...)) + "+",
		"wrong version":     base64.RawURLEncoding.EncodeToString(wrongVersion),
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

package trail

import (
	"errors"
	"testing"
)

func TestActionFilter(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		filter string
		match  []string
		miss   []string
	}{
		{"", []string{"user.delete", "audit.read"}, nil},
		{"user.delete", []string{"user.delete"}, []string{"user.deleted", "api_key.delete"}},
		{"subscription.*", []string{"subscription.update", "subscription.plan.change"}, []string{"subscriptions.update", "user.delete"}},
		{"*.delete", []string{"user.delete", "api_key.delete", "a.b.delete"}, []string{"user.deleted", "user.delete.undo", "delete"}},
		{"user.*.delete", []string{"user.profile.delete", "user.a.b.delete"}, []string{"user.delete"}},
		{"user.create,*.delete", []string{"user.create", "project.delete"}, []string{"user.update"}},
		{"*.delete,!user.delete", []string{"project.delete"}, []string{"user.delete", "user.create"}},
		{"!audit.*", []string{"user.delete", "auditor.read"}, []string{"audit.read", "audit.export.read"}},
		{"!audit.read, !user.*", []string{"project.delete"}, []string{"audit.read", "user.create"}},
	} {
		f, err := ParseActionFilter(c.filter)
		if err != nil {
			t.Fatalf("%q: %v", c.filter, err)
		}
		for _, a := range c.match {
			if !f.Match(a) {
				t.Errorf("%q does not match %s", c.filter, a)
			}
		}
		for _, a := range c.miss {
			if f.Match(a) {
				t.Errorf("%q matches %s", c.filter, a)
			}
		}
		if g, err := ParseActionFilter(f.String()); err != nil || g.String() != f.String() {
			t.Errorf("%q: String %q does not parse back: %v", c.filter, f.String(), err)
		}
	}
	for _, bad := range []string{"*", "!*", "*.*", "user", "User.delete", "user.**", "a..b", "user.delete,", ",", "!", "user delete", "user.*;drop", "user.%", "user._"} {
		if _, err := ParseActionFilter(bad); !errors.Is(err, ErrInvalidQuery) {
			t.Errorf("ParseActionFilter(%q) = %v, want an invalid query", bad, err)
		}
	}
}

func TestWithoutAccess(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                 "!audit.*",
		"user.delete":      "user.delete,!audit.*",
		"audit.read":       "audit.read",
		"audit.*":          "audit.*",
		"*.read":           "*.read,!audit.*",
		"!user.*":          "!user.*,!audit.*",
		"not a filter ***": "not a filter ***",
	} {
		if got := WithoutAccess(in); got != want {
			t.Errorf("WithoutAccess(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzActionFilter(f *testing.F) {
	for _, s := range []string{"*.delete", "a.b,!c.*", "subscription.*", "!audit.*"} {
		f.Add(s, "user.delete")
	}
	f.Fuzz(func(t *testing.T, filter, action string) {
		af, err := ParseActionFilter(filter)
		if err != nil {
			return
		}
		got := af.Match(action)
		g, err := ParseActionFilter(af.String())
		if err != nil {
			t.Fatalf("String %q of %q does not parse: %v", af.String(), filter, err)
		}
		if g.Match(action) != got {
			t.Fatalf("%q and its String %q disagree on %q", filter, af.String(), action)
		}
	})
}

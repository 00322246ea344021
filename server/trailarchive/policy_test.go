package trailarchive

import (
	"errors"
	"testing"
	"time"
)

func TestResolvePrecedence(t *testing.T) {
	t.Parallel()
	s := &Set{Policies: []Policy{
		{Keep: 100 * Day, Then: ThenArchive},
		{Action: "auth.*", Keep: 90 * Day, Then: ThenDelete},
		{Action: "auth.login.*", Keep: 30 * Day, Then: ThenDelete},
		{Action: "billing.*", Keep: 7 * Year, Then: ThenArchive},
		{Tenant: "acme", Keep: 2 * Year, Then: ThenArchive},
		{Tenant: "acme", Action: "auth.*", Keep: 10 * Day, Then: ThenDelete},
	}}
	for _, c := range []struct {
		tenant, action string
		keep           int // days
	}{
		{"x", "user.update", 100},
		{"x", "auth.logout", 90},
		{"x", "auth.login.failed", 30},
		{"x", "auth.login", 90}, // auth.login.* does not match auth.login itself
		{"x", "billing.invoice.paid", 7 * 365},
		{"acme", "user.update", 2 * 365},
		{"acme", "auth.login.failed", 10}, // tenant+action beats a longer all-tenant pattern
		{"acme", "billing.invoice", 7 * 365},
		{"", "auth.logout", 90},
	} {
		if got := s.Resolve(c.tenant, c.action); got.Keep != Day*timeDays(c.keep) {
			t.Errorf("Resolve(%q, %q) = %s, want %dd", c.tenant, c.action, FormatKeep(got.Keep), c.keep)
		}
	}
	if got := (&Set{}).Resolve("x", "a.b"); got.Keep != DefaultKeep || got.Then != ThenArchive {
		t.Errorf("default: %+v", got)
	}
}

func timeDays(n int) time.Duration { return time.Duration(n) }

func TestCheckSetConflicts(t *testing.T) {
	t.Parallel()
	s := &Set{
		Policies: []Policy{{Action: "auth.*", Keep: 90 * Day, Then: ThenDelete}},
		Holds:    []Hold{{Tenant: "globex", MinKeep: 2 * Year}},
	}
	for _, c := range []struct {
		p    Policy
		want error
	}{
		{Policy{Tenant: "acme", Keep: 30 * Day, Then: ThenArchive}, ErrConflict},
		{Policy{Tenant: "acme", Keep: 90 * Day, Then: ThenDelete}, nil}, // agrees
		{Policy{Tenant: "globex", Keep: Year, Then: ThenArchive}, ErrConflict},
		{Policy{Keep: Year, Then: ThenArchive}, ErrConflict}, // all tenants include globex
		{Policy{Tenant: "globex", Keep: 3 * Year, Then: ThenArchive}, ErrConflict},
		{Policy{Tenant: "globex", Action: "auth.*", Keep: 3 * Year, Then: ThenDelete}, nil},
		{Policy{Action: "auth.*", Keep: 3 * Year, Then: ThenDelete}, nil}, // replaces the rule
		{Policy{Keep: 0, Then: ThenArchive}, ErrInvalidPolicy},
		{Policy{Keep: Day, Then: "shred"}, ErrInvalidPolicy},
		{Policy{Tenant: "Bad Tenant", Keep: Day, Then: ThenDelete}, ErrInvalidPolicy},
	} {
		if err := s.CheckSet(c.p); !errors.Is(err, c.want) && !(c.want == nil && err == nil) {
			t.Errorf("CheckSet(%+v) = %v, want %v", c.p, err, c.want)
		}
	}
}

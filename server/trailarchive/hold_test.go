package trailarchive

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/trailhq/trail"
)

// Hold.Validate is the one check of a hold's fields, for the CLI and the
// API alike; its error names the field.
func TestHoldValidate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		h     Hold
		field string // "" valid
	}{
		{"tenant-wide", Hold{Tenant: "acme", Reason: "case 42 — Müller v. Acme"}, ""},
		{"subject", Hold{Tenant: "acme", Subject: "user:42"}, ""},
		{"subject with a colon in its ID", Hold{Tenant: "acme", Subject: "doc:a:b"}, ""},
		{"longest reason", Hold{Tenant: "acme", Reason: strings.Repeat("x", MaxHoldReason)}, ""},
		{"no tenant", Hold{}, "tenant"},
		{"bad tenant", Hold{Tenant: "acme corp"}, "tenant"},
		{"bare subject", Hold{Tenant: "acme", Subject: "nobody"}, "subject"},
		{"subject without ID", Hold{Tenant: "acme", Subject: "user:"}, "subject"},
		{"upper-case subject type", Hold{Tenant: "acme", Subject: "User:42"}, "subject"},
		{"subject ID with a newline", Hold{Tenant: "acme", Subject: "user:4\n2"}, "subject"},
		{"subject ID too long", Hold{Tenant: "acme", Subject: "user:" + strings.Repeat("9", trail.MaxIDLen+1)}, "subject"},
		{"reason with a newline", Hold{Tenant: "acme", Reason: "case 42\nforged: released"}, "reason"},
		{"reason with a carriage return", Hold{Tenant: "acme", Reason: "case 42\r"}, "reason"},
		{"reason with a tab", Hold{Tenant: "acme", Reason: "case\t42"}, "reason"},
		{"reason with NEL", Hold{Tenant: "acme", Reason: "case 42\u0085"}, "reason"},
		{"reason with a line separator", Hold{Tenant: "acme", Reason: "case 42\u2028b"}, "reason"},
		{"reason with DEL", Hold{Tenant: "acme", Reason: "case 42\x7f"}, "reason"},
		{"reason not UTF-8", Hold{Tenant: "acme", Reason: "case \xff"}, "reason"},
		{"reason too long", Hold{Tenant: "acme", Reason: strings.Repeat("x", MaxHoldReason+1)}, "reason"},
	} {
		err := c.h.Validate()
		var ih *InvalidHoldError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%s: %v, want valid", c.name, err)
		case c.field != "" && (!errors.As(err, &ih) || ih.Field != c.field || !errors.Is(err, ErrInvalidPolicy)):
			t.Errorf("%s: %v, want an *InvalidHoldError on %s", c.name, err, c.field)
		case c.field != "" && strings.ContainsAny(err.Error(), "\n\r"):
			t.Errorf("%s: the error is not one line: %q", c.name, err)
		}
	}
}

// A replace strengthens a hold when it keeps its reason and a min_keep at
// least as long; no min_keep is the weakest.
func TestHoldCheckStrengthens(t *testing.T) {
	t.Parallel()
	held := Hold{Tenant: "acme", Reason: "case 42", MinKeep: 7 * Year}
	none := Hold{Tenant: "acme", Reason: "case 42"}
	for _, c := range []struct {
		name     string
		old, new Hold
		field    string // "" strengthens
	}{
		{"the same hold", held, held, ""},
		{"a longer min_keep", held, Hold{Tenant: "acme", Reason: "case 42", MinKeep: 10 * Year}, ""},
		{"a min_keep where there was none", none, held, ""},
		{"no min_keep over none", none, none, ""},
		{"no min_keep over 7y", held, none, "min_keep"},
		{"a shorter min_keep", held, Hold{Tenant: "acme", Reason: "case 42", MinKeep: Day}, "min_keep"},
		{"another reason", held, Hold{Tenant: "acme", Reason: "case 43", MinKeep: 10 * Year}, "reason"},
		{"no reason", held, Hold{Tenant: "acme", MinKeep: 7 * Year}, "reason"},
	} {
		err := c.new.CheckStrengthens(c.old)
		var we *WeakenError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%s: %v, want it to strengthen", c.name, err)
		case c.field != "" && (!errors.As(err, &we) || we.Field != c.field || !errors.Is(err, ErrWeakensHold)):
			t.Errorf("%s: %v, want a *WeakenError on %s", c.name, err, c.field)
		}
	}
}

// Under OnlyStrengthen (a tenant admin), PutHold adds holds and strengthens
// them, and refuses to weaken or change one: the hold stays as it was (a
// policy it refuses is still refused), and the refusal is a denied
// retention.hold.place event by the caller. Without it (an all-tenant admin,
// the CLI) a weakening goes through, recorded as such.
func TestOnlyStrengthenHold(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		f := openFixture(t, kind)
		f.setTransform(markTransform{})
		b := f.backend
		operator := trail.WithActor(context.Background(), trail.Actor{Type: trail.ActorService, ID: "key-all"})
		tenantAdmin := OnlyStrengthen(trail.WithActor(context.Background(), trail.Actor{Type: trail.ActorService, ID: "key-acme"}))
		held := Hold{Tenant: "acme", Reason: "case 42", MinKeep: 7 * Year}
		if err := b.PutHold(operator, held); err != nil {
			t.Fatal(err)
		}
		hold := func() Hold {
			t.Helper()
			s, err := b.Set(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			h := findHold(s, "acme", "")
			if h == nil {
				t.Fatal("the hold is gone")
			}
			return *h
		}
		since := hold().Since
		shortPolicy := Policy{Tenant: "acme", Keep: Day, Then: ThenDelete}
		if err := b.SetPolicy(tenantAdmin, shortPolicy); !errors.Is(err, ErrConflict) {
			t.Fatalf("keep 1d then delete under the hold: %v, want a conflict", err)
		}

		for _, c := range []struct {
			h     Hold
			field string
		}{
			{Hold{Tenant: "acme", Reason: "case 42"}, "min_keep"},
			{Hold{Tenant: "acme", Reason: "case 42", MinKeep: 30 * Day}, "min_keep"},
			{Hold{Tenant: "acme", Reason: "settled", MinKeep: 10 * Year}, "reason"},
		} {
			before := len(f.auditEvents(t, "acme"))
			err := b.PutHold(tenantAdmin, c.h)
			var we *WeakenError
			if !errors.As(err, &we) || we.Field != c.field {
				t.Fatalf("tenant admin puts %+v: %v, want a *WeakenError on %s", c.h, err, c.field)
			}
			if got := hold(); got.Reason != held.Reason || got.MinKeep != held.MinKeep || !got.Since.Equal(since) {
				t.Fatalf("after a refused change the hold is %+v, want %+v", got, held)
			}
			evs := f.auditEvents(t, "acme")
			if len(evs) != before+1 {
				t.Fatalf("%d events after a refused change, want %d", len(evs), before+1)
			}
			ev := evs[len(evs)-1]
			if ev.Action != ActionHoldPlace || ev.Outcome != trail.OutcomeDenied || ev.Actor.ID != "key-acme" ||
				ev.Metadata["refused"] != c.field || ev.Metadata["transformed"] != true || !strings.Contains(ev.Description, "Refused") {
				t.Fatalf("refusal recorded as %s %s by %s, metadata %v, %q", ev.Action, ev.Outcome, ev.Actor.ID, ev.Metadata, ev.Description)
			}
		}
		if err := b.SetPolicy(tenantAdmin, shortPolicy); !errors.Is(err, ErrConflict) {
			t.Fatalf("keep 1d then delete after the refused weakenings: %v, want a conflict", err)
		}

		// What a tenant admin may do: re-place it as it is, lengthen its
		// min_keep, add a subject hold.
		for _, h := range []Hold{held, {Tenant: "acme", Reason: "case 42", MinKeep: 10 * Year}, {Tenant: "acme", Subject: "user:42"}} {
			if err := b.PutHold(tenantAdmin, h); err != nil {
				t.Fatalf("tenant admin puts %+v: %v", h, err)
			}
		}
		if got := hold(); got.MinKeep != 10*Year || !got.Since.Equal(since) {
			t.Fatalf("strengthened hold: %+v", got)
		}

		// The operator weakens it: recorded, and marked weakened.
		if err := b.PutHold(operator, Hold{Tenant: "acme", Reason: "case 42"}); err != nil {
			t.Fatal(err)
		}
		evs := f.auditEvents(t, "acme")
		if ev := evs[len(evs)-1]; ev.Outcome != trail.OutcomeSuccess || ev.Metadata["weakened"] != "min_keep" || ev.Actor.ID != "key-all" ||
			!mapsEqual(changeMap(ev), map[string][2]string{"min_keep": {`"10y"`, `""`}}) {
			t.Fatalf("weakening recorded as %s by %s, metadata %v, changes %v", ev.Outcome, ev.Actor.ID, ev.Metadata, changeMap(ev))
		}
		if err := b.SetPolicy(operator, shortPolicy); err != nil {
			t.Fatalf("keep 1d then delete once the operator weakened the hold: %v", err)
		}
	})
}

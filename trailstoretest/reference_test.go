package trailstoretest

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

// The reference model decides what every store must return, so it is tested
// on its own.

func TestMatchAction(t *testing.T) {
	for _, c := range []struct {
		pattern, action string
		want            bool
	}{
		{"", "user.delete", true},
		{"user.delete", "user.delete", true},
		{"user.delete", "user.deleted", false},
		{"subscription.*", "subscription.update", true},
		{"subscription.*", "subscription.plan.change", true},
		{"sub.*", "subscription.update", false},
		{"sub_x.*", "subax.create", false},
		{"subscription.plan.*", "subscription.update", false},
	} {
		if got := matchAction(c.pattern, c.action); got != c.want {
			t.Errorf("matchAction(%q, %q) = %t", c.pattern, c.action, got)
		}
	}
}

func TestWords(t *testing.T) {
	for in, want := range map[string][]string{
		"Changed subscription plan to PRO.": {"changed", "subscription", "plan", "to", "pro"},
		`pla% "x" NEAR(a b) *`:              {"pla", "x", "near", "a", "b"},
		"100% done_flag":                    {"100", "done", "flag"},
		"%%  _ ' \"":                        nil,
	} {
		if got := words(in); !slices.Equal(got, want) {
			t.Errorf("words(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMatches(t *testing.T) {
	ev := event(t, "acme", "subscription.update", time.Hour, actor(trail.ActorUser, "u1"), target("subscription", "s1"),
		describe("Changed subscription plan to pro"), changes("plan"), outcome(trail.OutcomeDenied))
	yes := []trail.Query{
		{AllTenants: true}, {Tenant: "acme"}, {ActorType: trail.ActorUser, ActorID: "u1"}, {Action: "subscription.*"},
		{TargetType: "subscription", TargetID: "s1"}, {Since: at(time.Hour)}, {Until: at(time.Hour + time.Microsecond)},
		{Outcome: trail.OutcomeDenied}, {Field: "plan"}, {Text: "PLAN pro"},
	}
	no := []trail.Query{
		{Tenant: "globex"}, {ActorID: "u2"}, {Action: "sub.*"}, {TargetID: "s2"}, {Since: at(time.Hour + time.Microsecond)},
		{Until: at(time.Hour)}, {Outcome: trail.OutcomeSuccess}, {Field: "plan.x"}, {Text: "pla*"}, {Text: "%"}, {Text: "plan enterprise"},
	}
	for _, q := range yes {
		if !matches(q, ev) {
			t.Errorf("%s should match", showQuery(q))
		}
	}
	for _, q := range no {
		if matches(q, ev) {
			t.Errorf("%s should not match", showQuery(q))
		}
	}
}

func TestNewestFirst(t *testing.T) {
	id := func(b byte) uuid.UUID { var u uuid.UUID; u[0] = b; return u }
	evs := []trail.Event{
		{ID: id(1), OccurredAt: at(0)}, {ID: id(3), OccurredAt: at(0)}, {ID: id(2), OccurredAt: at(time.Second)}, {ID: id(0xff), OccurredAt: at(-time.Second)},
	}
	got := newestFirst(evs)
	want := []byte{2, 3, 1, 0xff}
	for i, ev := range got {
		if ev.ID[0] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}

func TestDiffEventSeesEveryField(t *testing.T) {
	base := fullEvent(t)
	if d := diffEvent(base, base); len(d) != 0 {
		t.Fatalf("identical events differ: %v", d)
	}
	muts := map[string]func(*trail.Event){
		"null became absent": func(ev *trail.Event) { ev.Changes[3].New = nil },
		"old value":          func(ev *trail.Event) { ev.Changes[0].Old = []byte(`"other"`) },
		"redacted":           func(ev *trail.Event) { ev.Changes[5].Redacted = false },
		"metadata":           func(ev *trail.Event) { ev.Metadata = map[string]any{"int": 42} },
		"on behalf of":       func(ev *trail.Event) { ev.Actor.OnBehalfOf = nil },
		"local time":         func(ev *trail.Event) { ev.OccurredAt = ev.OccurredAt.In(time.FixedZone("X", 3600)) },
		"recorded at":        func(ev *trail.Event) { ev.RecordedAt = ev.RecordedAt.Add(time.Microsecond) },
		"trace":              func(ev *trail.Event) { ev.TraceID = "" },
		"schema version":     func(ev *trail.Event) { ev.SchemaVersion = 0 },
	}
	for name, mut := range muts {
		got := fullEvent(t)
		got.ID, got.OccurredAt, got.RecordedAt = base.ID, base.OccurredAt, base.RecordedAt
		if d := diffEvent(base, got); len(d) != 0 {
			t.Fatalf("suite bug: two fullEvents differ beyond ID and times: %v", d)
		}
		mut(&got)
		if d := diffEvent(base, got); len(d) == 0 {
			t.Errorf("%s: not detected", name)
		}
	}
}

package demo

import (
	"context"
	"errors"
	"fmt"

	"github.com/trailhq/trail"
)

// Stats says what Seed stored.
type Stats struct {
	Stored     int // new events
	Duplicates int // events whose ID was already stored
}

// ErrNotEmpty is returned by Seed when the store already holds events and
// SeedOptions.AllowNonEmpty is false: mixing demo data into real data is
// almost always a mistake (a wrong --db).
var ErrNotEmpty = errors.New("demo: the store already holds events")

// SeedOptions adjusts Seed. A nil *SeedOptions means every default.
type SeedOptions struct {
	// Transform, when set, rewrites each event before it is validated and
	// stored, as trail.Config.Transform does for a Client (the privacy layer
	// plugs in here). Default: none.
	Transform trail.Transformer
	// AllowNonEmpty seeds even when the store already holds events. Default
	// false: Seed refuses with ErrNotEmpty.
	AllowNonEmpty bool
}

// Seed stores d's events in store in one atomic Append: all of them or none.
//
// It writes through the store rather than a trail.Client on purpose: a
// Client stamps RecordedAt with its clock, and the demo needs RecordedAt to
// follow each event's OccurredAt so that two years of history look like two
// years to retention. Each event is still normalized, transformed and
// validated exactly as Record would.
func Seed(ctx context.Context, store trail.Store, d *Dataset, opts *SeedOptions) (Stats, error) {
	var o SeedOptions
	if opts != nil {
		o = *opts
	}
	if !o.AllowNonEmpty {
		p, err := store.Query(ctx, trail.Query{AllTenants: true, Limit: 1})
		if err != nil {
			return Stats{}, fmt.Errorf("demo: checking the store is empty: %w", err)
		}
		if len(p.Events) > 0 {
			return Stats{}, ErrNotEmpty
		}
	}
	events := make([]trail.Event, len(d.Events))
	for i, ev := range d.Events {
		if ev.Changes != nil {
			ev.Changes = append([]trail.Change(nil), ev.Changes...)
		}
		if err := ev.Normalize(); err != nil {
			return Stats{}, fmt.Errorf("demo: event %d: %w", i, err)
		}
		if o.Transform != nil {
			if err := o.Transform.Transform(ctx, &ev); err != nil {
				return Stats{}, fmt.Errorf("demo: event %d: transform: %w", i, err)
			}
		}
		if err := ev.Validate(); err != nil {
			return Stats{}, fmt.Errorf("demo: event %d: %w", i, err)
		}
		events[i] = ev
	}
	res, err := store.Append(ctx, events)
	if err != nil {
		return Stats{}, fmt.Errorf("demo: storing %d events: %w", len(events), err)
	}
	var st Stats
	for _, r := range res {
		if r.Duplicate {
			st.Duplicates++
		} else {
			st.Stored++
		}
	}
	return st, nil
}

// Try is a question the demo data answers, and the CLI command that asks it.
type Try struct {
	Question string
	Command  string
}

// Tries lists what to try on the demo data with the trail CLI. Each command
// has an answer in every dataset Generate builds (the tests run them).
func (d *Dataset) Tries() []Try {
	acme := &d.Tenants[0]
	owner := &acme.Users[0]
	return []Try{
		{"Who changed Acme's subscription, and from what to what?", "trail query --tenant acme --action 'subscription.*'"},
		{"The subscription's whole history, field by field", "trail history subscription:" + acme.Subscription + " --tenant acme"},
		{"Who deleted users, in every tenant?", "trail query --action user.delete"},
		{"What did " + owner.Name + " do in Acme?", "trail query --tenant acme --actor user:" + owner.ID},
		{"Denied sign-ins at Globex in the last 90 days", "trail query --tenant globex --action auth.login --outcome denied --since 90d"},
		{"A support agent acting on behalf of customers", "trail query --actor user:" + d.Staff[0].ID},
		{"Every change to a plan field this year", "trail query --field plan --since 365d"},
		{"Full-text search in descriptions", "trail query --tenant acme --text password"},
		{"The same, as JSON Lines for scripts", "trail query --tenant acme --since 7d --json"},
	}
}

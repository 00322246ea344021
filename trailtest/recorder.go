package trailtest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trailhq/trail"
)

// Recorder is a trail.Recorder for tests: it records through a real
// trail.Client over an in-memory Store, so an event is filled from the
// context, normalized and validated exactly as in production, and an invalid
// event fails with the same error. Hand it to the code under test in place
// of the production recorder, then assert with RequireRecorded and friends.
type Recorder struct {
	store  *Store
	client *trail.Client[*Tx]

	mu       sync.Mutex
	rejected []error
}

var _ trail.Recorder = (*Recorder)(nil)

// NewRecorder returns an empty recorder. Its store is closed when tb's test
// ends. tb may be nil outside tests (examples, benchmarks' set-up).
func NewRecorder(tb testing.TB) *Recorder {
	return NewRecorderConfig(tb, nil)
}

// NewRecorderConfig is NewRecorder with the client configured by cfg, e.g.
// to set Source, a fixed clock, or the privacy layer's Transform. Without a
// Transform the client is a Plaintext one (the events stay in this
// process's memory): secrets are still redacted by the default deny-list,
// as in production, unless cfg sets NoDefaultRedaction.
func NewRecorderConfig(tb testing.TB, cfg *trail.Config) *Recorder {
	store := NewStore()
	var c trail.Config
	if cfg != nil {
		c = *cfg
	}
	if c.Transform == nil {
		c.Plaintext = true
	}
	client, err := trail.NewClient(store, &c)
	if err != nil {
		// Only a nil store or a missing privacy layer fails, and neither is.
		panic(err)
	}
	if tb != nil {
		tb.Cleanup(func() { store.Close() })
	}
	return &Recorder{store: store, client: client}
}

// Record records one event, as trail.Client.Record does.
func (r *Recorder) Record(ctx context.Context, ev trail.Event) (trail.Result, error) {
	res, err := r.client.Record(ctx, ev)
	r.reject(err)
	return res, err
}

// RecordMany records events atomically, as trail.Client.RecordMany does.
func (r *Recorder) RecordMany(ctx context.Context, events []trail.Event) ([]trail.Result, error) {
	res, err := r.client.RecordMany(ctx, events)
	r.reject(err)
	return res, err
}

func (r *Recorder) reject(err error) {
	if err != nil {
		r.mu.Lock()
		r.rejected = append(r.rejected, err)
		r.mu.Unlock()
	}
}

// Rejected returns the errors of the Record and RecordMany calls that
// failed, oldest first. Code under test may swallow its audit errors; the
// assertions list these so that a failing test says why nothing was
// recorded.
func (r *Recorder) Rejected() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.rejected)
}

// Client returns the client the recorder records with, for code that needs
// a *trail.Client (RecordTx with a transaction from Store().Begin()).
func (r *Recorder) Client() *trail.Client[*Tx] { return r.client }

// Store returns the recorder's store, for queries.
func (r *Recorder) Store() *Store { return r.store }

// Events returns every recorded event, oldest first.
func (r *Recorder) Events() []trail.Event { return r.store.Events() }

// Filter returns the recorded events that m matches, oldest first. An
// invalid m matches nothing; the Require functions report it.
func (r *Recorder) Filter(m Match) []trail.Event { return Filter(r.Events(), m) }

// Reset forgets every recorded event and rejection.
func (r *Recorder) Reset() {
	r.store.Reset()
	r.mu.Lock()
	r.rejected = nil
	r.mu.Unlock()
}

// Source is what the assertions read events from: a *Recorder or a *Store.
type Source interface {
	// Events returns the events, oldest first.
	Events() []trail.Event
}

// Match describes the events a test expects. Zero fields match anything;
// the forms are those of the trail CLI's flags.
type Match struct {
	// Tenant is the exact tenant.
	Tenant string
	// Actor is "type:id" (user:42) or just a type (system).
	Actor string
	// Action is exact (user.delete) or a prefix pattern (subscription.*).
	Action string
	// Target is "type:id" (user:17) or just a type (user).
	Target string
	// Outcome is the exact outcome.
	Outcome trail.Outcome
	// Changed is a field path that the event's Changes must include.
	Changed string
}

// Validate reports a malformed Match, so that a typo in a test fails the
// test instead of silently matching nothing.
func (m Match) Validate() error {
	// A Match without a tenant matches every tenant (and platform events).
	q := trail.Query{Tenant: m.Tenant, AllTenants: m.Tenant == "", Action: m.Action, Outcome: m.Outcome}
	if m.Actor != "" {
		typ, _, _ := strings.Cut(m.Actor, ":")
		q.ActorType = trail.ActorType(typ)
		if typ == "" {
			return fmt.Errorf("trailtest: Match.Actor %q: want type:id, e.g. user:42", m.Actor)
		}
	}
	if m.Target != "" {
		if typ, _, _ := strings.Cut(m.Target, ":"); typ == "" {
			return fmt.Errorf("trailtest: Match.Target %q: want type:id, e.g. user:17", m.Target)
		}
	}
	if err := q.Validate(); err != nil {
		return fmt.Errorf("trailtest: Match: %w", err)
	}
	return nil
}

// Matches reports whether ev matches m.
func (m Match) Matches(ev trail.Event) bool {
	if m.Tenant != "" && ev.Tenant != m.Tenant {
		return false
	}
	if m.Actor != "" && !matchTypeID(m.Actor, string(ev.Actor.Type), ev.Actor.ID) {
		return false
	}
	if !matchAction(m.Action, ev.Action) {
		return false
	}
	if m.Target != "" && !matchTypeID(m.Target, ev.Target.Type, ev.Target.ID) {
		return false
	}
	if m.Outcome != "" && ev.Outcome != m.Outcome {
		return false
	}
	if m.Changed != "" && !changed(&ev, m.Changed) {
		return false
	}
	return true
}

func matchTypeID(pattern, typ, id string) bool {
	pt, pid, hasID := strings.Cut(pattern, ":")
	return pt == typ && (!hasID || pid == id)
}

// String shows m as the CLI flags that would select the same events.
func (m Match) String() string {
	var parts []string
	for _, f := range []struct{ name, v string }{
		{"tenant", m.Tenant}, {"actor", m.Actor}, {"action", m.Action}, {"target", m.Target},
		{"outcome", string(m.Outcome)}, {"changed", m.Changed},
	} {
		if f.v != "" {
			parts = append(parts, "--"+f.name+" "+f.v)
		}
	}
	if len(parts) == 0 {
		return "{any event}"
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// Filter returns the events that m matches, in their order. An invalid m
// matches nothing.
func Filter(events []trail.Event, m Match) []trail.Event {
	if m.Validate() != nil {
		return nil
	}
	var out []trail.Event
	for _, ev := range events {
		if m.Matches(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// RequireRecorded fails the test unless src holds an event matching m, and
// returns the first such event. The failure lists what was recorded.
func RequireRecorded(tb testing.TB, src Source, m Match) trail.Event {
	tb.Helper()
	if err := m.Validate(); err != nil {
		tb.Fatalf("%v", err)
		return trail.Event{}
	}
	events := src.Events()
	got := Filter(events, m)
	if len(got) == 0 {
		tb.Fatalf("trailtest: no event matches %s; %s%s", m, listEvents("recorded", events), listRejected(src)+listRolledBack(src))
		return trail.Event{}
	}
	return got[0]
}

// RequireNotRecorded fails the test if src holds an event matching m, and
// lists those events.
func RequireNotRecorded(tb testing.TB, src Source, m Match) {
	tb.Helper()
	if err := m.Validate(); err != nil {
		tb.Fatalf("%v", err)
		return
	}
	if got := Filter(src.Events(), m); len(got) > 0 {
		tb.Fatalf("trailtest: want no event matching %s; %s", m, listEvents("matching", got))
	}
}

// RequireCount fails the test unless exactly n events of src match m, and
// returns them, oldest first.
func RequireCount(tb testing.TB, src Source, m Match, n int) []trail.Event {
	tb.Helper()
	if err := m.Validate(); err != nil {
		tb.Fatalf("%v", err)
		return nil
	}
	events := src.Events()
	got := Filter(events, m)
	if len(got) != n {
		tb.Fatalf("trailtest: %d events match %s, want %d; %s%s", len(got), m, n, listEvents("recorded", events), listRejected(src)+listRolledBack(src))
		return nil
	}
	return got
}

// maxListed bounds the events a failure message lists.
const maxListed = 50

func listEvents(what string, events []trail.Event) string {
	if len(events) == 0 {
		return what + ": none"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%d):", what, len(events))
	for i, ev := range events {
		if i == maxListed {
			fmt.Fprintf(&b, "\n  … and %d more", len(events)-maxListed)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(FormatEvent(ev))
	}
	return b.String()
}

// listRejected lists the failed recordings of src, when it keeps them.
func listRejected(src Source) string {
	r, ok := src.(interface{ Rejected() []error })
	if !ok {
		return ""
	}
	errs := r.Rejected()
	if len(errs) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nrejected as invalid (%d):", len(errs))
	for i, err := range errs {
		if i == maxListed {
			fmt.Fprintf(&b, "\n  … and %d more", len(errs)-maxListed)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(err.Error())
	}
	return b.String()
}

// FormatEvent renders ev on one line, in the CLI's terms, for failure
// messages: time, tenant, actor, action, target, outcome, changed fields and
// description.
func FormatEvent(ev trail.Event) string {
	var b strings.Builder
	b.WriteString(ev.OccurredAt.UTC().Format(time.RFC3339))
	tenant := ev.Tenant
	if tenant == "" {
		tenant = "(platform)"
	}
	fmt.Fprintf(&b, " tenant=%s actor=%s action=%s", tenant, ev.Actor, ev.Action)
	if !ev.Target.IsZero() {
		fmt.Fprintf(&b, " target=%s", ev.Target)
	}
	if ev.Outcome != "" && ev.Outcome != trail.OutcomeSuccess {
		fmt.Fprintf(&b, " outcome=%s", ev.Outcome)
	}
	if len(ev.Changes) > 0 {
		fields := make([]string, len(ev.Changes))
		for i, c := range ev.Changes {
			fields[i] = c.Field
		}
		fmt.Fprintf(&b, " changed=%s", strings.Join(slices.Compact(fields), ","))
	}
	if ev.Description != "" {
		fmt.Fprintf(&b, " %q", ev.Description)
	}
	return b.String()
}

package trailstoretest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

// Harness tells Run how to get stores.
type Harness struct {
	// NewStore returns a new, empty store for one test. It is called once per
	// subtest, possibly from parallel subtests, and must arrange with
	// t.Cleanup to close the store and remove whatever it created.
	NewStore func(t *testing.T) trail.Store
	// Serial runs the subtests one at a time, for stores that cannot give
	// parallel tests separate stores.
	Serial bool
}

// TxHarness tells RunTx how to get stores and drive the caller's
// transactions of type TTx (*sql.Tx, pgx.Tx).
type TxHarness[TTx any] struct {
	// NewStore is as in Harness.
	NewStore func(t *testing.T) trail.TxStore[TTx]
	// Begin starts a transaction on the database behind s. It may call
	// t.Fatal; the suite rolls back on cleanup whatever it did not finish.
	Begin func(ctx context.Context, t *testing.T, s trail.TxStore[TTx]) TTx
	// Commit and Rollback end tx.
	Commit   func(ctx context.Context, tx TTx) error
	Rollback func(ctx context.Context, tx TTx) error
	// Serial is as in Harness.
	Serial bool
}

// base is the suite's reference time: a fixed instant in the past, so that
// counts fall on known UTC days and no event is rejected as future.
var base = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

// at returns base plus d.
func at(d time.Duration) time.Time { return base.Add(d) }

const (
	hour = time.Hour
	day  = 24 * time.Hour
)

// event returns a valid, normalized event with the given action, in tenant,
// at base+offset; opts adjust it before normalization.
func event(t testing.TB, tenant, action string, offset time.Duration, opts ...func(*trail.Event)) trail.Event {
	t.Helper()
	ev := trail.Event{
		ID:         uuid.Must(uuid.NewV7()),
		OccurredAt: at(offset),
		Tenant:     tenant,
		Actor:      trail.Actor{Type: trail.ActorUser, ID: "u1"},
		Action:     action,
	}
	for _, o := range opts {
		o(&ev)
	}
	return norm(t, ev)
}

// norm normalizes and validates ev, as trail.Client would before Append.
func norm(t testing.TB, ev trail.Event) trail.Event {
	t.Helper()
	if err := ev.Normalize(); err != nil {
		t.Fatalf("suite bug: normalize: %v", err)
	}
	if err := ev.Validate(); err != nil {
		t.Fatalf("suite bug: invalid event: %v", err)
	}
	return ev
}

func actor(typ trail.ActorType, id string) func(*trail.Event) {
	return func(ev *trail.Event) { ev.Actor = trail.Actor{Type: typ, ID: id} }
}

func target(typ, id string) func(*trail.Event) {
	return func(ev *trail.Event) { ev.Target = trail.Target{Type: typ, ID: id} }
}

func describe(s string) func(*trail.Event) {
	return func(ev *trail.Event) { ev.Description = s }
}

func outcome(o trail.Outcome) func(*trail.Event) {
	return func(ev *trail.Event) { ev.Outcome = o }
}

func changes(fields ...string) func(*trail.Event) {
	return func(ev *trail.Event) {
		for i, f := range fields {
			ev.Changes = append(ev.Changes, trail.Changed(f, i, i+1))
		}
	}
}

func withID(id uuid.UUID) func(*trail.Event) {
	return func(ev *trail.Event) { ev.ID = id }
}

// mustAppend appends events and fails the test on error or on a result that
// does not match the batch.
func mustAppend(t testing.TB, s trail.Store, events ...trail.Event) []trail.Result {
	t.Helper()
	res, err := s.Append(context.Background(), events)
	if err != nil {
		t.Fatalf("Append(%d events): %v", len(events), err)
	}
	if len(res) != len(events) {
		t.Fatalf("Append(%d events) returned %d results", len(events), len(res))
	}
	for i := range res {
		if res[i].ID != events[i].ID {
			t.Fatalf("Append: result %d has ID %s, event has %s (results must be in batch order)", i, res[i].ID, events[i].ID)
		}
	}
	return res
}

// stored returns events as the store should give them back: RecordedAt taken
// from the append results when the event had none.
func stored(events []trail.Event, res []trail.Result) []trail.Event {
	out := slices.Clone(events)
	for i := range out {
		if out[i].RecordedAt.IsZero() {
			out[i].RecordedAt = res[i].RecordedAt
		}
	}
	return out
}

// queryAll follows cursors from q to the end and returns every event, failing
// on a repeated event or an endless walk.
func queryAll(t testing.TB, s trail.Store, q trail.Query) []trail.Event {
	t.Helper()
	var all []trail.Event
	seen := map[uuid.UUID]bool{}
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatalf("query %+v: more than 10000 pages", q)
		}
		p, err := s.Query(context.Background(), q)
		if err != nil {
			t.Fatalf("Query(%s): %v", showQuery(q), err)
		}
		if len(p.Events) > q.EffectiveLimit() {
			t.Fatalf("Query(%s): %d events on a page, limit %d", showQuery(q), len(p.Events), q.EffectiveLimit())
		}
		for _, ev := range p.Events {
			if seen[ev.ID] {
				t.Fatalf("Query(%s): event %s returned twice across pages", showQuery(q), ev.ID)
			}
			seen[ev.ID] = true
		}
		all = append(all, p.Events...)
		if p.Next == "" {
			return all
		}
		if len(p.Events) == 0 {
			t.Fatalf("Query(%s): empty page with a Next cursor", showQuery(q))
		}
		q.Cursor = p.Next
	}
}

func showQuery(q trail.Query) string {
	var parts []string
	v := reflect.ValueOf(q)
	for i := range v.NumField() {
		f := v.Field(i)
		if f.IsZero() {
			continue
		}
		val := f.Interface()
		if tm, ok := val.(time.Time); ok {
			val = tm.Format(time.RFC3339Nano)
		}
		parts = append(parts, fmt.Sprintf("%s=%v", v.Type().Field(i).Name, val))
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// newestFirst sorts events in the order every store returns: OccurredAt
// descending, then ID descending by its bytes.
func newestFirst(events []trail.Event) []trail.Event {
	out := slices.Clone(events)
	slices.SortFunc(out, func(a, b trail.Event) int {
		if c := b.OccurredAt.Compare(a.OccurredAt); c != 0 {
			return c
		}
		return bytes.Compare(b.ID[:], a.ID[:])
	})
	return out
}

// sameIDs fails unless got holds exactly the events of want, in want's order.
func sameIDs(t testing.TB, what string, want, got []trail.Event) {
	t.Helper()
	if len(want) == len(got) {
		ok := true
		for i := range want {
			if want[i].ID != got[i].ID {
				ok = false
				break
			}
		}
		if ok {
			return
		}
	}
	t.Errorf("%s: got %d events, want %d\n got: %s\nwant: %s", what, len(got), len(want), list(got), list(want))
}

func list(evs []trail.Event) string {
	var b strings.Builder
	for i, ev := range evs {
		if i == 20 {
			fmt.Fprintf(&b, " …(%d more)", len(evs)-20)
			break
		}
		fmt.Fprintf(&b, "\n  %s %s %q %s", ev.OccurredAt.Format(time.RFC3339Nano), ev.ID, ev.Tenant, ev.Action)
	}
	return b.String()
}

// diffEvent lists the fields in which got differs from want, exactly: times
// must be equal instants in UTC, JSON values equal bytes (canonical form), an
// absent old/new must stay absent and a JSON null must stay null.
func diffEvent(want, got trail.Event) []string {
	var d []string
	f := func(name string, w, g any) {
		if !reflect.DeepEqual(w, g) {
			d = append(d, fmt.Sprintf("%s: got %#v, want %#v", name, g, w))
		}
	}
	f("ID", want.ID, got.ID)
	for _, tm := range []struct {
		name string
		w, g time.Time
	}{{"OccurredAt", want.OccurredAt, got.OccurredAt}, {"RecordedAt", want.RecordedAt, got.RecordedAt}} {
		if !tm.w.Equal(tm.g) {
			d = append(d, fmt.Sprintf("%s: got %s, want %s", tm.name, tm.g.Format(time.RFC3339Nano), tm.w.Format(time.RFC3339Nano)))
		}
		if tm.g.Location() != time.UTC {
			d = append(d, fmt.Sprintf("%s: location %s, want UTC", tm.name, tm.g.Location()))
		}
	}
	f("Tenant", want.Tenant, got.Tenant)
	f("Actor", want.Actor, got.Actor)
	f("Action", want.Action, got.Action)
	f("Target", want.Target, got.Target)
	f("Outcome", want.Outcome, got.Outcome)
	f("Description", want.Description, got.Description)
	if len(want.Changes) != len(got.Changes) {
		d = append(d, fmt.Sprintf("Changes: got %d, want %d", len(got.Changes), len(want.Changes)))
	} else {
		for i := range want.Changes {
			w, g := want.Changes[i], got.Changes[i]
			f(fmt.Sprintf("Changes[%d].Field", i), w.Field, g.Field)
			f(fmt.Sprintf("Changes[%d].Redacted", i), w.Redacted, g.Redacted)
			for _, v := range []struct {
				name string
				w, g json.RawMessage
			}{{"Old", w.Old, g.Old}, {"New", w.New, g.New}} {
				if (v.w == nil) != (v.g == nil) || !bytes.Equal(v.w, v.g) {
					d = append(d, fmt.Sprintf("Changes[%d].%s: got %s (nil=%t), want %s (nil=%t)", i, v.name, v.g, v.g == nil, v.w, v.w == nil))
				}
			}
		}
	}
	if len(want.Metadata) != 0 || len(got.Metadata) != 0 {
		f("Metadata", want.Metadata, got.Metadata)
	}
	f("RequestID", want.RequestID, got.RequestID)
	f("TraceID", want.TraceID, got.TraceID)
	f("SpanID", want.SpanID, got.SpanID)
	f("Source", want.Source, got.Source)
	f("SchemaVersion", want.SchemaVersion, got.SchemaVersion)
	return d
}

func sameEvent(t testing.TB, what string, want, got trail.Event) {
	t.Helper()
	if d := diffEvent(want, got); len(d) > 0 {
		t.Errorf("%s: event %s differs:\n  %s", what, want.ID, strings.Join(d, "\n  "))
	}
}

// matches is the reference model of trail.Query's filters, against which the
// stores are checked.
func matches(q trail.Query, ev trail.Event) bool {
	if q.Tenant != "" && ev.Tenant != q.Tenant {
		return false
	}
	if q.ActorType != "" && ev.Actor.Type != q.ActorType {
		return false
	}
	if q.ActorID != "" && ev.Actor.ID != q.ActorID {
		return false
	}
	if q.ActorName != "" && ev.Actor.Name != q.ActorName || q.ActorEmail != "" && ev.Actor.Email != q.ActorEmail {
		return false
	}
	if !q.ActorNameDigest.IsZero() && ev.Lookup.ActorName != q.ActorNameDigest ||
		!q.ActorEmailDigest.IsZero() && ev.Lookup.ActorEmail != q.ActorEmailDigest {
		return false
	}
	if !matchAction(q.Action, ev.Action) {
		return false
	}
	if q.TargetType != "" && ev.Target.Type != q.TargetType {
		return false
	}
	if q.TargetID != "" && ev.Target.ID != q.TargetID {
		return false
	}
	if !q.Since.IsZero() && ev.OccurredAt.Before(q.Since) {
		return false
	}
	if !q.Until.IsZero() && !ev.OccurredAt.Before(q.Until) {
		return false
	}
	if q.Outcome != "" && ev.Outcome != q.Outcome {
		return false
	}
	if q.Field != "" && !slices.ContainsFunc(ev.Changes, func(c trail.Change) bool { return c.Field == q.Field }) {
		return false
	}
	if q.Metadata != "" && !trail.MetadataContains(ev.Metadata, q.Metadata) {
		return false
	}
	if q.Text != "" {
		want := words(q.Text)
		if len(want) == 0 {
			return false
		}
		have := words(ev.Description)
		for _, w := range want {
			if !slices.Contains(have, w) {
				return false
			}
		}
	}
	return true
}

func matchAction(filter, action string) bool {
	f, err := trail.ParseActionFilter(filter)
	return err == nil && f.Match(action)
}

// words splits text into lower-cased runs of letters and digits: the words
// full-text search looks for.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

func filter(q trail.Query, events []trail.Event) []trail.Event {
	var out []trail.Event
	for _, ev := range events {
		if matches(q, ev) {
			out = append(out, ev)
		}
	}
	return newestFirst(out)
}

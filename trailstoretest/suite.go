package trailstoretest

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

// Run runs the conformance suite against the stores h makes. Every case is
// a subtest with its own empty store.
func Run(t *testing.T, h Harness) {
	if h.NewStore == nil {
		t.Fatal("trailstoretest: Harness.NewStore is nil")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !h.Serial {
				t.Parallel()
			}
			c.fn(t, h.NewStore(t))
		})
	}
}

var cases = []struct {
	name string
	fn   func(t *testing.T, s trail.Store)
}{
	{"AppendOne", testAppendOne},
	{"AppendBatchInOrder", testAppendBatch},
	{"IdempotentAcrossCalls", testIdempotentAcrossCalls},
	{"IDConflict", testIDConflict},
	{"IdempotentWithinBatch", testIdempotentWithinBatch},
	{"RecordedAt", testRecordedAt},
	{"RoundTrip", testRoundTrip},
	{"GetNotFound", testGetNotFound},
	{"Filters", testFilters},
	{"ActionPrefix", testActionPrefix},
	{"ActionPatterns", testActionPatterns},
	{"MetadataSearch", testMetadataSearch},
	{"TimeRange", testTimeRange},
	{"TextSearch", testTextSearch},
	{"TenantIsolation", testTenantIsolation},
	{"OrderTies", testOrderTies},
	{"Pagination", testPagination},
	{"SubjectPagesAcrossDays", testSubjectPagesAcrossDays},
	{"PaginationWhileAppending", testPaginationWhileAppending},
	{"InvalidCursor", testInvalidCursor},
	{"InvalidQuery", testInvalidQuery},
	{"TenantScope", testTenantScope},
	{"Limits", testLimits},
	{"Counts", testCounts},
	{"CountsEveryFilter", testCountsEveryFilter},
	{"ActorNameEmail", testActorNameEmail},
	{"Tenants", testTenants},
	{"AtomicBatch", testAtomicBatch},
	{"Concurrent", testConcurrent},
}

func testAppendOne(t *testing.T, s trail.Store) {
	ev := event(t, "acme", "user.delete", 0, target("user", "17"))
	res := mustAppend(t, s, ev)
	if res[0].Duplicate {
		t.Fatalf("first append reported Duplicate")
	}
	if res[0].RecordedAt.IsZero() {
		t.Fatalf("result RecordedAt is zero for a new event")
	}
	got, err := s.Get(context.Background(), ev.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	sameEvent(t, "Get after Append", stored([]trail.Event{ev}, res)[0], got)
}

func testAppendBatch(t *testing.T, s trail.Store) {
	var evs []trail.Event
	for i := range 25 {
		evs = append(evs, event(t, "acme", "user.update", time.Duration(i)*time.Minute, target("user", fmt.Sprint(i))))
	}
	res := mustAppend(t, s, evs...)
	for i, r := range res {
		if r.Duplicate {
			t.Errorf("result %d: Duplicate for a new event", i)
		}
	}
	want := stored(evs, res)
	for _, ev := range want {
		got, err := s.Get(context.Background(), ev.ID)
		if err != nil {
			t.Fatalf("Get %s: %v", ev.ID, err)
		}
		sameEvent(t, "Get after batch Append", ev, got)
	}
	sameIDs(t, "all events", newestFirst(evs), queryAll(t, s, trail.Query{AllTenants: true}))
}

func testIdempotentAcrossCalls(t *testing.T, s trail.Store) {
	first := event(t, "acme", "user.delete", 0, describe("first"))
	res1 := mustAppend(t, s, first)
	// A retry: same ID and the same event (tenant, action, actor, target,
	// outcome), other details differing: the first version stays.
	again := first
	again.Description = "second"
	again.RecordedAt = time.Time{}
	res2 := mustAppend(t, s, again)
	if !res2[0].Duplicate {
		t.Fatalf("second append of %s: Duplicate=false", first.ID)
	}
	if !res2[0].RecordedAt.IsZero() {
		t.Errorf("duplicate result RecordedAt = %s, want zero", res2[0].RecordedAt)
	}
	// A batch mixing a stored event and a new one.
	other := event(t, "acme", "user.create", hour)
	res3 := mustAppend(t, s, first, other)
	if !res3[0].Duplicate || res3[1].Duplicate {
		t.Fatalf("mixed batch: Duplicate = %t, %t; want true, false", res3[0].Duplicate, res3[1].Duplicate)
	}
	got, err := s.Get(context.Background(), first.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameEvent(t, "after duplicates", stored([]trail.Event{first}, res1)[0], got)
	all := queryAll(t, s, trail.Query{AllTenants: true})
	if len(all) != 2 {
		t.Fatalf("store holds %d events, want 2:%s", len(all), list(all))
	}
}

// testIDConflict: an ID held by another event — another tenant's, or one of
// the same tenant with another action, actor, target or outcome — is refused
// with an *IDConflictError that says nothing of that event, and nothing of
// the batch is written; the event holding the ID is untouched.
func testIDConflict(t *testing.T, s trail.Store) {
	ctx := context.Background()
	held := event(t, "acme", "user.delete", 0, describe("acme's own"))
	res := mustAppend(t, s, held)
	variants := map[string]func(ev *trail.Event){
		"another tenant":  func(ev *trail.Event) { ev.Tenant = "globex" },
		"another action":  func(ev *trail.Event) { ev.Action = "user.create" },
		"another actor":   func(ev *trail.Event) { ev.Actor.ID = "other" },
		"another target":  func(ev *trail.Event) { ev.Target.ID = "other" },
		"another outcome": func(ev *trail.Event) { ev.Outcome = trail.OutcomeDenied },
	}
	for name, change := range variants {
		reuse := held
		reuse.RecordedAt = time.Time{}
		change(&reuse)
		fresh := event(t, "globex", "user.create", hour)
		_, err := s.Append(ctx, []trail.Event{fresh, reuse})
		var ce *trail.IDConflictError
		if !errors.As(err, &ce) || !errors.Is(err, trail.ErrIDConflict) || ce.Index != 1 || ce.ID != held.ID {
			t.Fatalf("%s: Append = %v, want an IDConflictError for event 1", name, err)
		}
		for _, leak := range []string{"acme", "user.delete", "acme's own"} {
			if strings.Contains(err.Error(), leak) && !strings.Contains(reuse.Tenant+reuse.Action, leak) {
				t.Errorf("%s: the error %q tells %q about the event holding the ID", name, err, leak)
			}
		}
		if _, err := s.Get(ctx, fresh.ID); !errors.Is(err, trail.ErrNotFound) {
			t.Errorf("%s: the batch's other event was stored (%v)", name, err)
		}
	}
	// The same ID twice in one batch for two different events.
	a := event(t, "acme", "user.create", 2*hour)
	b := a
	b.Action = "user.update"
	if _, err := s.Append(ctx, []trail.Event{a, b}); !errors.Is(err, trail.ErrIDConflict) {
		t.Errorf("conflict within a batch: %v", err)
	}
	if _, err := s.Get(ctx, a.ID); !errors.Is(err, trail.ErrNotFound) {
		t.Errorf("a batch with a conflict stored its first event (%v)", err)
	}
	got, err := s.Get(ctx, held.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameEvent(t, "the event holding the ID", stored([]trail.Event{held}, res)[0], got)
	if all := queryAll(t, s, trail.Query{AllTenants: true}); len(all) != 1 {
		t.Fatalf("store holds %d events, want 1:%s", len(all), list(all))
	}
}

func testIdempotentWithinBatch(t *testing.T, s trail.Store) {
	a := event(t, "acme", "user.create", 0)
	b := event(t, "acme", "user.update", hour)
	res := mustAppend(t, s, a, b, a, b, a)
	want := []bool{false, false, true, true, true}
	for i, r := range res {
		if r.Duplicate != want[i] {
			t.Errorf("result %d: Duplicate=%t, want %t", i, r.Duplicate, want[i])
		}
	}
	all := queryAll(t, s, trail.Query{AllTenants: true})
	if len(all) != 2 {
		t.Fatalf("store holds %d events, want 2:%s", len(all), list(all))
	}
	c, err := s.Counts(context.Background(), trail.CountQuery{AllTenants: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := total(c); n != 2 {
		t.Errorf("Counts total %d, want 2", n)
	}
}

func testRecordedAt(t *testing.T, s trail.Store) {
	// Zero: the store stamps it with its clock. The bounds allow for a
	// database server whose clock is not the test's.
	before := time.Now().Add(-time.Minute)
	ev := event(t, "acme", "user.create", 0)
	res := mustAppend(t, s, ev)
	after := time.Now().Add(time.Minute)
	rec := res[0].RecordedAt
	if rec.Before(before) || rec.After(after) {
		t.Errorf("RecordedAt %s not near now", rec)
	}
	if rec.Truncate(time.Microsecond) != rec {
		t.Errorf("RecordedAt %s has sub-microsecond precision; stores keep microseconds", rec.Format(time.RFC3339Nano))
	}
	got, err := s.Get(context.Background(), ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.RecordedAt.Equal(rec) {
		t.Errorf("stored RecordedAt %s, result said %s", got.RecordedAt.Format(time.RFC3339Nano), rec.Format(time.RFC3339Nano))
	}
	// Set: kept exactly.
	set := event(t, "acme", "user.create", hour, func(ev *trail.Event) { ev.RecordedAt = at(2*hour + 123456*time.Microsecond) })
	res = mustAppend(t, s, set)
	if !res[0].RecordedAt.Equal(set.RecordedAt) {
		t.Errorf("result RecordedAt %s, want the event's %s", res[0].RecordedAt, set.RecordedAt)
	}
	got, err = s.Get(context.Background(), set.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameEvent(t, "explicit RecordedAt", set, got)
}

// fullEvent sets every field, with values that trip up naive storage.
func fullEvent(t testing.TB) trail.Event {
	return norm(t, trail.Event{
		ID:         uuid.Must(uuid.NewV7()),
		OccurredAt: at(-3*day + 987654*time.Microsecond),
		RecordedAt: at(-3*day + 2*time.Second + 1*time.Microsecond),
		Tenant:     "Tenant-1.x:y_z",
		Actor: trail.Actor{
			Type: trail.ActorUser, ID: "user-42", Name: "Zoë O'Brien \"ZO\" 日本語 🚀", Email: "zoe@example.com",
			IP: "2001:db8::1", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) <b>&amp;",
			OnBehalfOf: &trail.Actor{Type: trail.ActorUser, ID: "cust-7", Name: "Customer Seven", Email: "c7@example.org"},
		},
		Action:      "subscription.plan.change",
		Target:      trail.Target{Type: "billing.subscription", ID: "sub_123/ä", Name: "Pro plan — yearly"},
		Outcome:     trail.OutcomeDenied,
		Description: "Changed plan to \"pro\" — 100% of quota; ∑ ünïcödé\ttab\nnewline 'quoted' \\ backslash",
		Changes: []trail.Change{
			trail.Changed("plan", "free", "pro"),
			{Field: "added", New: json.RawMessage(`{"b":[1,2.5,"x"],"a":null}`)},
			{Field: "removed", Old: json.RawMessage(`"gone"`)},
			{Field: "nulled", Old: json.RawMessage(`12`), New: json.RawMessage(`null`)},
			{Field: "from_null", Old: json.RawMessage(`null`), New: json.RawMessage(`true`)},
			{Field: "password", Redacted: true},
			{Field: "address.city", Old: json.RawMessage(`"Zürich"`), New: json.RawMessage(`"東京"`)},
			{Field: "big", Old: json.RawMessage(`1e21`), New: json.RawMessage(`-0.000001`)},
		},
		Metadata: map[string]any{
			"int":    42,
			"float":  1.25,
			"neg":    -7,
			"nested": map[string]any{"list": []any{1, "two", map[string]any{"three": 3.0}}, "empty": map[string]any{}},
			"bool":   true,
			"null":   nil,
			"text":   "<script>alert('x')</script> \u2028",
			"emptya": []any{},
		},
		RequestID:     "req-abc-123",
		TraceID:       "4bf92f3577b34da6a3ce929d0e0e4736",
		SpanID:        "00f067aa0ba902b7",
		Source:        "billing-service",
		SchemaVersion: trail.SchemaVersion,
	})
}

func testRoundTrip(t *testing.T, s trail.Store) {
	full := fullEvent(t)
	if _, ok := full.Metadata["int"].(json.Number); !ok {
		t.Fatalf("suite bug: normalized metadata number is %T, want json.Number", full.Metadata["int"])
	}
	minimal := event(t, "", "system.start", -2*day, actor(trail.ActorSystem, ""))
	anon := event(t, "acme", "auth.login", -day, actor(trail.ActorAnonymous, ""), outcome(trail.OutcomeFailure),
		func(ev *trail.Event) { ev.Changes = []trail.Change{} })
	evs := []trail.Event{full, minimal, anon}
	res := mustAppend(t, s, evs...)
	want := stored(evs, res)
	for _, w := range want {
		got, err := s.Get(context.Background(), w.ID)
		if err != nil {
			t.Fatalf("Get %s: %v", w.ID, err)
		}
		sameEvent(t, "Get", w, got)
	}
	all := queryAll(t, s, trail.Query{AllTenants: true})
	sameIDs(t, "Query", newestFirst(want), all)
	byID := map[uuid.UUID]trail.Event{}
	for _, w := range want {
		byID[w.ID] = w
	}
	for _, got := range all {
		sameEvent(t, "Query", byID[got.ID], got)
	}
}

func testGetNotFound(t *testing.T, s trail.Store) {
	mustAppend(t, s, event(t, "acme", "user.create", 0))
	_, err := s.Get(context.Background(), uuid.Must(uuid.NewV7()))
	if !errors.Is(err, trail.ErrNotFound) {
		t.Fatalf("Get of an unknown ID: err = %v, want ErrNotFound", err)
	}
	_, err = s.Get(context.Background(), uuid.Nil)
	if !errors.Is(err, trail.ErrNotFound) {
		t.Fatalf("Get of the nil UUID: err = %v, want ErrNotFound", err)
	}
}

// dataset is a small multi-tenant history with every filterable dimension
// varied, including platform events and ties on OccurredAt.
func dataset(t testing.TB) []trail.Event {
	tenants := []string{"acme", "globex", ""}
	actors := []func(*trail.Event){actor(trail.ActorUser, "u1"), actor(trail.ActorUser, "u2"), actor(trail.ActorService, "billing"), actor(trail.ActorSystem, "")}
	actions := []string{"user.create", "user.delete", "subscription.update", "subscription.plan.change", "sub.create", "auth.login"}
	targets := []func(*trail.Event){target("user", "17"), target("subscription", "s1"), target("subscription", "s2"), func(*trail.Event) {}}
	outcomes := []trail.Outcome{trail.OutcomeSuccess, trail.OutcomeSuccess, trail.OutcomeFailure, trail.OutcomeDenied}
	descs := []string{"Changed subscription plan to pro", "Deleted user Alice", "Plan downgraded to free by billing", "", "Signed in from a new device", "User alice changed the plan"}
	fields := [][]string{{"plan"}, {"status", "plan"}, nil, {"address.city"}, {"email"}}
	var evs []trail.Event
	for i := range 72 {
		// Offsets over two and a half days, each pair tied on one instant.
		off := time.Duration(i/2) * 97 * time.Minute
		evs = append(evs, event(t, tenants[i%3], actions[i%len(actions)], off,
			actors[(i/3)%len(actors)], targets[(i/2)%len(targets)], outcome(outcomes[(i/5)%len(outcomes)]),
			describe(descs[(i/4)%len(descs)]), changes(fields[i%len(fields)]...)))
	}
	return evs
}

// filterQueries are queries over dataset: each filter alone and combined.
func filterQueries() []trail.Query {
	d1 := base.Add(day)
	d3 := base.Add(3 * day)
	return []trail.Query{
		{AllTenants: true},
		{Tenant: "acme"},
		{Tenant: "globex"},
		{AllTenants: true, ActorType: trail.ActorUser},
		{AllTenants: true, ActorID: "u2"},
		{AllTenants: true, ActorType: trail.ActorService, ActorID: "billing"},
		{AllTenants: true, ActorType: trail.ActorSystem},
		{AllTenants: true, Action: "user.delete"},
		{AllTenants: true, Action: "subscription.*"},
		{AllTenants: true, Action: "subscription.plan.*"},
		{AllTenants: true, Action: "sub.*"},
		{AllTenants: true, Action: "*.delete"},
		{AllTenants: true, Action: "*.create,auth.login"},
		{AllTenants: true, Action: "!subscription.*"},
		{AllTenants: true, Action: "*.*e,!user.*"},
		{Tenant: "acme", Action: "subscription.*,user.delete", Field: "plan"},
		{AllTenants: true, TargetType: "subscription"},
		{AllTenants: true, TargetID: "17"},
		{AllTenants: true, TargetType: "subscription", TargetID: "s2"},
		{AllTenants: true, Since: d1},
		{AllTenants: true, Until: d1},
		{AllTenants: true, Since: d1, Until: d3},
		{AllTenants: true, Outcome: trail.OutcomeFailure},
		{AllTenants: true, Outcome: trail.OutcomeDenied},
		{AllTenants: true, Field: "plan"},
		{AllTenants: true, Field: "address.city"},
		{AllTenants: true, Field: "address"},
		{AllTenants: true, Text: "plan"},
		{AllTenants: true, Text: "ALICE"},
		{AllTenants: true, Text: "plan pro"},
		{Tenant: "acme", Action: "subscription.*"},
		{Tenant: "acme", ActorType: trail.ActorUser, ActorID: "u1"},
		{Tenant: "globex", TargetType: "subscription", TargetID: "s1"},
		{Tenant: "acme", Since: d1, Until: d3, Action: "user.*"},
		{Tenant: "acme", Field: "plan", Text: "plan"},
		{Tenant: "globex", Outcome: trail.OutcomeSuccess, ActorID: "billing"},
		{AllTenants: true, Action: "subscription.*", Field: "plan", Since: d1, Outcome: trail.OutcomeSuccess},
		{Tenant: "acme", ActorID: "u1", Action: "subscription.update", TargetType: "subscription", TargetID: "s1", Since: base, Until: d3, Outcome: trail.OutcomeSuccess, Field: "plan", Text: "plan"},
		{Tenant: "nobody"},
		{AllTenants: true, Action: "nothing.here"},
	}
}

func testFilters(t *testing.T, s trail.Store) {
	evs := dataset(t)
	mustAppend(t, s, evs...)
	queries := filterQueries()
	nonEmpty := 0
	for _, q := range queries {
		want := filter(q, evs)
		if len(want) > 0 {
			nonEmpty++
		}
		for _, limit := range []int{0, 7} {
			q.Limit = limit
			sameIDs(t, "Query"+showQuery(q), want, queryAll(t, s, q))
		}
	}
	if nonEmpty < len(queries)-4 {
		t.Fatalf("suite bug: only %d of %d filter queries match anything", nonEmpty, len(queries))
	}
}

func testActionPrefix(t *testing.T, s trail.Store) {
	upd := event(t, "acme", "subscription.update", 0)
	plan := event(t, "acme", "subscription.plan.change", hour)
	sub := event(t, "acme", "sub.create", 2*hour)
	subs := event(t, "acme", "subscriptions.list", 3*hour)
	under := event(t, "acme", "sub_x.create", 4*hour)
	wild := event(t, "acme", "subax.create", 5*hour) // matched by a LIKE 'sub_x.%'
	mustAppend(t, s, upd, plan, sub, subs, under, wild)
	for _, c := range []struct {
		action string
		want   []trail.Event
	}{
		{"subscription.*", []trail.Event{plan, upd}},
		{"sub.*", []trail.Event{sub}},
		{"subscription.plan.*", []trail.Event{plan}},
		{"subscriptions.*", []trail.Event{subs}},
		{"sub_x.*", []trail.Event{under}},
		{"subscription.update", []trail.Event{upd}},
		{"subscription.plan", nil},
	} {
		got := queryAll(t, s, trail.Query{Tenant: "acme", Action: c.action})
		sameIDs(t, "action "+c.action, c.want, got)
	}
}

// testActionPatterns: action filters beyond a prefix (trail.ParseActionFilter):
// a star anywhere, any-of lists and negation, with the characters a SQL
// pattern would read as wildcards (_) taken literally.
func testActionPatterns(t *testing.T, s trail.Store) {
	udel := event(t, "acme", "user.delete", 0)
	kdel := event(t, "acme", "api_key.delete", hour)
	deep := event(t, "acme", "user.profile.delete", 2*hour)
	deleted := event(t, "acme", "user.deleted", 3*hour)
	create := event(t, "acme", "user.create", 4*hour)
	read := event(t, "acme", "audit.read", 5*hour)
	apix := event(t, "acme", "apix.key.delete", 6*hour) // matched by a LIKE 'api_key...' taking _ as a wildcard
	other := event(t, "globex", "user.delete", 7*hour)
	mustAppend(t, s, udel, kdel, deep, deleted, create, read, apix, other)
	for _, c := range []struct {
		action string
		want   []trail.Event
	}{
		{"*.delete", []trail.Event{apix, deep, kdel, udel}},
		{"user.*.delete", []trail.Event{deep}},
		{"api_*.delete", []trail.Event{kdel}},
		{"api_key.*", []trail.Event{kdel}},
		{"user.delete,user.create", []trail.Event{create, udel}},
		{"*.delete,!user.*", []trail.Event{apix, kdel}},
		{"!audit.*", []trail.Event{apix, create, deleted, deep, kdel, udel}},
		{"!audit.*,!*.delete", []trail.Event{create, deleted}},
		{"user.*,audit.read,!user.delete*", []trail.Event{read, create, deep}},
		{"*e*d", []trail.Event{read, deleted}},
	} {
		got := queryAll(t, s, trail.Query{Tenant: "acme", Action: c.action})
		sameIDs(t, "action "+c.action, c.want, got)
		cs, err := s.Counts(context.Background(), trail.CountQuery{Tenant: "acme", Action: c.action})
		if err != nil {
			t.Fatalf("Counts %s: %v", c.action, err)
		}
		if n := total(cs); n != int64(len(c.want)) {
			t.Errorf("Counts %s: %d events, want %d", c.action, n, len(c.want))
		}
	}
}

// testMetadataSearch: Query.Metadata finds a word or value in the metadata's
// keys and values, ASCII case ignored, with LIKE's wildcards taken
// literally, and refuses JSON syntax.
func testMetadataSearch(t *testing.T, s trail.Store) {
	meta := func(m map[string]any) func(*trail.Event) { return func(ev *trail.Event) { ev.Metadata = m } }
	ticket := event(t, "acme", "user.update", 0, meta(map[string]any{"ticket": "OPS-311", "n": 3}))
	nested := event(t, "acme", "user.update", hour, meta(map[string]any{"change": map[string]any{"ref": "ops-3110", "tags": []any{"Billing", "EU"}}}))
	pct := event(t, "acme", "user.update", 2*hour, meta(map[string]any{"rate": "50% off", "key_name": "a_b"}))
	plain := event(t, "acme", "user.update", 3*hour)
	other := event(t, "globex", "user.update", 4*hour, meta(map[string]any{"ticket": "OPS-311"}))
	mustAppend(t, s, ticket, nested, pct, plain, other)
	for _, c := range []struct {
		text string
		want []trail.Event
	}{
		{"OPS-311", []trail.Event{nested, ticket}},
		{"ops-311", []trail.Event{nested, ticket}},
		{"OPS-3110", []trail.Event{nested}},
		{"billing", []trail.Event{nested}},
		{"ticket", []trail.Event{ticket}},
		{"50%", []trail.Event{pct}},
		{"0%", []trail.Event{pct}},
		{"a_b", []trail.Event{pct}},
		{"a%b", nil},
		{"_", []trail.Event{pct}},
		{"nothing", nil},
	} {
		got := queryAll(t, s, trail.Query{Tenant: "acme", Metadata: c.text})
		sameIDs(t, "metadata "+c.text, c.want, got)
	}
	for _, bad := range []string{`"ticket"`, "a:b", "{", "a,b", `a\b`, "<b>", "a&b", "a\x01"} {
		if _, err := s.Query(context.Background(), trail.Query{Tenant: "acme", Metadata: bad}); !errors.Is(err, trail.ErrInvalidQuery) {
			t.Errorf("Metadata %q: err = %v, want ErrInvalidQuery", bad, err)
		}
	}
}

func testTimeRange(t *testing.T, s trail.Store) {
	var evs []trail.Event
	for i := range 10 {
		evs = append(evs, event(t, "acme", "user.update", time.Duration(i)*hour))
	}
	// Microsecond neighbours of a bound.
	bound := at(5 * hour)
	evs = append(evs, event(t, "acme", "user.update", 5*hour-time.Microsecond), event(t, "acme", "user.update", 5*hour+time.Microsecond))
	mustAppend(t, s, evs...)
	for _, q := range []trail.Query{
		{AllTenants: true, Since: bound},
		{AllTenants: true, Until: bound},
		{AllTenants: true, Since: bound, Until: at(5*hour + time.Microsecond)},
		{AllTenants: true, Since: at(5*hour - time.Microsecond), Until: bound},
		{AllTenants: true, Since: at(2 * hour), Until: at(7 * hour)},
		{AllTenants: true, Since: at(100 * hour)},
		{AllTenants: true, Until: at(-hour)},
	} {
		sameIDs(t, "Query"+showQuery(q), filter(q, evs), queryAll(t, s, q))
	}
	got := queryAll(t, s, trail.Query{AllTenants: true, Since: bound, Until: at(5*hour + time.Microsecond)})
	if len(got) != 1 || !got[0].OccurredAt.Equal(bound) {
		t.Errorf("since is inclusive, until exclusive: got %s", list(got))
	}
}

func testTextSearch(t *testing.T, s trail.Store) {
	evs := []trail.Event{
		event(t, "acme", "subscription.update", 0, describe("Changed subscription plan to pro")),
		event(t, "acme", "subscription.update", hour, describe("Plan downgraded: PRO to free.")),
		event(t, "acme", "user.delete", 2*hour, describe("Deleted user alice (admin request)")),
		event(t, "acme", "user.update", 3*hour, describe("Renamed project 100% done_flag")),
		event(t, "acme", "user.update", 4*hour),
		event(t, "globex", "subscription.update", 5*hour, describe("Changed subscription plan to pro")),
	}
	mustAppend(t, s, evs...)
	for _, text := range []string{
		"plan", "PLAN", "Pro", "plan pro", "pro plan", "alice", "admin request", "deleted", "free", "100",
		"enterprise", "plan enterprise",
		// Hostile strings: never an error, never a wildcard or operator.
		`"`, `'`, `*`, `pla*`, `pla%`, `pla_`, `%`, `_`, `%%`, `OR`, `plan OR enterprise`, `plan AND enterprise`,
		`NEAR(plan pro)`, `NEAR(`, `plan"`, `"plan`, `description:plan`, `-plan`, `^plan`,
		`plan'; DROP TABLE events; --`, `\`, `()`, `{plan}`, `a:b`, `::`, "\u00a0", "  ",
	} {
		q := trail.Query{Tenant: "acme", Text: text}
		p, err := s.Query(context.Background(), q)
		if err != nil {
			t.Errorf("Text %q: %v", text, err)
			continue
		}
		sameIDs(t, fmt.Sprintf("Text %q", text), filter(q, evs), p.Events)
	}
	// Sanity of the reference: the hostile strings above must not be vacuous.
	if n := len(filter(trail.Query{AllTenants: true, Text: "plan"}, evs)); n != 3 {
		t.Fatalf("suite bug: %d events contain plan", n)
	}
}

func total(cs []trail.Count) int64 {
	var n int64
	for _, c := range cs {
		n += c.N
	}
	return n
}

func testTenantIsolation(t *testing.T, s trail.Store) {
	evs := dataset(t)
	// Tenant names that are prefixes of each other must not leak.
	evs = append(evs,
		event(t, "acme2", "user.create", 0),
		event(t, "acm", "user.create", 0),
		event(t, "ACME", "user.create", 0))
	mustAppend(t, s, evs...)
	for _, tenant := range []string{"acme", "globex", "acme2", "acm", "ACME"} {
		for _, q := range []trail.Query{
			{Tenant: tenant},
			{Tenant: tenant, Action: "user.*"},
			{Tenant: tenant, Text: "plan"},
			{Tenant: tenant, Field: "plan"},
			{Tenant: tenant, TargetType: "subscription", TargetID: "s1"},
			{Tenant: tenant, ActorType: trail.ActorSystem},
		} {
			got := queryAll(t, s, q)
			for _, ev := range got {
				if ev.Tenant != tenant {
					t.Fatalf("Query%s returned event %s of tenant %q", showQuery(q), ev.ID, ev.Tenant)
				}
			}
			sameIDs(t, "Query"+showQuery(q), filter(q, evs), got)
		}
		cs, err := s.Counts(context.Background(), trail.CountQuery{Tenant: tenant})
		if err != nil {
			t.Fatal(err)
		}
		if n, want := total(cs), int64(len(filter(trail.Query{Tenant: tenant}, evs))); n != want {
			t.Errorf("Counts tenant %q: total %d, want %d", tenant, n, want)
		}
	}
	all := queryAll(t, s, trail.Query{AllTenants: true})
	platform := 0
	for _, ev := range all {
		if ev.Tenant == "" {
			platform++
		}
	}
	if len(all) != len(evs) || platform == 0 {
		t.Errorf("AllTenants must return every event including platform events: got %d (%d platform), want %d", len(all), platform, len(evs))
	}
}

func testOrderTies(t *testing.T, s trail.Store) {
	// Five events at one instant with IDs whose byte order is known, plus
	// neighbours; appended in an order that is neither.
	mk := func(b byte, off time.Duration) trail.Event {
		id := uuid.Must(uuid.NewV7())
		id[0], id[15] = b, b // first byte decides the order
		return event(t, "acme", "user.update", off, withID(id))
	}
	tied := []trail.Event{mk(0x30, hour), mk(0xf0, hour), mk(0x10, hour), mk(0x80, hour), mk(0x7f, hour)}
	evs := append(slices.Clone(tied), mk(0x00, hour+time.Microsecond), mk(0xff, hour-time.Microsecond))
	mustAppend(t, s, evs[3], evs[0], evs[6], evs[1], evs[5], evs[4], evs[2])
	want := newestFirst(evs)
	if want[0].ID[0] != 0x00 || want[1].ID[0] != 0xf0 || want[5].ID[0] != 0x10 || want[6].ID[0] != 0xff {
		t.Fatalf("suite bug: reference order wrong: %s", list(want))
	}
	sameIDs(t, "newest first, ties by ID descending", want, queryAll(t, s, trail.Query{AllTenants: true}))
	// Pages that split the tie must neither skip nor repeat.
	for _, limit := range []int{1, 2, 3} {
		sameIDs(t, fmt.Sprintf("limit %d", limit), want, queryAll(t, s, trail.Query{AllTenants: true, Limit: limit}))
	}
}

func testPagination(t *testing.T, s trail.Store) {
	var evs []trail.Event
	for i := range 230 {
		// Runs of four events share an instant.
		evs = append(evs, event(t, []string{"acme", "globex"}[i%2], "user.update", time.Duration(i/4)*time.Minute))
	}
	mustAppend(t, s, evs...)
	for _, q := range []trail.Query{{AllTenants: true, Limit: 10}, {AllTenants: true, Limit: 1}, {AllTenants: true, Limit: 229}, {AllTenants: true, Limit: 230}, {AllTenants: true, Limit: 231}, {Tenant: "acme", Limit: 9}, {AllTenants: true, Limit: 0}} {
		want := filter(q, evs)
		sameIDs(t, "Query"+showQuery(q), want, queryAll(t, s, q))
	}
	// A page that ends exactly at the last event says there is no more.
	p, err := s.Query(context.Background(), trail.Query{AllTenants: true, Limit: 230})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 230 || p.Next != "" {
		t.Errorf("a page holding the last event: %d events, Next=%q; want 230 and no cursor", len(p.Events), p.Next)
	}
}

// testSubjectPagesAcrossDays pages one actor's, one object's and one
// action's events over ten weeks (UTC day and month boundaries, events a
// microsecond either side of midnight, days without events, and a backfill
// appended after newer events), the way stores that split or lead their
// subject indexes by time read them: page by page, bounded or not.
func testSubjectPagesAcrossDays(t *testing.T, s trail.Store) {
	midnight := time.Date(2025, 3, 11, 0, 0, 0, 0, time.UTC)
	var recent, backfill []trail.Event
	for i := range 150 {
		// Every 11 hours for ten weeks from 31 December 2024 00:00 UTC:
		// two or three a day, a year's and two months' ends crossed, every
		// 24th exactly at midnight, some a microsecond off their slot.
		off := midnight.Sub(base) - 70*day + time.Duration(i)*11*hour
		if i%7 == 3 {
			off += time.Duration(i%3-1) * time.Microsecond
		}
		opts := []func(*trail.Event){actor(trail.ActorUser, []string{"u1", "u2"}[i%2]),
			target("subscription", []string{"s1", "s2", "s3"}[i%3])}
		ev := event(t, []string{"acme", "globex"}[i%5/4], []string{"subscription.update", "subscription.plan.change", "user.update"}[i%3], off, opts...)
		if i%4 == 0 {
			backfill = append(backfill, ev)
		} else {
			recent = append(recent, ev)
		}
	}
	for _, off := range []time.Duration{-time.Microsecond, 0, time.Microsecond} {
		recent = append(recent, event(t, "acme", "subscription.update", midnight.Sub(base)+off,
			actor(trail.ActorUser, "u1"), target("subscription", "s1")))
	}
	mustAppend(t, s, recent...)
	mustAppend(t, s, backfill...) // older events, appended last
	evs := append(recent, backfill...)
	since, until := midnight.Add(-40*day), midnight.Add(-12*day-5*hour)
	var checked int
	for _, q := range []trail.Query{
		{Tenant: "acme", ActorType: trail.ActorUser, ActorID: "u1"},
		{Tenant: "acme", ActorID: "u2", Since: since},
		{Tenant: "acme", ActorID: "u1", Until: until},
		{Tenant: "acme", ActorID: "u1", Since: midnight, Until: midnight.Add(time.Microsecond)},
		{AllTenants: true, TargetType: "subscription", TargetID: "s1"},
		{AllTenants: true, TargetType: "subscription", TargetID: "s2", Since: since, Until: until},
		{Tenant: "globex", TargetType: "subscription", TargetID: "s3"},
		{Tenant: "acme", TargetType: "subscription", TargetID: "s1", Since: midnight.Add(-time.Microsecond)},
		{Tenant: "acme", Action: "subscription.update"},
		{Tenant: "acme", Action: "subscription.*", Until: until},
		{Tenant: "globex", Action: "user.update", Since: since},
	} {
		want := filter(q, evs)
		if len(want) == 0 {
			t.Fatalf("suite bug: %s matches nothing", showQuery(q))
		}
		checked += len(want)
		for _, limit := range []int{1, 3, 50} {
			q.Limit = limit
			sameIDs(t, "Query"+showQuery(q), want, queryAll(t, s, q))
		}
	}
	if checked < 200 {
		t.Fatalf("suite bug: only %d events matched in all", checked)
	}
}

func testPaginationWhileAppending(t *testing.T, s trail.Store) {
	var evs []trail.Event
	for i := range 40 {
		evs = append(evs, event(t, "acme", "user.update", time.Duration(i)*time.Minute))
	}
	mustAppend(t, s, evs...)
	want := newestFirst(evs)
	q := trail.Query{Tenant: "acme", Limit: 6}
	var got []trail.Event
	var late []trail.Event
	for page := 0; ; page++ {
		p, err := s.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p.Events...)
		if p.Next == "" {
			break
		}
		q.Cursor = p.Next
		// Between pages: newer events (belong before the cursor: never seen
		// by this walk) and, once, an older one (after the cursor: seen).
		mustAppend(t, s, event(t, "acme", "user.update", time.Duration(100+page)*time.Minute))
		if page == 2 {
			old := event(t, "acme", "user.update", -time.Hour)
			mustAppend(t, s, old)
			late = append(late, old)
		}
	}
	sameIDs(t, "walk while appending", append(want, late...), got)
}

func testInvalidCursor(t *testing.T, s trail.Store) {
	mustAppend(t, s, event(t, "acme", "user.update", 0), event(t, "acme", "user.update", hour))
	valid := trail.EncodeCursor(trail.Cursor{OccurredAt: at(hour), ID: uuid.Must(uuid.NewV7())})
	raw, _ := base64.RawURLEncoding.DecodeString(valid)
	wrongVersion := slices.Clone(raw)
	wrongVersion[0] = 99
	for _, c := range []string{
		"x", "not a cursor", "!!!!", valid[:len(valid)-2], valid + "AA", valid + "=",
		base64.RawURLEncoding.EncodeToString(wrongVersion),
		base64.StdEncoding.EncodeToString(raw[:10]), "' OR 1=1 --", "\x00",
	} {
		_, err := s.Query(context.Background(), trail.Query{Tenant: "acme", Cursor: c})
		if !errors.Is(err, trail.ErrInvalidCursor) {
			t.Errorf("cursor %q: err = %v, want ErrInvalidCursor", c, err)
		}
	}
	if _, err := s.Query(context.Background(), trail.Query{Tenant: "acme", Cursor: valid}); err != nil {
		t.Errorf("a well-formed cursor for an unknown event is a position, not an error: %v", err)
	}
}

func testInvalidQuery(t *testing.T, s trail.Store) {
	for _, q := range []trail.Query{
		{Tenant: "bad tenant"},
		{Tenant: "acme", Action: "Bad.Action"},
		{Tenant: "acme", Action: "user.**"},
		{Tenant: "acme", Action: "*"},
		{Tenant: "acme", Action: "!*"},
		{Tenant: "acme", Action: "user.delete,"},
		{Tenant: "acme", Action: "*.delete,!Bad"},
		{Tenant: "acme", ActorType: "robot"},
		{Tenant: "acme", Outcome: "maybe"},
		{Tenant: "acme", Since: at(hour), Until: at(0)},
		{Tenant: "acme", Since: at(hour), Until: at(hour)},
		{Tenant: "acme", Limit: -1},
		{Tenant: "acme", Limit: trail.MaxLimit + 1},
		{Tenant: "acme", Text: "a\x00b"},
		{AllTenants: true, Action: "Bad.Action"},
	} {
		if _, err := s.Query(context.Background(), q); !errors.Is(err, trail.ErrInvalidQuery) {
			t.Errorf("Query%s: err = %v, want ErrInvalidQuery", showQuery(q), err)
		}
	}
	for _, cq := range []trail.CountQuery{{Tenant: "acme", Action: "Bad"}, {AllTenants: true, Action: "Bad"}, {Tenant: "bad tenant"}} {
		if _, err := s.Counts(context.Background(), cq); !errors.Is(err, trail.ErrInvalidQuery) {
			t.Errorf("Counts(%+v): err = %v, want ErrInvalidQuery", cq, err)
		}
	}
}

// testTenantScope: a query names its tenant or sets AllTenants. An empty
// Tenant alone (a tenant lost on the way) must be refused, never read every
// tenant; so must a tenant together with AllTenants. AllTenants reads every
// tenant and the platform events.
func testTenantScope(t *testing.T, s trail.Store) {
	ctx := context.Background()
	evs := []trail.Event{
		event(t, "acme", "user.create", 0),
		event(t, "globex", "user.create", hour),
		event(t, "", "system.start", 2*hour, actor(trail.ActorSystem, "")),
	}
	mustAppend(t, s, evs...)
	cursor := trail.EncodeCursor(trail.Cursor{OccurredAt: at(3 * hour), ID: uuid.Must(uuid.NewV7())})
	for _, q := range []trail.Query{
		{},
		{Action: "user.create"},
		{ActorType: trail.ActorSystem},
		{TargetType: "user", TargetID: "17"},
		{Since: at(0), Until: at(3 * hour)},
		{Limit: 10},
		{Cursor: cursor},
		{Tenant: "acme", AllTenants: true},
	} {
		p, err := s.Query(ctx, q)
		if !errors.Is(err, trail.ErrInvalidQuery) {
			t.Errorf("Query%s: err = %v (%d events), want ErrInvalidQuery", showQuery(q), err, len(p.Events))
		} else if !strings.Contains(err.Error(), "tenant") {
			t.Errorf("Query%s: error %q does not name the tenant", showQuery(q), err)
		}
	}
	for _, cq := range []trail.CountQuery{
		{},
		{Action: "user.create"},
		{Since: at(0), Until: at(3 * hour)},
		{Tenant: "acme", AllTenants: true},
	} {
		cs, err := s.Counts(ctx, cq)
		if !errors.Is(err, trail.ErrInvalidQuery) {
			t.Errorf("Counts(%+v): err = %v (%d rows), want ErrInvalidQuery", cq, err, len(cs))
		} else if !strings.Contains(err.Error(), "tenant") {
			t.Errorf("Counts(%+v): error %q does not name the tenant", cq, err)
		}
	}
	// AllTenants: every tenant and the platform events, filters applied.
	sameIDs(t, "AllTenants", newestFirst(evs), queryAll(t, s, trail.Query{AllTenants: true}))
	sameIDs(t, "AllTenants, system actor", evs[2:], queryAll(t, s, trail.Query{AllTenants: true, ActorType: trail.ActorSystem}))
	sameIDs(t, "AllTenants, limit 1", newestFirst(evs), queryAll(t, s, trail.Query{AllTenants: true, Limit: 1}))
	for _, c := range []struct {
		cq   trail.CountQuery
		want int64
	}{
		{trail.CountQuery{AllTenants: true}, 3},
		{trail.CountQuery{AllTenants: true, Action: "system.*"}, 1},
		{trail.CountQuery{AllTenants: true, Action: "user.create"}, 2},
		{trail.CountQuery{Tenant: "acme"}, 1},
	} {
		cs, err := s.Counts(ctx, c.cq)
		if err != nil {
			t.Fatalf("Counts(%+v): %v", c.cq, err)
		}
		if n := total(cs); n != c.want {
			t.Errorf("Counts(%+v): total %d, want %d", c.cq, n, c.want)
		}
	}
}

func testLimits(t *testing.T, s trail.Store) {
	n := trail.DefaultLimit + 17
	var evs []trail.Event
	for i := range n {
		evs = append(evs, event(t, "acme", "user.update", time.Duration(i)*time.Second))
	}
	mustAppend(t, s, evs...)
	want := newestFirst(evs)
	for _, c := range []struct {
		limit, size int
		more        bool
	}{{0, trail.DefaultLimit, true}, {1, 1, true}, {50, 50, true}, {n, n, false}, {trail.MaxLimit, n, false}} {
		p, err := s.Query(context.Background(), trail.Query{AllTenants: true, Limit: c.limit})
		if err != nil {
			t.Fatalf("limit %d: %v", c.limit, err)
		}
		if len(p.Events) != c.size || (p.Next != "") != c.more {
			t.Errorf("limit %d: %d events, Next=%t; want %d, %t", c.limit, len(p.Events), p.Next != "", c.size, c.more)
		}
		sameIDs(t, fmt.Sprintf("limit %d", c.limit), want[:c.size], p.Events)
	}
}

// countKey is a day (its midnight, in UTC) and an action.
type countKey struct {
	day    time.Time
	action string
}

func testCounts(t *testing.T, s trail.Store) {
	var evs []trail.Event
	add := func(tenant, action string, off time.Duration, n int) {
		for i := range n {
			evs = append(evs, event(t, tenant, action, off+time.Duration(i)*time.Second))
		}
	}
	d0 := base.Truncate(day) // 2025-03-10 00:00 UTC
	// Around midnight UTC: 23:59:59.999999 belongs to the earlier day.
	add("acme", "user.create", 3*hour, 3)
	add("acme", "user.delete", 5*hour, 1)
	add("acme", "subscription.update", 6*hour, 2)
	evs = append(evs, event(t, "acme", "user.create", d0.Add(day-time.Microsecond).Sub(base)))
	evs = append(evs, event(t, "acme", "user.create", d0.Add(day).Sub(base)))
	add("acme", "subscription.plan.change", 2*day, 4)
	add("globex", "user.create", 0, 5)
	add("", "system.start", day, 2)
	mustAppend(t, s, evs...)

	// ref counts evs per day of cq.Zone (UTC if nil) and action.
	ref := func(cq trail.CountQuery) map[countKey]int64 {
		m := map[countKey]int64{}
		zone := cmp.Or(cq.Zone, time.UTC)
		for _, ev := range evs {
			if matches(cq.Query(), ev) {
				y, mo, d := ev.OccurredAt.In(zone).Date()
				m[countKey{time.Date(y, mo, d, 0, 0, 0, 0, zone).UTC(), ev.Action}]++
			}
		}
		return m
	}
	// Days in a zone (CountQuery.Zone): Los Angeles (DST began the day
	// before d0), and the half- and quarter-hour offsets of Kolkata and
	// Kathmandu; "" is UTC.
	var zones []*time.Location
	for _, name := range []string{"", "America/Los_Angeles", "Asia/Kolkata", "Asia/Kathmandu"} {
		if name == "" {
			zones = append(zones, nil)
			continue
		}
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatalf("suite bug: %v", err)
		}
		zones = append(zones, loc)
	}
	for _, cq := range []trail.CountQuery{
		{AllTenants: true},
		{Tenant: "acme"},
		{Tenant: "globex"},
		{Tenant: "acme", Action: "user.create"},
		{Tenant: "acme", Action: "subscription.*"},
		{AllTenants: true, Action: "user.*"},
		{AllTenants: true, Action: "*.create,!user.*"},
		{Tenant: "acme", Since: d0.Add(day)},
		{Tenant: "acme", Until: d0.Add(day)},
		{AllTenants: true, Since: d0.Add(day), Until: d0.Add(2 * day)},
		{Tenant: "nobody"},
	} {
		for _, zone := range zones {
			cq.Zone = zone
			countsLike(t, s, cq, ref(cq))
		}
	}
	if _, ok := ref(trail.CountQuery{Tenant: "acme", Action: "user.create"})[countKey{d0, "user.create"}]; !ok {
		t.Fatal("suite bug: reference counts empty")
	}
	if maps.Equal(ref(trail.CountQuery{Tenant: "acme"}), ref(trail.CountQuery{Tenant: "acme", Zone: zones[1]})) {
		t.Fatal("suite bug: Los Angeles days count like UTC days")
	}
	// A zone no store can agree on (time.Local, a fixed offset under a
	// made-up name) is refused alike by every store.
	for _, zone := range []*time.Location{time.Local, time.FixedZone("Mars/Olympus", 3600)} {
		if cs, err := s.Counts(context.Background(), trail.CountQuery{Tenant: "acme", Zone: zone}); !errors.Is(err, trail.ErrInvalidQuery) {
			t.Errorf("Counts in %s: %d rows, err %v; want ErrInvalidQuery", zone, len(cs), err)
		}
	}
}

// countsLike checks s's counts for cq against want, day by day (each a
// midnight in cq.Zone, or UTC) and action.
func countsLike(t *testing.T, s trail.Store, cq trail.CountQuery, want map[countKey]int64) {
	t.Helper()
	zone := cmp.Or(cq.Zone, time.UTC)
	cs, err := s.Counts(context.Background(), cq)
	if err != nil {
		t.Fatalf("Counts(%+v): %v", cq, err)
	}
	got := map[countKey]int64{}
	for i, c := range cs {
		if l := c.Day.In(zone); c.Day.Location().String() != zone.String() || !l.Equal(time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, zone)) {
			t.Errorf("Counts(%+v): day %s is not midnight in %s", cq, c.Day, zone)
		}
		if i > 0 && (cs[i-1].Day.After(c.Day) || cs[i-1].Day.Equal(c.Day) && cs[i-1].Action >= c.Action) {
			t.Errorf("Counts(%+v): %s %s after %s %s: not by day, then action", cq, c.Day, c.Action, cs[i-1].Day, cs[i-1].Action)
		}
		k := countKey{c.Day.UTC(), c.Action}
		if _, dup := got[k]; dup {
			t.Errorf("Counts(%+v): %s %s listed twice", cq, c.Day.Format(time.DateOnly), c.Action)
		}
		if c.N <= 0 {
			t.Errorf("Counts(%+v): %s %s has count %d", cq, c.Day.Format(time.DateOnly), c.Action, c.N)
		}
		got[k] = c.N
	}
	if !maps.Equal(got, want) {
		t.Errorf("Counts(%+v) in %s: got %v, want %v", cq, zone, got, want)
	}
}

func testAtomicBatch(t *testing.T, s trail.Store) {
	ctx := context.Background()
	good := []trail.Event{event(t, "acme", "user.create", 0), event(t, "acme", "user.create", hour)}
	bad := trail.Event{OccurredAt: at(2 * hour), Actor: trail.Actor{Type: trail.ActorSystem}, Action: "user.create",
		Outcome: trail.OutcomeSuccess, SchemaVersion: trail.SchemaVersion} // no ID
	if _, err := s.Append(ctx, append(slices.Clone(good), bad)); err == nil {
		t.Errorf("Append of a batch with an event without ID: no error")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Append(cctx, good); err == nil {
		t.Errorf("Append with a cancelled context: no error")
	}
	for _, ev := range good {
		if _, err := s.Get(ctx, ev.ID); !errors.Is(err, trail.ErrNotFound) {
			t.Errorf("event %s of a failed batch: Get err = %v, want ErrNotFound (nothing written)", ev.ID, err)
		}
	}
	if all := queryAll(t, s, trail.Query{AllTenants: true}); len(all) != 0 {
		t.Errorf("failed batches left %d events:%s", len(all), list(all))
	}
	// The same events append normally afterwards, as new.
	for i, r := range mustAppend(t, s, good...) {
		if r.Duplicate {
			t.Errorf("event %d after failed batches: Duplicate (the failed batch wrote it)", i)
		}
	}
}

func testConcurrent(t *testing.T, s trail.Store) {
	const workers, batches, per = 6, 8, 10
	shared := []trail.Event{event(t, "acme", "user.update", 0), event(t, "globex", "user.update", 0)}
	var (
		mu      sync.Mutex
		all     []trail.Event
		fresh   = map[uuid.UUID]int{}
		wg      sync.WaitGroup
		errOnce sync.Once
		firstEr error
	)
	for w := range workers {
		var mine [][]trail.Event
		for b := range batches {
			var batch []trail.Event
			for i := range per {
				batch = append(batch, event(t, []string{"acme", "globex", ""}[(w+i)%3], "user.update",
					time.Duration(w*batches*per+b*per+i)*time.Second))
			}
			batch = append(batch, shared...) // every batch races on the same IDs
			mine = append(mine, batch)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, batch := range mine {
				res, err := s.Append(context.Background(), batch)
				if err != nil {
					errOnce.Do(func() { firstEr = err })
					return
				}
				mu.Lock()
				for i, r := range res {
					if !r.Duplicate {
						fresh[batch[i].ID]++
					}
				}
				all = append(all, batch[:per]...)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstEr != nil {
		t.Fatalf("concurrent Append: %v", firstEr)
	}
	for _, ev := range shared {
		if fresh[ev.ID] != 1 {
			t.Errorf("shared event %s reported new %d times, want exactly once", ev.ID, fresh[ev.ID])
		}
	}
	want := newestFirst(append(all, shared...))
	got := queryAll(t, s, trail.Query{AllTenants: true, Limit: trail.MaxLimit})
	sameIDs(t, "after concurrent appends", want, got)
}

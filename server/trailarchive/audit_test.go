package trailarchive

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
)

// markTransform stands for the privacy layer: it marks every event it sees,
// so the tests can tell that retention's events went through it.
type markTransform struct{}

func (markTransform) Transform(_ context.Context, ev *trail.Event) error {
	if ev.Metadata == nil {
		ev.Metadata = map[string]any{}
	}
	ev.Metadata["transformed"] = true
	return nil
}

func (f *fixture) setTransform(t trail.Transformer) {
	switch b := f.backend.(type) {
	case *SQLite:
		b.Transform = t
	case *Postgres:
		b.Transform = t
	}
}

// auditEvents returns retention's events of tenant ("" the platform), oldest
// first.
func (f *fixture) auditEvents(t testing.TB, tenant string) []trail.Event {
	t.Helper()
	st := f.store.(trail.Store)
	var out []trail.Event
	// The platform's ("") are read from every tenant's and kept below.
	q := trail.Query{Tenant: tenant, AllTenants: tenant == "", Action: "retention.*", Limit: trail.MaxLimit}
	for {
		page, err := st.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range page.Events {
			if ev.Tenant == tenant {
				out = append(out, ev)
			}
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	slices.Reverse(out)
	return out
}

// changeMap turns an event's changes into field -> [old, new] JSON ("" absent).
func changeMap(ev trail.Event) map[string][2]string {
	m := map[string][2]string{}
	for _, c := range ev.Changes {
		m[c.Field] = [2]string{string(c.Old), string(c.New)}
	}
	return m
}

var cliActor = trail.Actor{Type: trail.ActorSystem, ID: "cli"}

// Policy and hold changes are events of the tenant they name (platform
// events for all-tenant rules), by the context's actor, with the old and
// new values as changes, through the Transform; refused or missing changes
// record nothing.
func TestAuditPolicyAndHoldEvents(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		f := openFixture(t, kind)
		f.setTransform(markTransform{})
		ctx := trail.WithActor(context.Background(), cliActor)
		b := f.backend

		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(b.SetPolicy(ctx, Policy{Action: "auth.*", Keep: 90 * Day, Then: ThenDelete}))
		must(b.SetPolicy(ctx, Policy{Action: "auth.*", Keep: 30 * Day, Then: ThenDelete}))
		must(b.SetPolicy(ctx, Policy{Tenant: "acme", Action: "auth.*", Keep: 2 * Year, Then: ThenArchive}))
		// A tenant-wide rule disagreeing with auth.* is refused: no event.
		if err := b.SetPolicy(ctx, Policy{Tenant: "globex", Keep: 7 * Year, Then: ThenArchive}); !errors.Is(err, ErrConflict) {
			t.Fatalf("conflicting policy: %v", err)
		}
		ok, err := b.DeletePolicy(ctx, "", "auth.*")
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		if ok, err := b.DeletePolicy(ctx, "", "auth.*"); err != nil || ok {
			t.Fatalf("second unset: %v %v", ok, err)
		}
		must(b.PutHold(ctx, Hold{Tenant: "acme", Reason: "case 42"}))
		must(b.PutHold(ctx, Hold{Tenant: "acme", Reason: "case 43", MinKeep: 7 * Year}))
		must(b.PutHold(ctx, Hold{Tenant: "acme", Subject: "user:42", Reason: "case 44"}))
		if ok, err := b.ReleaseHold(ctx, "acme", ""); err != nil || !ok {
			t.Fatal(ok, err)
		}
		if ok, err := b.ReleaseHold(ctx, "globex", ""); err != nil || ok {
			t.Fatalf("release of no hold: %v %v", ok, err)
		}

		type want struct {
			action, target string
			changes        map[string][2]string
		}
		check := func(tenant string, evs []trail.Event, wants []want) {
			t.Helper()
			if len(evs) != len(wants) {
				t.Fatalf("tenant %q: %d events, want %d: %+v", tenant, len(evs), len(wants), evs)
			}
			for i, w := range wants {
				ev := evs[i]
				if ev.Action != w.action || ev.Target.Type+":"+ev.Target.ID != w.target || ev.Actor.Type != cliActor.Type || ev.Actor.ID != cliActor.ID {
					t.Errorf("tenant %q event %d: %s %s:%s by %s:%s, want %s %s by system:cli", tenant, i, ev.Action,
						ev.Target.Type, ev.Target.ID, ev.Actor.Type, ev.Actor.ID, w.action, w.target)
				}
				if got := changeMap(ev); !mapsEqual(got, w.changes) {
					t.Errorf("tenant %q event %d (%s): changes %v, want %v", tenant, i, ev.Action, got, w.changes)
				}
				if ev.Metadata["transformed"] != true {
					t.Errorf("tenant %q event %d (%s) did not go through the Transform", tenant, i, ev.Action)
				}
			}
		}
		check("", f.auditEvents(t, ""), []want{
			{ActionPolicySet, "retention_policy:*/auth.*", map[string][2]string{"keep": {"", `"90d"`}, "then": {"", `"delete"`}}},
			{ActionPolicySet, "retention_policy:*/auth.*", map[string][2]string{"keep": {`"90d"`, `"30d"`}}},
			{ActionPolicyUnset, "retention_policy:*/auth.*", map[string][2]string{"keep": {`"30d"`, ""}, "then": {`"delete"`, ""}}},
		})
		check("acme", f.auditEvents(t, "acme"), []want{
			{ActionPolicySet, "retention_policy:acme/auth.*", map[string][2]string{"keep": {"", `"2y"`}, "then": {"", `"archive"`}}},
			{ActionHoldPlace, "legal_hold:acme", map[string][2]string{"reason": {"", `"case 42"`}, "min_keep": {"", `""`}}},
			{ActionHoldPlace, "legal_hold:acme", map[string][2]string{"reason": {`"case 42"`, `"case 43"`}, "min_keep": {`""`, `"7y"`}}},
			{ActionHoldPlace, "legal_hold:user:42", map[string][2]string{"reason": {"", `"case 44"`}, "min_keep": {"", `""`}}},
			{ActionHoldRelease, "legal_hold:acme", map[string][2]string{"reason": {`"case 43"`, ""}, "min_keep": {`"7y"`, ""}}},
		})
		if evs := f.auditEvents(t, "globex"); len(evs) != 0 {
			t.Fatalf("globex: %d events of refused or missing changes", len(evs))
		}
		// Without an actor in the context: DefaultActor.
		must(b.SetPolicy(context.Background(), Policy{Keep: 400 * Day, Then: ThenArchive}))
		evs := f.auditEvents(t, "")
		if last := evs[len(evs)-1]; last.Actor.Type != DefaultActor.Type || last.Actor.ID != DefaultActor.ID || last.Source != Source {
			t.Fatalf("no actor in context: %+v (source %q)", last.Actor, last.Source)
		}
	})
}

// num reads a stored metadata number.
func num(t testing.TB, v any) int64 {
	t.Helper()
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		if err != nil {
			t.Fatal(err)
		}
		return i
	case float64:
		return int64(n)
	}
	t.Fatalf("not a number: %T %v", v, v)
	return 0
}

func mapsEqual(a, b map[string][2]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A scheduled run records retention.purge in each tenant it purged from, as
// service:trail-retention, with what it archived and deleted; those events
// are not purged by the run that wrote them, are sealed like any event, and
// the store still verifies. The held tenant gets none.
func TestAuditPurgeEvents(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		ctx := context.Background()
		f := newFixtureOn(t, kind, 730*Day, 24*time.Hour)
		f.setPolicies(t)
		f.putHold(t, Hold{Tenant: "globex", Reason: "case 7"})
		f.setTransform(markTransform{})
		s := &Scheduler{Runner: f.runner(t, nil), Holder: "test", Interval: time.Minute}
		plan, err := s.Runner.Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wantA, wantD := map[string]int64{}, map[string]int64{}
		for _, bt := range plan.Batches {
			if bt.Then == ThenArchive {
				wantA[bt.Tenant] += int64(len(bt.Leaves))
			} else {
				wantD[bt.Tenant] += int64(len(bt.Leaves))
			}
		}
		if ran, err := s.Step(ctx); err != nil || !ran {
			t.Fatal(ran, err)
		}
		st := s.Stats()
		var total int64
		runs := map[string]bool{}
		for _, tenant := range []string{"acme", ""} {
			var purges []trail.Event
			for _, ev := range f.auditEvents(t, tenant) {
				if ev.Action == ActionPurge {
					purges = append(purges, ev)
				}
			}
			if len(purges) == 0 || (kind == onSQLite && len(purges) != 1) {
				t.Fatalf("tenant %q: %d purge events (SQLite: one per tenant and run)", tenant, len(purges))
			}
			var a, d int64
			for _, ev := range purges {
				if ev.Actor.Type != SchedulerActor.Type || ev.Actor.ID != SchedulerActor.ID || ev.Target.Type != TargetRun {
					t.Fatalf("purge event by %+v on %+v", ev.Actor, ev.Target)
				}
				md := ev.Metadata
				a += num(t, md["archived"])
				d += num(t, md["deleted"])
				runs[md["run"].(string)] = true
				if md["transformed"] != true || num(t, md["batches"]) < 1 || len(md["seqs"].([]any)) == 0 || len(md["policies"].([]any)) == 0 {
					t.Fatalf("purge event metadata: %v", md)
				}
				if num(t, md["archived"]) > 0 && md["archive"] != f.target.String() {
					t.Fatalf("archive %v, want %s", md["archive"], f.target)
				}
			}
			if a != wantA[tenant] || d != wantD[tenant] {
				t.Fatalf("tenant %q: events say %d archived, %d deleted; the plan %d, %d", tenant, a, d, wantA[tenant], wantD[tenant])
			}
			total += a + d
		}
		if total != st.Purged || len(runs) != 1 {
			t.Fatalf("events count %d purged in %d runs, the run %d", total, len(runs), st.Purged)
		}
		for _, ev := range f.auditEvents(t, "globex") {
			if ev.Action == ActionPurge {
				t.Fatal("the held tenant has a purge event")
			}
		}
		// The purge events are sealed like any event, a second run does not
		// purge them, and the log verifies.
		f.seal(t)
		if ran, err := s.Step(ctx); err != nil || !ran {
			t.Fatal(ran, err)
		}
		if st2 := s.Stats(); st2.Purged != st.Purged {
			t.Fatalf("second run purged %d", st2.Purged-st.Purged)
		}
		for _, ev := range f.auditEvents(t, "acme") {
			if ev.Action != ActionPurge {
				continue
			}
			leaf, err := f.store.LeafOf(ctx, ev.ID)
			if err != nil || leaf.Log != trailseal.LogName("acme") {
				t.Fatalf("purge event %s not sealed: %+v %v", ev.ID, leaf, err)
			}
		}
		f.verifyStore(t)
	})
}

// The same purge recorded twice is one event: its ID is derived from the
// log, the run and the transaction's first batch.
func TestPurgeEventIDIsStable(t *testing.T) {
	t.Parallel()
	a, b := purgeEventID("acme", "run1", "k/1"), purgeEventID("acme", "run1", "k/1")
	if a != b || a == purgeEventID("acme", "run2", "k/1") || a == purgeEventID("globex", "run1", "k/1") {
		t.Fatal("purge event IDs are not derived from log, run and part only")
	}
	if got := DisplayTarget("s3://bucket/prefix at https://AKIA:secret@s3.example.com"); got != "s3://bucket/prefix at https://s3.example.com" {
		t.Fatalf("display target: %s", got)
	}
	var md map[string]any
	evs := purgeEvents(runInfo{id: "r", target: "/srv/a"}, "p", map[string]*purgeStats{"acme": {log: "acme", archived: 2, seqs: []int64{3, 4, 9},
		batches: map[string]bool{"k": true}, policies: map[string]*policyCount{"x": {Events: 2}}}})
	raw, _ := json.Marshal(evs[0].Metadata)
	json.Unmarshal(raw, &md)
	if len(evs) != 1 || md["seqs"].([]any)[0] != "3..4" || md["seqs"].([]any)[1] != "9..9" || md["archive"] != "/srv/a" {
		t.Fatalf("purge event: %+v", evs)
	}
}

// A purge a hold stops (placed between plan and run) records no purge
// event for the held tenant: the event is written in the purge's
// transaction, which the hold rolls back.
func TestAuditHeldPurgeRecordsNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		ctx := context.Background()
		f, r, plan := planned(t, kind, nil)
		f.putHold(t, Hold{Tenant: "acme", Reason: "late"})
		before := f.count(t, "acme")
		if _, err := r.Run(ctx, plan); !errors.Is(err, ErrHeld) {
			t.Fatalf("run: %v, want ErrHeld", err)
		}
		if got := f.count(t, "acme"); got != before {
			t.Fatalf("the held tenant lost %d events", before-got)
		}
		for _, ev := range f.auditEvents(t, "acme") {
			if ev.Action == ActionPurge {
				t.Fatalf("a purge event for a purge the hold stopped: %v", ev.Metadata)
			}
		}
	})
}

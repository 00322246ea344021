package trailtest_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailtest"
)

// fakeTB records failures instead of failing the real test, so that the
// tests can prove the helpers fail when they should. Fatalf ends the calling
// goroutine, as testing.T's does.
type fakeTB struct {
	testing.TB // nil: calling anything not overridden panics
	mu         sync.Mutex
	fatals     []string
	errors     []string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatals = append(f.fatals, fmt.Sprintf(format, args...))
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Error(args ...any) { f.Errorf("%s", fmt.Sprint(args...)) }

func (f *fakeTB) FailNow() { f.Fatalf("FailNow") }

func (f *fakeTB) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.fatals)+len(f.errors) > 0
}

// message returns everything the fake was told, one failure per line.
func (f *fakeTB) message() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(append(append([]string(nil), f.fatals...), f.errors...), "\n")
}

// runTB runs fn with a fake testing.TB on its own goroutine, so that Fatalf
// can end it, and returns the fake.
func runTB(fn func(tb testing.TB)) *fakeTB {
	f := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f
}

var (
	admin  = trail.Actor{Type: trail.ActorUser, ID: "42", Name: "Ada"}
	system = trail.Actor{Type: trail.ActorSystem}
)

// recorded returns a recorder holding a small story: user:42 deletes user:17
// in acme, changes a plan in acme, and the system changes a plan in globex.
func recorded(t *testing.T) *trailtest.Recorder {
	t.Helper()
	rec := trailtest.NewRecorder(t)
	acme := trail.WithTenant(trail.WithActor(context.Background(), admin), "acme")
	for _, ev := range []trail.Event{
		{Action: "user.delete", Target: trail.Target{Type: "user", ID: "17"}, Description: "Deleted user Grace"},
		{Action: "subscription.update", Target: trail.Target{Type: "subscription", ID: "s1"},
			Changes: []trail.Change{trail.Changed("plan", "free", "pro")}, Description: "Changed subscription plan to pro"},
		{Action: "subscription.plan.change", Tenant: "globex", Actor: system, Target: trail.Target{Type: "subscription", ID: "s2"},
			Outcome: trail.OutcomeFailure},
	} {
		ctx := acme
		if ev.Tenant != "" {
			ctx = context.Background() // not acme's request: the event names its own tenant
		}
		if _, err := rec.Record(ctx, ev); err != nil {
			t.Fatalf("Record(%s): %v", ev.Action, err)
		}
	}
	return rec
}

func TestRecorderFillsFromContext(t *testing.T) {
	t.Parallel()
	rec := trailtest.NewRecorderConfig(t, &trail.Config{Source: "billing"})
	ctx := trail.WithTenant(trail.WithActor(context.Background(), admin), "acme")
	ctx = trail.WithRequest(ctx, trail.Request{ID: "req-1", IP: "192.0.2.1"})
	res, err := rec.Record(ctx, trail.Event{Action: "user.delete", Target: trail.Target{Type: "user", ID: "17"}})
	if err != nil {
		t.Fatal(err)
	}
	evs := rec.Events()
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	ev := evs[0]
	if ev.ID != res.ID || ev.Tenant != "acme" || ev.Actor.ID != "42" || ev.Actor.IP != "192.0.2.1" ||
		ev.RequestID != "req-1" || ev.Source != "billing" || ev.Outcome != trail.OutcomeSuccess ||
		ev.SchemaVersion != 1 || ev.RecordedAt.IsZero() || ev.OccurredAt.IsZero() {
		t.Errorf("event not filled like trail.Client fills it: %+v", ev)
	}
}

func TestRecorderRejectsInvalidEvents(t *testing.T) {
	t.Parallel()
	rec := trailtest.NewRecorder(t)
	for _, ev := range []trail.Event{
		{Action: "user.delete", Tenant: "acme"}, // no actor, none in context
		{Action: "User Delete", Actor: admin, Tenant: "acme"},
		{Action: "user.delete", Actor: admin, Tenant: "bad tenant"},
		{Action: "user.delete", Actor: admin, Tenant: "acme", Target: trail.Target{ID: "17"}},
		{Action: "user.delete", Actor: admin, Tenant: "acme", Description: "bad \xff utf-8"},
	} {
		_, err := rec.Record(context.Background(), ev)
		if !errors.Is(err, trail.ErrInvalid) {
			t.Errorf("Record(%+v): err = %v, want a validation error", ev, err)
		}
	}
	if n := len(rec.Events()); n != 0 {
		t.Errorf("invalid events were stored: %d", n)
	}
	if n := len(rec.Rejected()); n != 5 {
		t.Errorf("Rejected() has %d errors, want 5", n)
	}
	// A failing assertion says why nothing was recorded.
	f := runTB(func(tb testing.TB) { trailtest.RequireRecorded(tb, rec, trailtest.Match{Action: "user.delete"}) })
	if msg := f.message(); !strings.Contains(msg, "rejected as invalid (5):") || !strings.Contains(msg, "action: \"User Delete\"") {
		t.Errorf("failure message does not list the rejected events:\n%s", msg)
	}
	// A batch with one bad event stores nothing.
	_, err := rec.RecordMany(trail.WithTenant(context.Background(), "acme"), []trail.Event{{Action: "user.create", Actor: admin}, {Action: "nope", Actor: admin}})
	if err == nil || !strings.Contains(err.Error(), "event 1") {
		t.Errorf("RecordMany with a bad event: err = %v, want one naming event 1", err)
	}
	if n := len(rec.Events()); n != 0 {
		t.Errorf("a failed batch stored %d events", n)
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	rec := recorded(t)
	tests := []struct {
		m    trailtest.Match
		want []string // actions matched, in recording order
	}{
		{trailtest.Match{}, []string{"user.delete", "subscription.update", "subscription.plan.change"}},
		{trailtest.Match{Action: "user.delete", Tenant: "acme", Actor: "user:42", Target: "user:17"}, []string{"user.delete"}},
		{trailtest.Match{Action: "user.delete", Tenant: "globex"}, nil},
		{trailtest.Match{Action: "user.delete", Actor: "user:43"}, nil},
		{trailtest.Match{Action: "user.delete", Target: "user:18"}, nil},
		{trailtest.Match{Action: "subscription.*"}, []string{"subscription.update", "subscription.plan.change"}},
		{trailtest.Match{Action: "subscription.plan.*"}, []string{"subscription.plan.change"}},
		{trailtest.Match{Action: "subscription"}, nil},
		{trailtest.Match{Action: "user.del"}, nil},
		{trailtest.Match{Actor: "system"}, []string{"subscription.plan.change"}},
		{trailtest.Match{Actor: "user"}, []string{"user.delete", "subscription.update"}},
		{trailtest.Match{Target: "subscription"}, []string{"subscription.update", "subscription.plan.change"}},
		{trailtest.Match{Changed: "plan"}, []string{"subscription.update"}},
		{trailtest.Match{Changed: "plan.name"}, nil},
		{trailtest.Match{Outcome: trail.OutcomeFailure}, []string{"subscription.plan.change"}},
		{trailtest.Match{Outcome: trail.OutcomeDenied}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.m.String(), func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, ev := range rec.Filter(tt.m) {
				got = append(got, ev.Action)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Filter(%s) = %v, want %v", tt.m, got, tt.want)
			}
		})
	}
}

func TestRequireRecorded(t *testing.T) {
	t.Parallel()
	rec := recorded(t)
	var ev trail.Event
	f := runTB(func(tb testing.TB) {
		ev = trailtest.RequireRecorded(tb, rec, trailtest.Match{Action: "user.delete", Tenant: "acme", Actor: "user:42", Target: "user:17"})
	})
	if f.Failed() {
		t.Fatalf("RequireRecorded failed on a recorded event: %s", f.message())
	}
	if ev.Action != "user.delete" || ev.Target.ID != "17" {
		t.Errorf("RequireRecorded returned %+v", ev)
	}

	f = runTB(func(tb testing.TB) {
		trailtest.RequireRecorded(tb, rec, trailtest.Match{Action: "user.delete", Tenant: "acme", Actor: "user:7"})
		tb.Errorf("RequireRecorded returned after failing")
	})
	msg := f.message()
	if len(f.fatals) != 1 || len(f.errors) != 0 {
		t.Fatalf("want exactly one Fatalf that stops the test, got fatals=%q errors=%q", f.fatals, f.errors)
	}
	for _, want := range []string{
		"no event matches {--tenant acme --actor user:7 --action user.delete}",
		"recorded (3):",
		"tenant=acme actor=user:42 action=user.delete target=user:17 \"Deleted user Grace\"",
		"action=subscription.update target=subscription:s1 changed=plan",
		"tenant=globex actor=system action=subscription.plan.change target=subscription:s2 outcome=failure",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure message lacks %q:\n%s", want, msg)
		}
	}

	f = runTB(func(tb testing.TB) {
		trailtest.RequireRecorded(tb, trailtest.NewRecorder(t), trailtest.Match{Action: "user.delete"})
	})
	if !strings.Contains(f.message(), "recorded: none") {
		t.Errorf("empty recorder: message %q does not say nothing was recorded", f.message())
	}
}

func TestRequireNotRecorded(t *testing.T) {
	t.Parallel()
	rec := recorded(t)
	if f := runTB(func(tb testing.TB) { trailtest.RequireNotRecorded(tb, rec, trailtest.Match{Action: "user.create"}) }); f.Failed() {
		t.Errorf("RequireNotRecorded failed with no match: %s", f.message())
	}
	f := runTB(func(tb testing.TB) { trailtest.RequireNotRecorded(tb, rec, trailtest.Match{Action: "subscription.*"}) })
	msg := f.message()
	if len(f.fatals) != 1 || !strings.Contains(msg, "matching (2):") || !strings.Contains(msg, "subscription.plan.change") ||
		strings.Contains(msg, "user.delete") {
		t.Errorf("RequireNotRecorded with two matches: fatals=%d message:\n%s", len(f.fatals), msg)
	}
}

func TestRequireCount(t *testing.T) {
	t.Parallel()
	rec := recorded(t)
	var got []trail.Event
	if f := runTB(func(tb testing.TB) {
		got = trailtest.RequireCount(tb, rec, trailtest.Match{Action: "subscription.*"}, 2)
	}); f.Failed() {
		t.Errorf("RequireCount(2) failed: %s", f.message())
	}
	if len(got) != 2 {
		t.Errorf("RequireCount returned %d events", len(got))
	}
	for _, n := range []int{0, 1, 3} {
		f := runTB(func(tb testing.TB) { trailtest.RequireCount(tb, rec, trailtest.Match{Action: "subscription.*"}, n) })
		if len(f.fatals) != 1 || !strings.Contains(f.message(), fmt.Sprintf("2 events match {--action subscription.*}, want %d", n)) {
			t.Errorf("RequireCount(%d): %q", n, f.message())
		}
	}
}

// A typo in a Match must fail the test, never pass RequireNotRecorded by
// matching nothing.
func TestInvalidMatchFails(t *testing.T) {
	t.Parallel()
	rec := recorded(t)
	for _, m := range []trailtest.Match{
		{Action: "User.Delete"},
		{Action: "user.**"},
		{Actor: "robot:1"},
		{Actor: ":42"},
		{Target: ":17"},
		{Tenant: "bad tenant"},
		{Outcome: "maybe"},
	} {
		for name, fn := range map[string]func(tb testing.TB){
			"RequireRecorded":    func(tb testing.TB) { trailtest.RequireRecorded(tb, rec, m) },
			"RequireNotRecorded": func(tb testing.TB) { trailtest.RequireNotRecorded(tb, rec, m) },
			"RequireCount":       func(tb testing.TB) { trailtest.RequireCount(tb, rec, m, 0) },
		} {
			if f := runTB(fn); len(f.fatals) != 1 || !strings.Contains(f.message(), "Match") {
				t.Errorf("%s(%+v): want a failure naming the bad Match, got %q", name, m, f.message())
			}
		}
		if got := rec.Filter(m); got != nil {
			t.Errorf("Filter(%+v) = %d events, want none", m, len(got))
		}
	}
}

func TestFailureListIsBounded(t *testing.T) {
	t.Parallel()
	rec := trailtest.NewRecorder(t)
	evs := make([]trail.Event, 120)
	for i := range evs {
		evs[i] = trail.Event{Action: "user.login", Actor: trail.Actor{Type: trail.ActorUser, ID: fmt.Sprint(i)}}
	}
	if _, err := rec.RecordMany(trail.WithTenant(context.Background(), "acme"), evs); err != nil {
		t.Fatal(err)
	}
	f := runTB(func(tb testing.TB) { trailtest.RequireRecorded(tb, rec, trailtest.Match{Action: "user.logout"}) })
	msg := f.message()
	if !strings.Contains(msg, "recorded (120):") || !strings.Contains(msg, "… and 70 more") || strings.Count(msg, "action=user.login") != 50 {
		t.Errorf("message not bounded to 50 events:\n%s", msg)
	}
}

func TestRecorderReset(t *testing.T) {
	t.Parallel()
	rec := recorded(t)
	rec.Record(context.Background(), trail.Event{Action: "bad"})
	rec.Reset()
	if n := len(rec.Rejected()); n != 0 {
		t.Errorf("%d rejections after Reset", n)
	}
	if n := len(rec.Events()); n != 0 {
		t.Fatalf("%d events after Reset", n)
	}
	f := runTB(func(tb testing.TB) { trailtest.RequireRecorded(tb, rec, trailtest.Match{Action: "user.delete"}) })
	if !f.Failed() {
		t.Errorf("RequireRecorded passed after Reset")
	}
	if _, err := rec.Record(context.Background(), trail.Event{Action: "user.create", Actor: admin, Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	if f := runTB(func(tb testing.TB) { trailtest.RequireCount(tb, rec, trailtest.Match{}, 1) }); f.Failed() {
		t.Errorf("after Reset and one Record: %s", f.message())
	}
}

// The store is a Source too, and RecordTx through the recorder's client
// shows up only after Commit.
func TestRecordTx(t *testing.T) {
	t.Parallel()
	rec := trailtest.NewRecorder(t)
	ctx := trail.WithTenant(trail.WithActor(context.Background(), admin), "acme")
	tx := rec.Store().Begin()
	if _, err := rec.Client().RecordTx(ctx, tx, trail.Event{Action: "user.delete", Target: trail.Target{Type: "user", ID: "17"}}); err != nil {
		t.Fatal(err)
	}
	m := trailtest.Match{Action: "user.delete", Tenant: "acme", Actor: "user:42"}
	if f := runTB(func(tb testing.TB) { trailtest.RequireNotRecorded(tb, rec.Store(), m) }); f.Failed() {
		t.Errorf("uncommitted event visible: %s", f.message())
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if f := runTB(func(tb testing.TB) { trailtest.RequireRecorded(tb, rec.Store(), m) }); f.Failed() {
		t.Errorf("committed event missing: %s", f.message())
	}
}

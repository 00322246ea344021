package demo

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail"
)

var testNow = time.Date(2026, 11, 20, 15, 4, 5, 0, time.UTC)

func generate(t *testing.T, cfg Config) *Dataset {
	t.Helper()
	if cfg.Now.IsZero() {
		cfg.Now = testNow
	}
	d, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func encode(t *testing.T, d *Dataset) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, ev := range d.Events {
		if err := enc.Encode(ev); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	a := encode(t, generate(t, Config{Seed: 7}))
	b := encode(t, generate(t, Config{Seed: 7}))
	if !bytes.Equal(a, b) {
		t.Fatal("the same config gave two different datasets")
	}
	c := encode(t, generate(t, Config{Seed: 8}))
	if bytes.Equal(a, c) {
		t.Fatal("seeds 7 and 8 gave the same dataset")
	}
	// Now is an instant: its time zone does not change the dataset.
	e := encode(t, generate(t, Config{Seed: 7, Now: testNow.In(time.FixedZone("X", 5*3600))}))
	if !bytes.Equal(a, e) {
		t.Fatal("the same instant in another zone gave another dataset")
	}
}

func TestSizeAndOrder(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 500, 5000} {
		d := generate(t, Config{Events: n})
		want := n
		if n == 0 {
			want = DefaultEvents
		}
		if n == 1 {
			if len(d.Events) < 100 {
				t.Errorf("Events=1: got %d events, want the whole skeleton", len(d.Events))
			}
		} else if len(d.Events) != want {
			t.Errorf("Events=%d: got %d events", n, len(d.Events))
		}
		seen := map[string]bool{}
		for i, ev := range d.Events {
			if i > 0 && ev.OccurredAt.Before(d.Events[i-1].OccurredAt) {
				t.Fatalf("event %d is older than event %d", i, i-1)
			}
			if seen[ev.ID.String()] {
				t.Fatalf("ID %s twice", ev.ID)
			}
			seen[ev.ID.String()] = true
			if ev.ID.Version() != 7 {
				t.Fatalf("event %d: ID version %d, want 7", i, ev.ID.Version())
			}
		}
	}
	if _, err := Generate(Config{Events: -1, Now: testNow}); err == nil {
		t.Error("negative Events accepted")
	}
	if _, err := Generate(Config{}); err == nil {
		t.Error("zero Now accepted")
	}
}

func TestValidAndInRange(t *testing.T) {
	t.Parallel()
	d := generate(t, Config{})
	oldest := testNow.Add(-Span)
	for i, ev := range d.Events {
		e := ev
		if err := e.Validate(); err != nil {
			t.Fatalf("event %d (%s) invalid: %v", i, ev.Action, err)
		}
		if !ev.OccurredAt.After(oldest) || !ev.OccurredAt.Before(testNow) {
			t.Fatalf("event %d at %v outside the two years before %v", i, ev.OccurredAt, testNow)
		}
		if ev.RecordedAt.Before(ev.OccurredAt) || ev.RecordedAt.Sub(ev.OccurredAt) > time.Second {
			t.Fatalf("event %d recorded at %v, occurred at %v", i, ev.RecordedAt, ev.OccurredAt)
		}
	}
}

func TestRealism(t *testing.T) {
	t.Parallel()
	d := generate(t, Config{})
	byTenant := map[string]map[string]int{}
	var impersonations, platform, scripts, passwords, tokens, emailChanges, denied, failures, adminCLI int
	recent := 0
	for _, ev := range d.Events {
		if byTenant[ev.Tenant] == nil {
			byTenant[ev.Tenant] = map[string]int{}
		}
		if ev.Action == "subscription.update" && ev.Actor.Type == trail.ActorUser && ev.Outcome == trail.OutcomeSuccess {
			byTenant[ev.Tenant]["subscription.update by user"]++
			if ev.Actor.Name == "" {
				t.Errorf("subscription.update by a user without a name: %+v", ev.Actor)
			}
		}
		byTenant[ev.Tenant][ev.Action]++
		if ev.Actor.OnBehalfOf != nil {
			impersonations++
		}
		if ev.Tenant == "" {
			platform++
		}
		if strings.Contains(ev.Description, "<script>") {
			scripts++
		}
		for _, c := range ev.Changes {
			if c.Field == "password" {
				passwords++
			}
			if c.Field == "email" && c.Old != nil {
				emailChanges++
			}
		}
		if tok, ok := ev.Metadata["token"].(string); ok && strings.HasPrefix(tok, "trl_live_") {
			tokens++
		}
		switch ev.Outcome {
		case trail.OutcomeDenied:
			denied++
		case trail.OutcomeFailure:
			failures++
		}
		if ev.Actor.Type == trail.ActorSystem && ev.Actor.ID == "admin-cli" && ev.Action == "subscription.update" {
			adminCLI++
			if !strings.HasPrefix(ev.Description, "Changed subscription plan to ") {
				t.Errorf("admin change-plan description %q", ev.Description)
			}
		}
		if testNow.Sub(ev.OccurredAt) < Span/8 {
			recent++
		}
	}
	for _, tn := range d.Tenants {
		m := byTenant[tn.ID]
		for _, a := range []string{"subscription.create", "user.create", "auth.login", "invoice.paid"} {
			if m[a] == 0 {
				t.Errorf("tenant %s has no %s", tn.ID, a)
			}
		}
		if m["subscription.update by user"] == 0 {
			t.Errorf("tenant %s has no subscription.update by a user", tn.ID)
		}
	}
	if byTenant["acme"]["user.delete"] == 0 {
		t.Error("acme has no user.delete (the seed's story)")
	}
	for name, n := range map[string]int{"impersonation": impersonations, "platform event": platform, "<script> description": scripts,
		"password change": passwords, "API token": tokens, "e-mail change": emailChanges, "denied": denied, "failure": failures,
		"admin change-plan": adminCLI} {
		if n == 0 {
			t.Errorf("no %s in the dataset", name)
		}
	}
	// More density recently: the newest eighth of the span holds far more
	// than an eighth of the events.
	if frac := float64(recent) / float64(len(d.Events)); frac < 0.25 {
		t.Errorf("only %.0f%% of events in the newest eighth of the span", 100*frac)
	}
	if platform > len(d.Events)/20 {
		t.Errorf("%d platform events: too many", platform)
	}
}

// The story is consistent: each change of a subscription's plan and seats,
// and of a user's role, starts from the value the previous one left.
func TestChangesChain(t *testing.T) {
	t.Parallel()
	d := generate(t, Config{Seed: 3})
	last := map[string]map[string]string{}
	roleChanges := 0
	for _, ev := range d.Events {
		if ev.Target.Type == "user" {
			for _, c := range ev.Changes {
				if c.Field != "role" {
					continue
				}
				key := "user:" + ev.Target.ID
				if last[key] == nil {
					last[key] = map[string]string{}
				}
				if prev, ok := last[key]["role"]; ok && prev != string(c.Old) {
					t.Fatalf("%s role: old %s, but the previous change left %s", key, c.Old, prev)
				}
				if string(c.Old) == string(c.New) {
					t.Fatalf("%s role: no-op change", key)
				}
				if c.Old != nil {
					roleChanges++
				}
				last[key]["role"] = string(c.New)
			}
			continue
		}
		if ev.Target.Type != "subscription" || ev.Outcome != trail.OutcomeSuccess {
			continue
		}
		if last[ev.Target.ID] == nil {
			last[ev.Target.ID] = map[string]string{}
		}
		for _, c := range ev.Changes {
			if prev, ok := last[ev.Target.ID][c.Field]; ok && prev != string(c.Old) {
				t.Fatalf("%s %s: old %s, but the previous change left %s", ev.Target.ID, c.Field, c.Old, prev)
			}
			if ev.Action == "subscription.update" && string(c.Old) == string(c.New) {
				t.Fatalf("%s %s: no-op change %s", ev.Target.ID, c.Field, c.New)
			}
			last[ev.Target.ID][c.Field] = string(c.New)
		}
	}
	subs := 0
	for k := range last {
		if strings.HasPrefix(k, "sub_") {
			subs++
		}
	}
	if subs != len(d.Tenants) || roleChanges == 0 {
		t.Fatalf("%d subscriptions changed (want %d), %d role changes", subs, len(d.Tenants), roleChanges)
	}
}

// No user acts before they joined or after they were deleted.
func TestUsersActOnlyWhileMembers(t *testing.T) {
	t.Parallel()
	d := generate(t, Config{})
	users := map[string]*User{}
	for ti := range d.Tenants {
		for ui := range d.Tenants[ti].Users {
			u := &d.Tenants[ti].Users[ui]
			users[u.ID] = u
		}
	}
	for _, ev := range d.Events {
		if ev.Actor.Type != trail.ActorUser {
			continue
		}
		u, ok := users[ev.Actor.ID]
		if !ok {
			continue // staff
		}
		if ev.OccurredAt.Before(u.Joined) || (!u.Deleted.IsZero() && ev.OccurredAt.After(u.Deleted.Add(time.Second))) {
			t.Fatalf("user %s acts (%s) at %v, member from %v to %v", u.ID, ev.Action, ev.OccurredAt, u.Joined, u.Deleted)
		}
	}
}

func TestTriesNameRealThings(t *testing.T) {
	t.Parallel()
	d := generate(t, Config{})
	tries := d.Tries()
	if len(tries) < 5 {
		t.Fatalf("%d tries", len(tries))
	}
	if tries[0].Command != "trail query --tenant acme --action 'subscription.*'" {
		t.Errorf("first try %q", tries[0].Command)
	}
	for _, tr := range tries {
		if !strings.HasPrefix(tr.Command, "trail ") || tr.Question == "" {
			t.Errorf("bad try %+v", tr)
		}
	}
}

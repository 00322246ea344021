package trailimport

import (
	"testing"
	"time"

	"github.com/trailhq/trail"
)

func TestSeedAction(t *testing.T) {
	for in, want := range map[string]string{
		"USER_DELETE":         "user.delete",
		"SUBSCRIPTION_CHANGE": "subscription.change",
		"ADMIN_COMMAND_RUN":   "admin.command_run",
		"LOGIN":               "legacy.login",
		"  Plan Change ":      "plan.change",
		"user.delete":         "user.delete",
		"9LIVES_UPDATE":       "legacy.x9lives_update",
	} {
		got, ok := SeedAction(in)
		if !ok || got != want {
			t.Errorf("SeedAction(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := SeedAction("!!!"); ok {
		t.Error(`SeedAction("!!!") accepted`)
	}
}

func TestAuditlogChanges(t *testing.T) {
	cs, err := AuditlogChanges(`{"seats": ["3", "10"], "plan": ["None", "pro"], "tags": {"type": "m2m", "operation": "add", "objects": ["a"]}}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 3 || cs[0].Field != "plan" || string(cs[0].Old) != "null" || string(cs[0].New) != `"pro"` ||
		cs[1].Field != "seats" || cs[2].Field != "tags" || cs[2].Old != nil {
		t.Errorf("changes %+v", cs)
	}
	for _, bad := range []string{`[1, 2]`, `{"a": [1]}`, `{"a": 3}`, `{`} {
		if _, err := AuditlogChanges(bad); err == nil {
			t.Errorf("AuditlogChanges(%s) accepted", bad)
		}
	}
}

func TestHistoryModel(t *testing.T) {
	for in, want := range map[string]string{
		"billing_historicalsubscription": "subscription",
		"public.core_historicaluser":     "user",
		"HistoricalInvoice":              "invoice",
		"plain":                          "plain",
	} {
		if got := HistoryModel(in); got != want {
			t.Errorf("HistoryModel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIDIsStableAndTimeOrdered(t *testing.T) {
	at := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	a := ID("simple-history", "t", "1", at)
	if a != ID("simple-history", "t", "1", at) {
		t.Fatal("ID is not deterministic")
	}
	if a == ID("simple-history", "t", "2", at) || a == ID("auditlog", "t", "1", at) {
		t.Error("different rows share an ID")
	}
	if a.Version() != 7 || a.Variant().String() != "RFC4122" {
		t.Errorf("ID %s: version %d variant %s", a, a.Version(), a.Variant())
	}
	if b := ID("simple-history", "t", "0", at.Add(time.Millisecond)); b.String() <= a.String() {
		t.Errorf("a later row's ID %s sorts before %s", b, a)
	}
}

// FuzzAuditlogChanges: whatever the column holds, the import never panics
// and every change it accepts is valid in an event.
func FuzzAuditlogChanges(f *testing.F) {
	for _, s := range []string{`{"plan": ["free", "pro"]}`, `{"a": ["None", "None"]}`, `{"m": {"type": "m2m"}}`, `null`, ``, `{"a": ["\u0000", 1e400]}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cs, err := AuditlogChanges(s)
		if err != nil {
			return
		}
		ev := trail.Event{Tenant: "acme", Actor: trail.Actor{Type: trail.ActorSystem, ID: "x"}, Action: "x.update", Changes: cs}
		if err := ev.Normalize(); err == nil {
			_ = ev.Validate() // may refuse (e.g. U+0000), must not panic
		}
	})
}

func FuzzSeedAction(f *testing.F) {
	for _, s := range []string{"USER_DELETE", "LOGIN", "", "_", "a_b_c", "Ünïcode_ACTION"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if a, ok := SeedAction(s); ok && !trail.ValidAction(a) {
			t.Errorf("SeedAction(%q) = %q, not a valid action", s, a)
		}
	})
}

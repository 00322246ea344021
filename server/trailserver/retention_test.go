package trailserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailarchive"
	"github.com/trailhq/trail/server/trailcli"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailpgx"
	"github.com/trailhq/trail/trailseal"
)

// retentionBackend is the retention backend of the fixture's store.
func retentionBackend(st trail.Store) trailarchive.Backend {
	switch s := st.(type) {
	case *trailsqlite.Store:
		return trailarchive.NewSQLite(s)
	case *trailpgx.Store:
		return trailarchive.NewPostgres(s)
	}
	panic("no retention backend for this store")
}

// withRetention serves the retention endpoints over the fixture's store,
// as trail serve does.
func withRetention(cfg *trailserver.Config) {
	cfg.Retention = trailcli.RetentionAPI(retentionBackend(cfg.Store), nil)
}

// retentionEvents returns the retention.* events of tenant, oldest first.
func (f *fixture) retentionEvents(tenant string) []trail.Event {
	f.t.Helper()
	var out []trail.Event
	for _, ev := range f.events(trail.Query{Tenant: tenant, AllTenants: tenant == "", Action: "retention.*"}) {
		if ev.Tenant == tenant {
			out = append([]trail.Event{ev}, out...)
		}
	}
	return out
}

// Every change through the API is an audited retention.* event in the
// tenant it concerns, by the key (service:key-<id>) from the caller's
// address; refusals change and record nothing; a tenant key sees its
// tenant's share.
func TestRetentionAPI(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b, withRetention)
		admin := f.key["admin"]

		r := f.json("PUT", "/v1/retention/policies", "admin", map[string]any{"action": "auth.*", "keep": "90d", "then": "delete"})
		if r.status != http.StatusOK {
			t.Fatalf("set: %d %s", r.status, r.body)
		}
		r = f.json("PUT", "/v1/retention/policies", "admin", map[string]any{"action": "auth.*", "keep": "30d", "then": "delete"})
		if r.status != http.StatusOK {
			t.Fatalf("set again: %d %s", r.status, r.body)
		}
		// acme's tenant-wide rule would disagree with auth.*: 409, the
		// conflict explained, nothing stored or recorded.
		before := f.count()
		r = f.json("PUT", "/v1/retention/policies", "adminA", map[string]any{"tenant": "acme", "keep": "2y"})
		if p := r.problem(t); r.status != http.StatusConflict || p.Field != "tenant" || !strings.Contains(p.Detail, "tenant acme keeps 2y then archive, but auth.* events keep 30d then delete") {
			t.Fatalf("conflict: %d %+v", r.status, p)
		}
		if f.count() != before {
			t.Fatal("a refused policy was recorded")
		}
		r = f.json("PUT", "/v1/retention/policies", "adminA", map[string]any{"tenant": "acme", "action": "auth.*", "keep": "1y"})
		if r.status != http.StatusOK {
			t.Fatalf("set acme auth.*: %d %s", r.status, r.body)
		}
		r = f.json("POST", "/v1/retention/holds", "admin", map[string]any{"tenant": "globex", "reason": "case 42", "min_keep": "7y"})
		var hr trailserver.RetentionHoldResult
		json.Unmarshal(r.body, &hr)
		if r.status != http.StatusCreated || len(hr.Notes) != 1 || !strings.Contains(hr.Notes[0], "auth.* keeps 30d, less than the hold's 7y") {
			t.Fatalf("hold: %d %s", r.status, r.body)
		}
		// A policy of globex shorter than its hold: 409 on keep.
		r = f.json("PUT", "/v1/retention/policies", "admin", map[string]any{"tenant": "globex", "action": "user.*", "keep": "30d"})
		if p := r.problem(t); r.status != http.StatusConflict || p.Field != "keep" || !strings.Contains(p.Detail, "shorter than the legal hold on tenant globex") {
			t.Fatalf("shorter than a hold: %d %+v", r.status, p)
		}

		// The state: everything for the admin; acme's share for acme.
		var st trailserver.RetentionState
		r = f.do("GET", "/v1/retention", "readerAll", nil)
		json.Unmarshal(r.body, &st)
		if r.status != 200 || len(st.Policies) != 2 || len(st.Holds) != 1 || st.Holds[0].Since == nil || st.Default.Keep != "1y" {
			t.Fatalf("state: %d %s", r.status, r.body)
		}
		st = trailserver.RetentionState{}
		r = f.do("GET", "/v1/retention", "readerA", nil)
		json.Unmarshal(r.body, &st)
		if r.status != 200 || len(st.Policies) != 2 || len(st.Holds) != 0 {
			t.Fatalf("acme's state: %d %s", r.status, r.body)
		}

		if r = f.do("DELETE", "/v1/retention/policies?action=auth.*", "admin", nil); r.status != http.StatusNoContent {
			t.Fatalf("unset: %d %s", r.status, r.body)
		}
		if r = f.do("DELETE", "/v1/retention/policies?action=auth.*", "admin", nil); r.status != http.StatusNotFound {
			t.Fatalf("unset again: %d %s", r.status, r.body)
		}
		if r = f.do("DELETE", "/v1/retention/holds?tenant=globex", "admin", nil); r.status != http.StatusNoContent {
			t.Fatalf("release: %d %s", r.status, r.body)
		}

		type want struct{ action, target, changes string }
		check := func(tenant string, wants []want) {
			t.Helper()
			evs := f.retentionEvents(tenant)
			if len(evs) != len(wants) {
				t.Fatalf("tenant %q: %d retention events, want %d", tenant, len(evs), len(wants))
			}
			for i, w := range wants {
				ev := evs[i]
				var cs []string
				for _, c := range ev.Changes {
					cs = append(cs, c.Field+":"+string(c.Old)+">"+string(c.New))
				}
				if ev.Action != w.action || ev.Target.Type+":"+ev.Target.ID != w.target || strings.Join(cs, " ") != w.changes {
					t.Errorf("tenant %q event %d: %s %s:%s %v, want %s %s %s", tenant, i, ev.Action, ev.Target.Type, ev.Target.ID, cs, w.action, w.target, w.changes)
				}
				key := admin
				if tenant == "acme" {
					key = f.key["adminA"]
				}
				if ev.Actor.Type != trail.ActorService || ev.Actor.ID != "key-"+key.ID || ev.Actor.IP == "" || ev.Source != "trail-server" {
					t.Errorf("tenant %q event %d by %+v (source %q), want service:key-%s with its IP", tenant, i, ev.Actor, ev.Source, key.ID)
				}
			}
		}
		check("", []want{
			{"retention.policy.set", "retention_policy:*/auth.*", `keep:>"90d" then:>"delete"`},
			{"retention.policy.set", "retention_policy:*/auth.*", `keep:"90d">"30d"`},
			{"retention.policy.unset", "retention_policy:*/auth.*", `keep:"30d"> then:"delete">`},
		})
		check("acme", []want{{"retention.policy.set", "retention_policy:acme/auth.*", `keep:>"1y" then:>"archive"`}})
		check("globex", []want{
			{"retention.hold.place", "legal_hold:globex", `reason:>"case 42" min_keep:>"7y"`},
			{"retention.hold.release", "legal_hold:globex", `reason:"case 42"> min_keep:"7y">`},
		})
	})
}

// The plan counts, per tenant, what a run would purge, with no event ID;
// a tenant key sees its tenant's counts only.
func TestRetentionPlanAPI(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		later := time.Now().Add(400 * 24 * time.Hour) // every seeded event is past the default 365 days
		f := newFixture(t, b, func(cfg *trailserver.Config) {
			cfg.Retention = trailcli.RetentionAPI(retentionBackend(cfg.Store), func() time.Time { return later })
		})
		// Nothing sealed yet: every event waits for a checkpoint.
		var pl trailserver.RetentionPlan
		r := f.do("GET", "/v1/retention/plan", "admin", nil)
		json.Unmarshal(r.body, &pl)
		if r.status != 200 || pl.Archive != 0 || len(pl.Tenants) != 0 {
			t.Fatalf("plan before sealing: %d %s", r.status, r.body)
		}
		skey, _, err := trailseal.GenerateSigningKey(trailseal.DefaultOrigin)
		if err != nil {
			t.Fatal(err)
		}
		signer, _, err := trailseal.ParseSigningKey(skey)
		if err != nil {
			t.Fatal(err)
		}
		sl, err := trailseal.NewSealer(f.store.(trailseal.Store), &trailseal.Config{Signer: signer, CheckpointEvents: 1, CheckpointInterval: time.Nanosecond})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sl.SealAll(context.Background()); err != nil {
			t.Fatal(err)
		}
		sl.Release(context.Background())
		acme := len(f.events(trail.Query{Tenant: "acme"}))
		r = f.do("GET", "/v1/retention/plan", "admin", nil)
		pl = trailserver.RetentionPlan{}
		json.Unmarshal(r.body, &pl)
		if r.status != 200 || pl.Archive < int64(acme) || len(pl.Tenants) != 3 || strings.Contains(string(r.body), f.acmeEvent.String()) {
			t.Fatalf("plan: %d %s", r.status, r.body)
		}
		r = f.do("GET", "/v1/retention/plan", "readerA", nil)
		pl = trailserver.RetentionPlan{}
		json.Unmarshal(r.body, &pl)
		if r.status != 200 || len(pl.Tenants) != 1 || pl.Tenants[0].Tenant != "acme" || pl.Archive != pl.Tenants[0].Archive || pl.Tenants[0].Archive < int64(acme) {
			t.Fatalf("acme's plan: %d %s", r.status, r.body)
		}
	})
}

// Without a retention backend the endpoints answer 404, saying so.
func TestRetentionNotConfigured(t *testing.T) {
	f := newFixture(t, backends[0], nil)
	for _, c := range []struct{ method, path string }{{"GET", "/v1/retention"}, {"GET", "/v1/retention/plan"},
		{"PUT", "/v1/retention/policies"}, {"DELETE", "/v1/retention/holds?tenant=acme"}} {
		r := f.do(c.method, c.path, "admin", []byte(`{"keep":"90d"}`))
		if p := r.problem(t); r.status != http.StatusNotFound || !strings.Contains(p.Detail, "retention is not configured") {
			t.Errorf("%s %s: %d %+v", c.method, c.path, r.status, p)
		}
	}
}

// With the privacy layer, a change's event is stored in its protected form
// (the key's IP encrypted under the key's data key, created before the
// change's transaction) and reads back revealed.
func TestRetentionAPIPrivacy(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b, func(cfg *trailserver.Config) {
			p, _ := privacyFor(t, cfg.Store)
			cfg.Transform, cfg.Reveal = p, p
			rb := retentionBackend(cfg.Store)
			switch rb := rb.(type) {
			case *trailarchive.SQLite:
				rb.Transform = p
			case *trailarchive.Postgres:
				rb.Transform = p
			}
			cfg.Retention = trailcli.RetentionAPI(rb, nil)
		})
		if r := f.json("POST", "/v1/retention/holds", "adminA", map[string]any{"tenant": "acme", "reason": "case 7"}); r.status != http.StatusCreated {
			t.Fatalf("hold: %d %s", r.status, r.body)
		}
		evs := f.retentionEvents("acme")
		if len(evs) != 1 || !strings.HasPrefix(evs[0].Actor.IP, "enc:") {
			t.Fatalf("stored: %+v", evs)
		}
		r := f.do("GET", "/v1/events?action=retention.*", "readerA", nil)
		var page trailserver.EventPage
		json.Unmarshal(r.body, &page)
		if r.status != 200 || len(page.Events) != 1 || page.Events[0].Actor.IP != "127.0.0.1" {
			t.Fatalf("read: %d %s", r.status, r.body)
		}
	})
}

// Issue 13: a tenant admin re-posting the all-tenant admin's hold without
// its min_keep is refused (403 naming the field and why), the hold reads
// back as it was and still refuses a policy keeping less, and the refusal
// is recorded; the all-tenant admin's weakening goes through, recorded as
// one.
func TestRetentionHoldWeakening(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b, withRetention)
		if r := f.json("POST", "/v1/retention/holds", "admin", map[string]any{"tenant": "acme", "reason": "case 42", "min_keep": "7y"}); r.status != http.StatusCreated {
			t.Fatalf("hold: %d %s", r.status, r.body)
		}
		state := func() trailserver.RetentionHold {
			t.Helper()
			var st trailserver.RetentionState
			if r := f.do("GET", "/v1/retention", "adminA", nil); r.status != 200 || json.Unmarshal(r.body, &st) != nil || len(st.Holds) != 1 {
				t.Fatalf("state: %d %s", r.status, r.body)
			}
			return st.Holds[0]
		}
		held := state()
		short := map[string]any{"tenant": "acme", "keep": "1d", "then": "delete"}
		shortRefused := func(when string) {
			t.Helper()
			r := f.json("PUT", "/v1/retention/policies", "adminA", short)
			if p := r.problem(t); r.status != http.StatusConflict || p.Field != "keep" {
				t.Fatalf("keep 1d then delete %s: %d %+v", when, r.status, p)
			}
		}
		shortRefused("under the hold")

		r := f.json("POST", "/v1/retention/holds", "adminA", map[string]any{"tenant": "acme", "reason": "case 42", "min_keep": ""})
		p := r.problem(t)
		if r.status != http.StatusForbidden || p.Type != trailserver.ProblemForbidden || p.Field != "min_keep" ||
			!strings.Contains(p.Detail, "min_keep none would weaken the legal hold on tenant acme, which keeps at least 7y") ||
			!strings.Contains(p.Detail, "needs an all-tenant admin key") || strings.Contains(p.Detail, "trailarchive") {
			t.Fatalf("tenant admin weakens: %d %+v", r.status, p)
		}
		if got := state(); got.Reason != held.Reason || got.MinKeep != held.MinKeep || !got.Since.Equal(*held.Since) {
			t.Fatalf("after the refusal the hold is %+v, want %+v", got, held)
		}
		shortRefused("after the refused weakening")
		evs := f.retentionEvents("acme")
		if ev := evs[len(evs)-1]; ev.Action != "retention.hold.place" || ev.Outcome != trail.OutcomeDenied ||
			ev.Actor.ID != "key-"+f.key["adminA"].ID || ev.Metadata["refused"] != "min_keep" ||
			len(ev.Changes) != 1 || string(ev.Changes[0].Old) != `"7y"` || string(ev.Changes[0].New) != `""` {
			t.Fatalf("refusal recorded as %s %s by %s: %v %+v", ev.Action, ev.Outcome, ev.Actor.ID, ev.Metadata, ev.Changes)
		}

		if r := f.json("POST", "/v1/retention/holds", "admin", map[string]any{"tenant": "acme", "reason": "case 42"}); r.status != http.StatusCreated {
			t.Fatalf("all-tenant admin weakens: %d %s", r.status, r.body)
		}
		evs = f.retentionEvents("acme")
		if ev := evs[len(evs)-1]; ev.Outcome != trail.OutcomeSuccess || ev.Actor.ID != "key-"+f.key["admin"].ID || ev.Metadata["weakened"] != "min_keep" {
			t.Fatalf("weakening recorded as %s by %s: %v", ev.Outcome, ev.Actor.ID, ev.Metadata)
		}
		if r := f.json("PUT", "/v1/retention/policies", "adminA", short); r.status != http.StatusOK {
			t.Fatalf("keep 1d then delete once the hold keeps no minimum: %d %s", r.status, r.body)
		}
	})
}

package trailserver_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailclient"
)

// TestIngestIDOfAnotherTenant is issue 13's first finding: tenant B posting
// its own event with the ID of tenant A's event got 200 "duplicate", its
// event was not stored, and the answer told B the ID existed elsewhere.
// Now it is 409, the same answer as for an ID reused in B's own tenant, it
// names nothing of A's event, nothing of B's request is stored, and A's
// event is untouched. A true retry is still a duplicate.
func TestIngestIDOfAnotherTenant(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b, nil)
		before := f.count()

		// globex's ingest-all key posts a globex event with acme's event ID.
		theirs := newEvent("globex")
		theirs["id"] = f.acmeEvent.String()
		r := f.json("POST", "/v1/events", "ingestAll", theirs)
		if r.status != http.StatusConflict {
			t.Fatalf("ingest with another tenant's ID: %d %s, want 409", r.status, r.body)
		}
		p := r.problem(t)
		if p.Field != "id" {
			t.Errorf("problem field %q, want id", p.Field)
		}
		for _, leak := range []string{"acme", "subscription", "sub_acme", "Changed"} {
			if strings.Contains(string(r.body), leak) {
				t.Errorf("the answer names %q of the event holding the ID: %s", leak, r.body)
			}
		}

		// The same ID reused inside the posting tenant for another event
		// gets the same answer (no oracle telling the two apart).
		mine := newEvent("acme")
		r1 := f.json("POST", "/v1/events", "ingestA", mine)
		if r1.status != http.StatusCreated {
			t.Fatalf("ingest: %d %s", r1.status, r1.body)
		}
		other := newEvent("acme")
		other["id"], other["action"] = mine["id"], "user.delete"
		r2 := f.json("POST", "/v1/events", "ingestA", other)
		if r2.status != http.StatusConflict || r2.problem(t).Detail != p.Detail {
			t.Errorf("reuse in the own tenant: %d %s; want the same 409 as across tenants", r2.status, r2.body)
		}

		// In a batch: the conflicting event is named by index, and the
		// batch's other events are not stored.
		fresh := newEvent("globex")
		r3 := f.json("POST", "/v1/events", "ingestAll", map[string]any{"events": []any{fresh, theirs}})
		if r3.status != http.StatusConflict || r3.problem(t).Field != "events[1].id" {
			t.Fatalf("batch: %d %s, want 409 naming events[1].id", r3.status, r3.body)
		}
		if got := f.count(); got != before+1 {
			t.Errorf("store holds %d events, want %d (only acme's new one)", got, before+1)
		}
		acme := f.events(trail.Query{Tenant: "acme", TargetType: "subscription", TargetID: "sub_acme"})
		if len(acme) != 1 || acme[0].ID != f.acmeEvent || acme[0].Action != "subscription.update" {
			t.Errorf("acme's event changed: %+v", acme)
		}
		freshID := uuid.MustParse(fresh["id"].(string))
		if _, err := f.store.Get(t.Context(), freshID); err == nil {
			t.Error("the batch's fresh event was stored")
		}

		// A true retry of the own event is a duplicate, as before.
		r4 := f.json("POST", "/v1/events", "ingestA", mine)
		if r4.status != http.StatusOK || !strings.Contains(string(r4.body), `"duplicate"`) {
			t.Errorf("retry: %d %s, want 200 duplicate", r4.status, r4.body)
		}
		m := f.do("GET", "/metrics", "admin", nil)
		if !strings.Contains(string(m.body), `trail_ingest_events_total{status="conflict"} 3`) {
			t.Errorf("metrics do not count the 3 conflicts")
		}
	})
}

// TestClientIDOfAnotherTenant: trailclient counts an event refused for its
// ID as failed, not delivered, and still delivers the events sent with it.
func TestClientIDOfAnotherTenant(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b, nil)
		c, err := trailclient.New(trailclient.Config{BaseURL: f.ts.URL, Key: f.secret["ingestAll"]})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(t.Context())
		ctx := trail.WithTenant(t.Context(), "globex")
		ctx = trail.WithActor(ctx, trail.Actor{Type: trail.ActorUser, ID: "g1"})
		_, err = c.Record(ctx, trail.Event{ID: f.acmeEvent, Action: "user.update", Target: trail.Target{Type: "user", ID: "g2"}})
		var ae *trailclient.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusConflict {
			t.Fatalf("Record with acme's ID from globex = %v, want a 409 APIError", err)
		}
		res, err := c.Record(ctx, trail.Event{Action: "user.update", Target: trail.Target{Type: "user", ID: "g2"}})
		if err != nil || res.Duplicate {
			t.Fatalf("a fresh event after the conflict: %+v %v", res, err)
		}
		if got, err := f.store.Get(t.Context(), res.ID); err != nil || got.Tenant != "globex" {
			t.Errorf("fresh event: %+v %v", got, err)
		}
	})
}

package trailserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/trailprivacy"
)

// statsTotal is the number of events GET /v1/stats counts for params.
func statsTotal(t *testing.T, f *fixture, key, params string) int64 {
	t.Helper()
	r := f.do("GET", "/v1/stats?"+params, key, nil)
	var body trailserver.StatsResponse
	if r.status != 200 || json.Unmarshal(r.body, &body) != nil {
		t.Fatalf("stats %s: %d %s", params, r.status, clip(r.body))
	}
	var n int64
	for _, c := range body.Counts {
		n += c.N
	}
	return n
}

// listIDs is the events GET /v1/events returns for params.
func listIDs(t *testing.T, f *fixture, key, params string) []trail.Event {
	t.Helper()
	r := f.do("GET", "/v1/events?"+params, key, nil)
	var page trailserver.EventPage
	if r.status != 200 || json.Unmarshal(r.body, &page) != nil {
		t.Fatalf("list %s: %d %s", params, r.status, clip(r.body))
	}
	return page.Events
}

// TestActorNameEmailEncrypted: with the privacy layer, an actor's name and
// e-mail are stored encrypted, and actor_name= / actor_email= still find
// their events exactly, through the tenant's pseudonyms, in the list, the
// count and the export; a search across tenants must name one.
func TestActorNameEmailEncrypted(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		var p *trailprivacy.Privacy
		f := newFixture(t, b, func(c *trailserver.Config) {
			p, _ = privacyFor(t, c.Store)
			c.Transform, c.Reveal = p, p
		})
		for _, who := range []struct{ id, name, email, action string }{
			{"n1", "Nina Silva", "nina@acme.test", "user.update"},
			{"n1", "Nina Silva", "nina@acme.test", "doc.delete"},
			{"y1", "Yara Ito", "yara@acme.test", "user.update"},
		} {
			ev := fmt.Sprintf(`{"tenant":"acme","actor":{"type":"user","id":%q,"name":%q,"email":%q},"action":%q}`, who.id, who.name, who.email, who.action)
			if r := f.do("POST", "/v1/events", "ingestA", []byte(ev)); r.status/100 != 2 {
				t.Fatalf("ingest: %d %s", r.status, clip(r.body))
			}
		}
		for _, c := range []struct {
			params string
			want   int
		}{
			{"actor_email=" + url.QueryEscape("nina@acme.test"), 2},
			{"actor_name=" + url.QueryEscape("Nina Silva"), 2},
			{"actor_name=" + url.QueryEscape("Nina Silva") + "&action=*.delete", 1},
			{"actor_email=" + url.QueryEscape("NINA@acme.test"), 0},
			{"actor_email=" + url.QueryEscape("yara@acme.test"), 1},
		} {
			evs := listIDs(t, f, "readerA", c.params)
			if len(evs) != c.want {
				t.Errorf("%s: %d events, want %d", c.params, len(evs), c.want)
			}
			for _, ev := range evs {
				if q, _ := url.ParseQuery(c.params); ev.Actor.Email != q.Get("actor_email") && ev.Actor.Name != q.Get("actor_name") {
					t.Errorf("%s: found %+v (revealed)", c.params, ev.Actor)
				}
			}
			if n := statsTotal(t, f, "readerA", c.params); n != int64(c.want) {
				t.Errorf("stats %s: %d, want %d", c.params, n, c.want)
			}
		}
		// The export takes the same filter.
		r0 := f.do("GET", "/v1/export?format=jsonl&actor_email=nina%40acme.test", "readerA", nil)
		if r0.status != 200 || bytes.Count(r0.body, []byte("\n")) != 2 || bytes.Count(r0.body, []byte("nina@acme.test")) != 2 {
			t.Fatalf("export by e-mail: %d %s", r0.status, clip(r0.body))
		}
		// An all-tenant key names the tenant: the pseudonyms are per tenant.
		r := f.do("GET", "/v1/events?actor_email=nina%40acme.test", "readerAll", nil)
		if r.status != 400 || r.problem(t).Field != "actor_email" {
			t.Fatalf("all tenants: %d %s, want 400 naming actor_email", r.status, clip(r.body))
		}
		if evs := listIDs(t, f, "readerAll", "tenant=acme&actor_email=nina%40acme.test"); len(evs) != 2 {
			t.Fatalf("all-tenant key naming acme: %d events, want 2", len(evs))
		}
		// Another tenant's key finds nothing of acme's.
		if evs := listIDs(t, f, "readerB", "actor_email=nina%40acme.test"); len(evs) != 0 {
			t.Fatalf("globex reader found %d of acme's events", len(evs))
		}
		// The live tail matches the stored pseudonyms too: of a yara event
		// and a nina event written after it opened, it sends nina's.
		sc, next := openTail(t, f, "/v1/tail?actor_email=nina%40acme.test&backlog=1", "readerA")
		if ev := next(); ev.Actor.Email != "nina@acme.test" {
			t.Fatalf("tail backlog: %+v", ev.Actor)
		}
		for sc.Scan() && sc.Text() != ": streaming" {
		}
		for _, who := range []string{"yara", "nina"} {
			ev := fmt.Sprintf(`{"tenant":"acme","actor":{"type":"user","id":%q,"email":"%s@acme.test"},"action":"doc.view"}`, who[:1]+"1", who)
			if r := f.do("POST", "/v1/events", "ingestA", []byte(ev)); r.status/100 != 2 {
				t.Fatalf("ingest: %d %s", r.status, clip(r.body))
			}
		}
		if ev := next(); ev.Actor.Email != "nina@acme.test" || ev.Action != "doc.view" {
			t.Fatalf("tail delivered %+v %s, want nina's doc.view", ev.Actor, ev.Action)
		}
		// Erasure holds: after Forget the pseudonym still matches the
		// e-mail asked for (the reader knew it), but nothing reveals it.
		if err := p.Forget(context.Background(), "acme", "user:y1"); err != nil {
			t.Fatal(err)
		}
		evs := listIDs(t, f, "readerA", "actor_email=yara%40acme.test")
		if len(evs) != 2 || evs[1].Actor.Name != trailprivacy.Erased {
			t.Fatalf("after Forget: %+v, want yara's two events, erased", evs)
		}
		for _, ev := range evs {
			if ev.Actor.Email != trailprivacy.Erased {
				t.Fatalf("after Forget: e-mail %q, want %q", ev.Actor.Email, trailprivacy.Erased)
			}
		}
	})
}

// TestCountsEveryFilterAPI: GET /v1/stats takes every filter of the list
// and counts what the list returns; without a privacy layer actor_email
// matches the plaintext e-mail.
func TestCountsEveryFilterAPI(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b, nil)
		for _, params := range []string{
			"tenant=acme", "actor=user:u2", "actor_email=ann%40acme.test", "target=subscription:sub_acme",
			"field=plan", "text=deleted", "outcome=success", "action=!user.*", "since=30d&action=*.update",
		} {
			list := listIDs(t, f, "readerA", params+"&include_access=false")
			if n := statsTotal(t, f, "readerA", params+"&include_access=false"); n != int64(len(list)) {
				t.Errorf("%s: stats %d, list %d", params, n, len(list))
			}
		}
		if evs := listIDs(t, f, "readerA", "actor_email=ann%40acme.test"); len(evs) != 1 || evs[0].Actor.ID != "u1" {
			t.Fatalf("plaintext actor_email: %+v", evs)
		}
		if evs := listIDs(t, f, "readerAll", "actor_email=ann%40acme.test"); len(evs) != 1 {
			t.Fatalf("plaintext actor_email across tenants: %d events, want 1", len(evs))
		}
	})
}

// TestFacets: GET /v1/facets lists the pickers' values from the data: a
// tenant key sees its tenant's only, an all-tenant key every tenant.
func TestFacets(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b, nil)
		get := func(key, params string) trailserver.FacetsResponse {
			r := f.do("GET", "/v1/facets?"+params, key, nil)
			var out trailserver.FacetsResponse
			if r.status != 200 || json.Unmarshal(r.body, &out) != nil {
				t.Fatalf("facets %s %s: %d %s", key, params, r.status, clip(r.body))
			}
			return out
		}
		a := get("readerA", "")
		if !slices.Equal(a.Tenants, []string{"acme"}) || !slices.Contains(a.Actions, "user.delete") || slices.Contains(a.Actions, "deploy.finish") ||
			!slices.Equal(a.ActorTypes, []string{"user"}) || !slices.Equal(a.TargetTypes, []string{"subscription", "user"}) {
			t.Errorf("acme's facets %+v", a)
		}
		all := get("readerAll", "")
		if !slices.Equal(all.Tenants, []string{"acme", "globex"}) || !slices.Contains(all.Actions, "deploy.finish") || !slices.Contains(all.ActorTypes, "system") {
			t.Errorf("all tenants' facets %+v", all)
		}
		if g := get("readerAll", "tenant=globex"); !slices.Equal(g.TargetTypes, []string{"subscription"}) || slices.Contains(g.Actions, "user.delete") {
			t.Errorf("globex's facets %+v", g)
		}
		if r := f.do("GET", "/v1/facets?tenant=globex", "readerA", nil); r.status != 403 {
			t.Errorf("a tenant key asking for another tenant's facets: %d", r.status)
		}
		if r := f.do("GET", "/v1/facets?action=x", "readerA", nil); r.status != 400 {
			t.Errorf("unknown parameter: %d", r.status)
		}
	})
}

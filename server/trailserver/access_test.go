package trailserver_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/trailhq/trail/server/trailserver"
)

// TestListHidesAccessEvents: GET /v1/events leaves the audit.* events (its
// own reads) out unless include_access=true or the action filter names
// them, so that paging a list is stable however often it is read (issue 15).
func TestListHidesAccessEvents(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b, nil)
		list := func(q string) trailserver.EventPage {
			t.Helper()
			r := f.do("GET", "/v1/events?tenant=acme&limit=1000"+q, "admin", nil)
			if r.status != http.StatusOK {
				t.Fatalf("%s: %d %s", q, r.status, clip(r.body))
			}
			var p trailserver.EventPage
			if err := json.Unmarshal(r.body, &p); err != nil {
				t.Fatal(err)
			}
			return p
		}
		first := list("")
		if len(first.Events) == 0 {
			t.Fatal("no events seeded in acme")
		}
		for range 5 {
			p := list("")
			if len(p.Events) != len(first.Events) || p.Events[0].ID != first.Events[0].ID {
				t.Fatalf("the default list changed after reads: %d events, newest %s (was %d, %s)", len(p.Events), p.Events[0].ID, len(first.Events), first.Events[0].ID)
			}
			for _, ev := range p.Events {
				if ev.Action == "audit.read" {
					t.Fatalf("the default list shows %s", ev.Action)
				}
			}
		}
		reads := func(q string) int {
			n := 0
			for _, ev := range list(q).Events {
				if ev.Action == "audit.read" {
					n++
				}
			}
			return n
		}
		if n := reads("&include_access=true"); n < 6 {
			t.Fatalf("include_access=true: %d audit.read, want the 6 lists' at least", n)
		}
		if n := reads("&action=audit.read"); n < 6 {
			t.Fatalf("action=audit.read: %d audit.read", n)
		}
		if n := reads("&action=audit.*,user.*"); n < 6 {
			t.Fatalf("action=audit.*,user.*: %d audit.read", n)
		}
		if n := reads("&include_access=false&action=*.read"); n != 0 {
			t.Fatalf("include_access=false: %d audit.read", n)
		}
		if p := f.do("GET", "/v1/events?tenant=acme&include_access=yes", "admin", nil).problem(t); p.Field != "include_access" {
			t.Fatalf("include_access=yes: %+v", p)
		}
		// Exports keep them unless asked not to (archives and SIEMs).
		r := f.do("GET", "/v1/export?tenant=acme", "admin", nil)
		if r.status != 200 || !contains(string(r.body), `"audit.read"`) {
			t.Fatalf("export: %d, audit.read missing", r.status)
		}
		r = f.do("GET", "/v1/export?tenant=acme&include_access=false", "admin", nil)
		if r.status != 200 || contains(string(r.body), `"audit.read"`) {
			t.Fatalf("export include_access=false: %d, has audit.read", r.status)
		}
	})
}

// TestListMetadataSearch: metadata= finds a value in the events' metadata,
// and JSON syntax is a 400 naming the parameter.
func TestListMetadataSearch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b, nil)
		ev := newEvent("acme")
		ev["metadata"] = map[string]any{"ticket": "OPS-311"}
		if r := f.json("POST", "/v1/events", "admin", ev); r.status >= 300 {
			t.Fatalf("ingest: %d %s", r.status, clip(r.body))
		}
		r := f.do("GET", "/v1/events?tenant=acme&metadata=ops-311", "admin", nil)
		var p trailserver.EventPage
		if err := json.Unmarshal(r.body, &p); err != nil || r.status != 200 {
			t.Fatalf("%d %v %s", r.status, err, clip(r.body))
		}
		if len(p.Events) != 1 || p.Events[0].Metadata["ticket"] != "OPS-311" {
			t.Fatalf("metadata=ops-311: %d events", len(p.Events))
		}
		if pr := f.do("GET", "/v1/events?tenant=acme&metadata=a:b", "admin", nil).problem(t); pr.Field != "metadata" {
			t.Fatalf("metadata=a:b: %+v", pr)
		}
	})
}

package trailserver_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailserver"
)

// TestTour calls every endpoint successfully, checks the answers, and then
// that every documented operation was seen answering 2xx (each answer was
// checked against the OpenAPI document by fixture.do).
func TestTour(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b, nil)

		// Ingest: one event, then a batch in both forms, then duplicates.
		one := newEvent("acme")
		r := f.json("POST", "/v1/events", "ingestA", one)
		if r.status != http.StatusCreated {
			t.Fatalf("ingest one: %d %s", r.status, r.body)
		}
		var ir trailserver.IngestResponse
		json.Unmarshal(r.body, &ir)
		if len(ir.Results) != 1 || ir.Results[0].Status != "created" || ir.Results[0].ID.String() != one["id"] || ir.Results[0].RecordedAt == nil {
			t.Fatalf("ingest one: %+v", ir)
		}
		batch := []any{newEvent("acme"), newEvent(""), newEvent("acme")}
		r = f.json("POST", "/v1/events", "ingestA", batch)
		json.Unmarshal(r.body, &ir)
		if r.status != http.StatusCreated || ir.Created != 3 || ir.Duplicates != 0 {
			t.Fatalf("ingest array: %d %s", r.status, r.body)
		}
		r = f.json("POST", "/v1/events", "ingestA", map[string]any{"events": append(batch, newEvent("acme"))})
		json.Unmarshal(r.body, &ir)
		if r.status != http.StatusCreated || ir.Created != 1 || ir.Duplicates != 3 {
			t.Fatalf("ingest envelope with 3 duplicates: %d %s", r.status, r.body)
		}
		for _, res := range ir.Results[:3] {
			if res.Status != "duplicate" || res.RecordedAt == nil {
				t.Errorf("duplicate result %+v: want status duplicate with the first copy's recorded_at", res)
			}
		}
		r = f.json("POST", "/v1/events", "ingestA", one)
		if r.status != http.StatusOK {
			t.Fatalf("all-duplicate ingest: %d, want 200", r.status)
		}
		// The event sent without tenant got the key's tenant.
		id := uuid.MustParse(batch[1].(map[string]any)["id"].(string))
		got, err := f.store.Get(context.Background(), id)
		if err != nil || got.Tenant != "acme" || got.Source != "api" {
			t.Fatalf("event without tenant from an acme key: %+v %v", got, err)
		}

		// Reads.
		r = f.do("GET", "/v1/events?action=user.*&limit=2", "readerA", nil)
		var page trailserver.EventPage
		json.Unmarshal(r.body, &page)
		if r.status != 200 || len(page.Events) != 2 || page.NextCursor == "" {
			t.Fatalf("query page 1: %d %s", r.status, clip(r.body))
		}
		seen := map[uuid.UUID]bool{}
		for cursor := page.NextCursor; ; {
			for _, ev := range page.Events {
				if seen[ev.ID] {
					t.Fatalf("event %s on two pages", ev.ID)
				}
				seen[ev.ID] = true
				if ev.Tenant != "acme" || !strings.HasPrefix(ev.Action, "user.") {
					t.Fatalf("event %+v does not match the filter", ev)
				}
			}
			if cursor == "" {
				break
			}
			r = f.do("GET", "/v1/events?action=user.*&limit=2&cursor="+cursor, "readerA", nil)
			page = trailserver.EventPage{}
			json.Unmarshal(r.body, &page)
			cursor = page.NextCursor
		}
		if len(seen) != 6 { // 5 ingested user.update + the seeded user.delete
			t.Fatalf("paged through %d events, want 6", len(seen))
		}
		r = f.do("GET", "/v1/events/"+f.acmeEvent.String(), "readerA", nil)
		var ev trail.Event
		json.Unmarshal(r.body, &ev)
		if r.status != 200 || ev.ID != f.acmeEvent || len(ev.Changes) != 1 || string(ev.Changes[0].New) != `"pro"` {
			t.Fatalf("get: %d %s", r.status, r.body)
		}
		r = f.do("GET", "/v1/objects/subscription/sub_acme/history", "readerA", nil)
		page = trailserver.EventPage{}
		json.Unmarshal(r.body, &page)
		if r.status != 200 || len(page.Events) != 1 || page.Events[0].ID != f.acmeEvent {
			t.Fatalf("history: %d %s", r.status, r.body)
		}
		r = f.do("GET", "/v1/stats?action=subscription.*", "readerAll", nil)
		var stats trailserver.StatsResponse
		json.Unmarshal(r.body, &stats)
		var n int64
		for _, c := range stats.Counts {
			n += c.N
		}
		if r.status != 200 || n != 2 {
			t.Fatalf("stats over all tenants: %d %s", r.status, r.body)
		}
		// tz: the same events counted per Los Angeles day, each day its
		// midnight there; an unknown zone is a 400 naming tz.
		la, _ := time.LoadLocation("America/Los_Angeles")
		r = f.do("GET", "/v1/stats?action=subscription.*&tz=America/Los_Angeles", "readerAll", nil)
		stats = trailserver.StatsResponse{}
		json.Unmarshal(r.body, &stats)
		n = 0
		for _, c := range stats.Counts {
			n += c.N
			if d := c.Day.In(la); r.status == 200 && (d.Hour() != 0 || d.Minute() != 0 || !strings.Contains(string(r.body), d.Format("T00:00:00-07:00")) && !strings.Contains(string(r.body), d.Format("T00:00:00-08:00"))) {
				t.Errorf("stats in Los Angeles: day %s is not a Los Angeles midnight: %s", c.Day, r.body)
			}
		}
		if r.status != 200 || n != 2 {
			t.Fatalf("stats in Los Angeles: %d %s", r.status, r.body)
		}
		for _, tz := range []string{"Mars/Olympus", "Local", "../etc/passwd"} {
			if r = f.do("GET", "/v1/stats?tz="+url.QueryEscape(tz), "readerAll", nil); r.status != 400 || r.problem(t).Field != "tz" {
				t.Errorf("stats with tz=%s: %d %s, want 400 naming tz", tz, r.status, r.body)
			}
		}
		r = f.do("GET", "/v1/export?format=jsonl&tenant=acme", "admin", nil)
		lines := strings.Split(strings.TrimSpace(string(r.body)), "\n")
		if r.status != 200 || r.header.Get("Content-Type") != "application/x-ndjson" || len(lines) < 7 {
			t.Fatalf("export jsonl: %d %d lines", r.status, len(lines))
		}
		for _, l := range lines {
			var e trail.Event
			if err := json.Unmarshal([]byte(l), &e); err != nil || e.Tenant != "acme" {
				t.Fatalf("export line %q: %v", l, err)
			}
		}
		r = f.do("GET", "/v1/export?format=csv&action=subscription.update", "readerAll", nil)
		recs, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
		if err != nil || r.status != 200 || len(recs) != 3 || recs[0][0] != "id" {
			t.Fatalf("export csv: %d %v %q", r.status, err, r.body)
		}

		// Keys.
		r = f.json("POST", "/v1/keys", "admin", map[string]any{"tenant": "initech", "role": "reader", "name": "ci", "expires_in": "90d"})
		var created struct {
			trailserver.Key
			Secret string `json:"key"`
		}
		json.Unmarshal(r.body, &created)
		if r.status != 201 || !strings.HasPrefix(created.Secret, "trail_") || created.ExpiresAt == nil {
			t.Fatalf("create key: %d %s", r.status, r.body)
		}
		f.secret["new"] = created.Secret
		if r := f.do("GET", "/v1/events", "new", nil); r.status != 200 {
			t.Fatalf("new key cannot read: %d", r.status)
		}
		r = f.do("GET", "/v1/keys", "admin", nil)
		if r.status != 200 || !strings.Contains(string(r.body), created.ID) || strings.Contains(string(r.body), created.Secret) {
			t.Fatalf("list keys: %d %s", r.status, r.body)
		}
		if r := f.do("DELETE", "/v1/keys/"+created.ID, "admin", nil); r.status != 204 {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
		if r := f.do("GET", "/v1/events", "new", nil); r.status != 401 {
			t.Fatalf("revoked key: %d, want 401", r.status)
		}

		// Tail, health, metrics, the document itself.
		tailOnce(t, f)
		for _, p := range []string{"/healthz", "/readyz", "/openapi.json"} {
			if r := f.do("GET", p, "", nil); r.status != 200 {
				t.Fatalf("%s: %d", p, r.status)
			}
		}
		r = f.do("GET", "/metrics", "", nil)
		for _, want := range []string{`trail_ingest_events_total{status="created"} 8`, `trail_http_requests_total{route="GET /v1/events",code="200"}`, "trail_audit_reads_total"} {
			if !strings.Contains(string(r.body), want) {
				t.Errorf("metrics lack %q", want)
			}
		}
	})
}

// tailOnce opens a tail, ingests, and reads the event from the stream.
func tailOnce(t *testing.T, f *fixture) {
	t.Helper()
	sc, next := openTail(t, f, "/v1/tail?action=user.*&backlog=1", "readerA")
	if ev := next(); ev.Tenant != "acme" || !strings.HasPrefix(ev.Action, "user.") {
		t.Fatalf("backlog event %+v", ev)
	}
	// Wait for the stream to be live, then write: globex and a non-matching
	// action must not arrive; the acme user.* event must.
	for sc.Scan() && sc.Text() != ": streaming" {
	}
	other := newEvent("globex")
	f.json("POST", "/v1/events", "admin", []any{other})
	skip := newEvent("acme")
	skip["action"] = "billing.charge"
	f.json("POST", "/v1/events", "admin", []any{skip})
	want := newEvent("acme")
	f.json("POST", "/v1/events", "ingestA", want)
	if ev := next(); ev.ID.String() != want["id"] {
		t.Fatalf("tail delivered %s (%s %s), want %s", ev.ID, ev.Tenant, ev.Action, want["id"])
	}
}

// openTail opens the tail at path with key's secret until the test ends,
// checks the answer against the spec, and returns its lines and a reader
// of its next event.
func openTail(t *testing.T, f *fixture, path, key string) (*bufio.Scanner, func() trail.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", f.ts.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+f.secret[key])
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	checkAgainstSpec(t, "GET", "/v1/tail", response{status: resp.StatusCode, header: resp.Header})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("tail: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	next := func() trail.Event {
		t.Helper()
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ev trail.Event
				if err := json.Unmarshal([]byte(data), &ev); err != nil {
					t.Fatal(err)
				}
				return ev
			}
		}
		t.Fatalf("tail ended: %v", sc.Err())
		return trail.Event{}
	}
	return sc, next
}

// TestAuthorizationMatrix runs every endpoint with every kind of key.
func TestAuthorizationMatrix(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b, withRetention)
		keys := []string{"admin", "adminA", "readerA", "ingestA", "readerAll", "ingestAll"}
		type row struct {
			name string
			do   func(key string) response
			want []int // per key, in the order of keys
			// check, when set, inspects a 2xx answer.
			check func(t *testing.T, key string, r response)
		}
		post := func(tenant string) func(string) response {
			return func(key string) response { return f.json("POST", "/v1/events", key, newEvent(tenant)) }
		}
		get := func(path string) func(string) response {
			return func(key string) response { return f.do("GET", path, key, nil) }
		}
		onlyTenants := func(allowed ...string) func(t *testing.T, key string, r response) {
			return func(t *testing.T, key string, r response) {
				var p trailserver.EventPage
				if err := json.Unmarshal(r.body, &p); err != nil {
					t.Fatal(err)
				}
				for _, ev := range p.Events {
					if tenantKey := f.key[key].Tenant; tenantKey != "" && ev.Tenant != tenantKey {
						t.Errorf("%s saw tenant %q", key, ev.Tenant)
					}
					ok := len(allowed) == 0
					for _, a := range allowed {
						ok = ok || ev.Tenant == a
					}
					if !ok {
						t.Errorf("%s saw tenant %q, want %v", key, ev.Tenant, allowed)
					}
				}
			}
		}
		const (
			ok  = 200
			cr  = 201
			bad = 403
			nf  = 404
		)
		rows := []row{
			{"ingest acme", post("acme"), []int{cr, cr, bad, cr, bad, cr}, nil},
			{"ingest globex", post("globex"), []int{cr, bad, bad, bad, bad, cr}, nil},
			{"ingest without tenant", post(""), []int{cr, cr, bad, cr, bad, cr}, nil},
			{"query acme", get("/v1/events?tenant=acme"), []int{ok, ok, ok, bad, ok, bad}, onlyTenants("acme")},
			{"query globex", get("/v1/events?tenant=globex"), []int{ok, bad, bad, bad, ok, bad}, onlyTenants("globex")},
			{"query all", get("/v1/events?limit=1000"), []int{ok, ok, ok, bad, ok, bad}, onlyTenants()},
			{"query by target of globex", get("/v1/events?target=subscription:sub_globex"), []int{ok, ok, ok, bad, ok, bad}, func(t *testing.T, key string, r response) {
				var p trailserver.EventPage
				json.Unmarshal(r.body, &p)
				if f.key[key].Tenant == "acme" && len(p.Events) != 0 {
					t.Errorf("%s found globex's subscription by target", key)
				}
			}},
			{"get acme event", get("/v1/events/" + f.acmeEvent.String()), []int{ok, ok, ok, bad, ok, bad}, nil},
			{"get globex event", get("/v1/events/" + f.globexEvent.String()), []int{ok, nf, nf, bad, ok, bad}, nil},
			{"get platform event", get("/v1/events/" + f.platformEvent.String()), []int{ok, nf, nf, bad, ok, bad}, nil},
			{"history acme object", get("/v1/objects/subscription/sub_acme/history"), []int{ok, ok, ok, bad, ok, bad}, nil},
			{"history globex object", get("/v1/objects/subscription/sub_globex/history"), []int{ok, ok, ok, bad, ok, bad}, func(t *testing.T, key string, r response) {
				var p trailserver.EventPage
				json.Unmarshal(r.body, &p)
				if f.key[key].Tenant == "acme" && len(p.Events) != 0 {
					t.Errorf("%s read globex's object history", key)
				}
			}},
			{"history in globex", get("/v1/objects/subscription/sub_globex/history?tenant=globex"), []int{ok, bad, bad, bad, ok, bad}, nil},
			{"stats acme", get("/v1/stats?tenant=acme"), []int{ok, ok, ok, bad, ok, bad}, nil},
			{"stats globex", get("/v1/stats?tenant=globex"), []int{ok, bad, bad, bad, ok, bad}, nil},
			{"stats all", get("/v1/stats"), []int{ok, ok, ok, bad, ok, bad}, func(t *testing.T, key string, r response) {
				if f.key[key].Tenant == "acme" && strings.Contains(string(r.body), "deploy.finish") {
					t.Errorf("%s counted platform events", key)
				}
			}},
			{"export acme", get("/v1/export?tenant=acme"), []int{ok, ok, ok, bad, ok, bad}, nil},
			{"export globex", get("/v1/export?tenant=globex&format=csv"), []int{ok, bad, bad, bad, ok, bad}, nil},
			{"export all", get("/v1/export"), []int{ok, ok, ok, bad, ok, bad}, func(t *testing.T, key string, r response) {
				if f.key[key].Tenant == "acme" && (strings.Contains(string(r.body), `"globex"`) || strings.Contains(string(r.body), "deploy.finish")) {
					t.Errorf("%s exported other tenants", key)
				}
			}},
			{"tail globex", func(key string) response { return tailStatus(t, f, "/v1/tail?tenant=globex", key) }, []int{ok, bad, bad, bad, ok, bad}, nil},
			{"tail own", func(key string) response { return tailStatus(t, f, "/v1/tail", key) }, []int{ok, ok, ok, bad, ok, bad}, nil},
			{"list keys", get("/v1/keys"), []int{ok, ok, bad, bad, bad, bad}, func(t *testing.T, key string, r response) {
				if f.key[key].Tenant == "acme" && strings.Contains(string(r.body), `"globex"`) {
					t.Errorf("%s listed another tenant's keys", key)
				}
			}},
			{"list globex keys", get("/v1/keys?tenant=globex"), []int{ok, bad, bad, bad, bad, bad}, nil},
			{"create all-tenant key", func(key string) response {
				return f.json("POST", "/v1/keys", key, map[string]any{"all_tenants": true, "role": "reader"})
			}, []int{cr, bad, bad, bad, bad, bad}, nil},
			{"create acme key", func(key string) response {
				return f.json("POST", "/v1/keys", key, map[string]any{"tenant": "acme", "role": "ingest"})
			}, []int{cr, cr, bad, bad, bad, bad}, nil},
			{"create globex key", func(key string) response {
				return f.json("POST", "/v1/keys", key, map[string]any{"tenant": "globex", "role": "admin"})
			}, []int{cr, bad, bad, bad, bad, bad}, nil},
			{"revoke globex reader", func(key string) response {
				return f.do("DELETE", "/v1/keys/"+f.key["readerB"].ID, key, nil)
			}, []int{204, nf, bad, bad, bad, bad}, nil},
			// Retention (retention.go): reads for read keys, a tenant key
			// its tenant's share; changes for admins, a tenant admin its
			// tenant's only.
			{"set acme retention policy", func(key string) response {
				return f.json("PUT", "/v1/retention/policies", key, map[string]any{"tenant": "acme", "action": "auth.*", "keep": "30d", "then": "delete"})
			}, []int{ok, ok, bad, bad, bad, bad}, nil},
			{"set all-tenant retention policy", func(key string) response {
				return f.json("PUT", "/v1/retention/policies", key, map[string]any{"keep": "400d"})
			}, []int{ok, bad, bad, bad, bad, bad}, nil},
			{"set globex retention policy", func(key string) response {
				return f.json("PUT", "/v1/retention/policies", key, map[string]any{"tenant": "globex", "action": "user.*", "keep": "2y"})
			}, []int{ok, bad, bad, bad, bad, bad}, nil},
			{"place globex hold", func(key string) response {
				return f.json("POST", "/v1/retention/holds", key, map[string]any{"tenant": "globex", "reason": "case 9"})
			}, []int{cr, bad, bad, bad, bad, bad}, nil},
			{"place acme subject hold", func(key string) response {
				return f.json("POST", "/v1/retention/holds", key, map[string]any{"tenant": "acme", "subject": "user:42"})
			}, []int{cr, cr, bad, bad, bad, bad}, nil},
			{"retention state", get("/v1/retention"), []int{ok, ok, ok, bad, ok, bad}, func(t *testing.T, key string, r response) {
				var st trailserver.RetentionState
				json.Unmarshal(r.body, &st)
				if f.key[key].Tenant == "acme" && (strings.Contains(string(r.body), "globex") || len(st.Holds) != 1 || len(st.Policies) != 2) {
					t.Errorf("%s saw %s", key, r.body)
				}
				if f.key[key].Tenant == "" && (len(st.Holds) != 2 || len(st.Policies) != 3) {
					t.Errorf("%s saw %s", key, r.body)
				}
			}},
			{"retention state of globex", get("/v1/retention?tenant=globex"), []int{ok, bad, bad, bad, ok, bad}, nil},
			{"retention plan", get("/v1/retention/plan"), []int{ok, ok, ok, bad, ok, bad}, nil},
			{"retention plan of globex", get("/v1/retention/plan?tenant=globex"), []int{ok, bad, bad, bad, ok, bad}, nil},
			{"release globex hold", func(key string) response {
				return f.do("DELETE", "/v1/retention/holds?tenant=globex", key, nil)
			}, []int{204, bad, bad, bad, bad, bad}, nil},
			// A tenant admin may place a hold on its tenant, never release one.
			{"release acme subject hold", func(key string) response {
				return f.do("DELETE", "/v1/retention/holds?tenant=acme&subject=user:42", key, nil)
			}, []int{204, bad, bad, bad, bad, bad}, nil},
			{"unset acme retention policy", func(key string) response {
				return f.do("DELETE", "/v1/retention/policies?tenant=acme&action=auth.*", key, nil)
			}, []int{nf, 204, bad, bad, bad, bad}, nil},
			{"unset all-tenant retention policy", func(key string) response {
				return f.do("DELETE", "/v1/retention/policies", key, nil)
			}, []int{204, bad, bad, bad, bad, bad}, nil},
		}
		// after, when not nil, inspects the state after every answer of rw,
		// refusals included.
		run := func(rw row, after func(t *testing.T, key string, r response)) {
			t.Run(rw.name, func(t *testing.T) {
				// The revoke row must run the admin last: order keys so.
				order := keys
				if rw.name == "revoke globex reader" || strings.HasPrefix(rw.name, "release ") || strings.HasPrefix(rw.name, "unset ") {
					order = []string{"adminA", "readerA", "ingestA", "readerAll", "ingestAll", "admin"}
				}
				for _, key := range order {
					i := indexOf(keys, key)
					r := rw.do(key)
					if r.status != rw.want[i] {
						t.Errorf("%s: %d, want %d (%s)", key, r.status, rw.want[i], clip(r.body))
						continue
					}
					if r.status >= 400 {
						r.problem(t)
					} else if rw.check != nil {
						rw.check(t, key, r)
					}
					if after != nil {
						after(t, key, r)
					}
				}
			})
		}
		for _, rw := range rows {
			run(rw, nil)
		}

		// Legal holds, replaced: a tenant admin may place one (above) or
		// strengthen one (the same reason, a min_keep at least as long; none
		// is the weakest), never weaken or change it, whoever placed it; an
		// all-tenant admin may do anything. Each row first places acme's
		// hold on user:42 anew, as was by placedBy, then posts hold with the
		// key under test; after every answer the hold reads back as hold
		// (201) or as was (a refusal), and the tenant admin's refusal is
		// recorded, the hold still refusing a policy keeping less.
		acmeHold := func(reason, minKeep string) map[string]any {
			return map[string]any{"tenant": "acme", "subject": "user:42", "reason": reason, "min_keep": minKeep}
		}
		readHold := func(t *testing.T) trailserver.RetentionHold {
			t.Helper()
			var st trailserver.RetentionState
			json.Unmarshal(f.do("GET", "/v1/retention?tenant=acme", "admin", nil).body, &st)
			for _, h := range st.Holds {
				if h.Subject == "user:42" {
					return h
				}
			}
			t.Fatalf("acme's hold on user:42 is gone: %+v", st.Holds)
			return trailserver.RetentionHold{}
		}
		strong, weak := acmeHold("case 42", "7y"), acmeHold("case 42", "")
		for _, h := range []struct {
			name      string
			placedBy  string
			was, hold map[string]any
			want      []int
		}{
			{"weaken a hold the all-tenant admin placed", "admin", strong, weak, []int{cr, bad, bad, bad, bad, bad}},
			{"shorten a hold the all-tenant admin placed", "admin", strong, acmeHold("case 42", "30d"), []int{cr, bad, bad, bad, bad, bad}},
			{"change the reason of a hold the all-tenant admin placed", "admin", strong, acmeHold("settled", "10y"), []int{cr, bad, bad, bad, bad, bad}},
			{"strengthen a hold the all-tenant admin placed", "admin", strong, acmeHold("case 42", "10y"), []int{cr, cr, bad, bad, bad, bad}},
			{"re-place a hold the all-tenant admin placed", "admin", strong, strong, []int{cr, cr, bad, bad, bad, bad}},
			{"weaken a hold the tenant admin placed", "adminA", strong, weak, []int{cr, bad, bad, bad, bad, bad}},
			{"strengthen a hold the tenant admin placed", "adminA", weak, strong, []int{cr, cr, bad, bad, bad, bad}},
		} {
			run(row{h.name, func(key string) response {
				f.do("DELETE", "/v1/retention/holds?tenant=acme&subject=user:42", "admin", nil)
				if r := f.json("POST", "/v1/retention/holds", h.placedBy, h.was); r.status != cr {
					t.Errorf("%s places %v: %d %s", h.placedBy, h.was, r.status, r.body)
				}
				return f.json("POST", "/v1/retention/holds", key, h.hold)
			}, h.want, nil}, func(t *testing.T, key string, r response) {
				want := h.was
				if r.status == cr {
					want = h.hold
				}
				if got := readHold(t); got.Reason != want["reason"] || got.MinKeep != want["min_keep"] {
					t.Errorf("after %s's %d the hold is reason %q, min_keep %q; want %v", key, r.status, got.Reason, got.MinKeep, want)
				}
				if key != "adminA" || r.status != bad {
					return
				}
				if p := r.problem(t); p.Field == "" || !strings.Contains(p.Detail, "all-tenant admin key") {
					t.Errorf("refusal %+v: want the field and why", p)
				}
				evs := f.retentionEvents("acme")
				if ev := evs[len(evs)-1]; ev.Action != "retention.hold.place" || ev.Outcome != trail.OutcomeDenied || ev.Actor.ID != "key-"+f.key["adminA"].ID {
					t.Errorf("refusal recorded as %s %s by %s", ev.Action, ev.Outcome, ev.Actor.ID)
				}
				if h.was["min_keep"] != "" {
					pr := f.json("PUT", "/v1/retention/policies", "adminA", map[string]any{"tenant": "acme", "keep": "1d", "then": "delete"})
					if p := pr.problem(t); pr.status != http.StatusConflict || p.Field != "keep" {
						t.Errorf("keep 1d then delete after a refused weakening: %d %+v", pr.status, p)
					}
				}
			})
		}
		// A tenant key's event without tenant landed in its tenant; nothing
		// reached globex from an acme key.
		for _, ev := range f.events(trail.Query{Tenant: "globex"}) {
			if ev.Actor.ID == "u1" && ev.Action == "user.update" && ev.Tenant != "globex" {
				t.Errorf("event %s in globex", ev.ID)
			}
		}
	})
}

func indexOf(s []string, v string) int {
	for i := range s {
		if s[i] == v {
			return i
		}
	}
	panic(v)
}

// tailStatus opens a tail stream and returns its status, closing it.
func tailStatus(t *testing.T, f *fixture, path, key string) response {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.ts.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+f.secret[key])
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := response{status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode != 200 {
		r.body = must(ioReadAll(resp))
	}
	u, _ := url.Parse(path)
	checkAgainstSpec(t, "GET", u.Path, r)
	return r
}

// TestAuditRead checks that every read records audit.read with the key as
// actor, in the tenant read.
func TestAuditRead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b, nil)
		reads := []struct {
			key, path, tenant, endpoint string
		}{
			{"readerA", "/v1/events?action=subscription.*", "acme", "GET /v1/events"},
			{"readerA", "/v1/events/" + f.acmeEvent.String(), "acme", "GET /v1/events/" + f.acmeEvent.String()},
			{"readerAll", "/v1/events/" + f.globexEvent.String(), "globex", "GET /v1/events/" + f.globexEvent.String()},
			{"readerA", "/v1/objects/subscription/sub_acme/history", "acme", "GET /v1/objects/subscription/sub_acme/history"},
			{"readerA", "/v1/stats", "acme", "GET /v1/stats"},
			{"readerA", "/v1/export?format=csv", "acme", "GET /v1/export"},
			{"readerAll", "/v1/events?tenant=globex&text=plan", "globex", "GET /v1/events"},
			{"readerAll", "/v1/events", "", "GET /v1/events"},
			{"admin", "/v1/stats?tenant=acme", "acme", "GET /v1/stats"},
		}
		for _, rd := range reads {
			before := len(f.events(trail.Query{Tenant: rd.tenant, AllTenants: rd.tenant == "", Action: "audit.read"}))
			if r := f.do("GET", rd.path, rd.key, nil); r.status != 200 {
				t.Fatalf("%s %s: %d", rd.key, rd.path, r.status)
			}
			audits := f.events(trail.Query{Tenant: rd.tenant, AllTenants: rd.tenant == "", Action: "audit.read"})
			if len(audits) != before+1 {
				t.Fatalf("%s %s: %d audit.read events, want %d", rd.key, rd.path, len(audits), before+1)
			}
			a := audits[0]
			if a.Actor.Type != trail.ActorService || a.Actor.ID != "key-"+f.key[rd.key].ID || a.Tenant != rd.tenant {
				t.Errorf("%s: audit.read %+v", rd.path, a)
			}
			if a.Metadata["endpoint"] != rd.endpoint {
				t.Errorf("%s: endpoint %v, want %q", rd.path, a.Metadata["endpoint"], rd.endpoint)
			}
			if strings.Contains(rd.path, "?") {
				filters, _ := a.Metadata["filters"].(map[string]any)
				q, _ := url.ParseQuery(rd.path[strings.Index(rd.path, "?")+1:])
				for k := range q {
					if filters[k] != q.Get(k) {
						t.Errorf("%s: filter %s recorded as %v", rd.path, k, filters[k])
					}
				}
			}
		}
		// A refused read is not a read: nothing recorded.
		before := f.count()
		f.do("GET", "/v1/events/"+f.globexEvent.String(), "readerA", nil)
		f.do("GET", "/v1/events?tenant=globex", "readerA", nil)
		if after := f.count(); after != before {
			t.Errorf("refused reads stored %d events", after-before)
		}
	})
}

// TestRateLimit checks the per-key token bucket and Retry-After.
func TestRateLimit(t *testing.T) {
	f := newFixture(t, backends[0], func(c *trailserver.Config) { c.RateLimit = 0.5; c.RateBurst = 3 })
	for i := range 3 {
		if r := f.do("GET", "/v1/stats", "readerA", nil); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	r := f.do("GET", "/v1/stats", "readerA", nil)
	if r.status != 429 || r.header.Get("Retry-After") != "2" {
		t.Fatalf("4th request: %d Retry-After %q, want 429 and 2", r.status, r.header.Get("Retry-After"))
	}
	r.problem(t)
	// Another key has its own bucket.
	if r := f.do("GET", "/v1/stats", "readerAll", nil); r.status != 200 {
		t.Fatalf("other key: %d", r.status)
	}
}

// TestBootstrap checks the first-start admin key and TRAIL_ADMIN_KEY.
func TestBootstrap(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	_, ks := openSQLite(t)
	k, secret, err := trailserver.Bootstrap(ctx, ks, "", now)
	if err != nil || secret == "" || k.Role != trailserver.RoleAdmin || !k.AllTenants() {
		t.Fatalf("first start: %+v %q %v", k, secret, err)
	}
	if _, again, err := trailserver.Bootstrap(ctx, ks, "", now); err != nil || again != "" {
		t.Fatalf("second start printed a key again: %q %v", again, err)
	}
	got, err := ks.Lookup(ctx, trailserver.HashKey(secret))
	if err != nil || got.ID != k.ID {
		t.Fatalf("lookup of the bootstrap key: %v", err)
	}
	const env = "trail_operator-chosen-admin-key-000000000000"
	k2, s2, err := trailserver.Bootstrap(ctx, ks, env, now)
	if err != nil || s2 != "" || k2.Role != trailserver.RoleAdmin {
		t.Fatalf("TRAIL_ADMIN_KEY: %+v %v", k2, err)
	}
	k3, _, err := trailserver.Bootstrap(ctx, ks, env, now)
	if err != nil || k3.ID != k2.ID {
		t.Fatalf("TRAIL_ADMIN_KEY twice made two keys: %v", err)
	}
	if _, _, err := trailserver.Bootstrap(ctx, ks, "short", now); err == nil {
		t.Fatal("a 5-character TRAIL_ADMIN_KEY was accepted")
	}
	// The stored form is only the hash.
	keys, _ := ks.List(ctx, "")
	raw, _ := json.Marshal(keys)
	if strings.Contains(string(raw), secret) || strings.Contains(string(raw), env) {
		t.Fatal("a secret appears in the key list")
	}
	n := 0
	row := must(ks.(*trailserver.SQLKeyStore), nil)
	_ = row
	for _, k := range keys {
		if k.Role == trailserver.RoleAdmin {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d admin keys, want 2", n)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"90d": 90 * 24 * time.Hour, "12h": 12 * time.Hour, "2w": 14 * 24 * time.Hour, "30m": 30 * time.Minute} {
		if d, err := trailserver.ParseDuration(in); err != nil || d != want {
			t.Errorf("%s: %v %v", in, d, err)
		}
	}
	for _, in := range []string{"", "d", "0d", "-1d", "1y", "99999999999d", "1.5h", "h1"} {
		if _, err := trailserver.ParseDuration(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

var _ = fmt.Sprint

package trailserver_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

// TestBadInput is the catalogue of hostile and broken requests: each must be
// answered with the expected 4xx problem+json (naming the field where there
// is one) and leave the store exactly as it was.
func TestBadInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b, withRetention)
		// What the retention conflicts below conflict with.
		if r := f.json("PUT", "/v1/retention/policies", "admin", map[string]any{"action": "auth.*", "keep": "90d", "then": "delete"}); r.status != 200 {
			t.Fatalf("policy: %d %s", r.status, r.body)
		}
		if r := f.json("POST", "/v1/retention/holds", "admin", map[string]any{"tenant": "globex", "min_keep": "1y"}); r.status != 201 {
			t.Fatalf("hold: %d %s", r.status, r.body)
		}
		ev := func(mod func(m map[string]any)) []byte {
			m := newEvent("acme")
			if mod != nil {
				mod(m)
			}
			return must(json.Marshal(m))
		}
		batch := func(n int, mod func(i int, m map[string]any)) []byte {
			evs := make([]any, n)
			for i := range evs {
				m := newEvent("acme")
				if mod != nil {
					mod(i, m)
				}
				evs[i] = m
			}
			return must(json.Marshal(evs))
		}
		deep := strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40)
		validCursorWrongVersion := "AgAAAAAAAAAAAAAAAAAAAAAAAAAAAA" // base64url of 25 bytes, version 2 … decodes, wrong version
		cases := []struct {
			name   string
			method string
			path   string
			key    string
			body   []byte
			hdr    []string
			status int
			field  string // "" means: any (or none)
		}{
			// Malformed bodies.
			{"malformed JSON", "POST", "/v1/events", "ingestA", []byte(`{"action":`), nil, 400, "body"},
			{"empty body", "POST", "/v1/events", "ingestA", []byte(``), nil, 400, "body"},
			{"whitespace body", "POST", "/v1/events", "ingestA", []byte("  \n "), nil, 400, "body"},
			{"JSON string", "POST", "/v1/events", "ingestA", []byte(`"user.delete"`), nil, 400, "body"},
			{"JSON number", "POST", "/v1/events", "ingestA", []byte(`42`), nil, 400, "body"},
			{"JSON null", "POST", "/v1/events", "ingestA", []byte(`null`), nil, 400, "body"},
			{"two JSON values", "POST", "/v1/events", "ingestA", append(ev(nil), ev(nil)...), nil, 400, "body"},
			{"invalid UTF-8", "POST", "/v1/events", "ingestA", []byte("{\"actor\":{\"type\":\"user\",\"id\":\"u\"},\"action\":\"user.update\",\"description\":\"\xff\xfe\"}"), nil, 400, "body"},
			// Wrong types and values, each naming its field.
			{"action a number", "POST", "/v1/events", "ingestA", ev(func(m map[string]any) { m["action"] = 5 }), nil, 400, "action"},
			{"actor a string", "POST", "/v1/events", "ingestA", ev(func(m map[string]any) { m["actor"] = "user:1" }), nil, 400, "actor"},
			{"actor.type unknown", "POST", "/v1/events", "ingestA", ev(func(m map[string]any) { m["actor"] = map[string]any{"type": "robot", "id": "r"} }), nil, 400, "actor.type"},
			{"id not a UUID", "POST", "/v1/events", "ingestA", ev(func(m map[string]any) { m["id"] = "42" }), nil, 400, "id"},
			{"id a number", "POST", "/v1/events", "ingestA", ev(func(m map[string]any) { m["id"] = 42 }), nil, 400, "id"},
			{"occurred_at not a time", "POST", "/v1/events", "ingestA", ev(func(m map[string]any) { m["occurred_at"] = "yesterday" }), nil, 400, "occurred_at"},
			{"occurred_at in the future", "POST", "/v1/events", "ingestA", ev(func(m map[string]any) { m["occurred_at"] = "2999-01-01T00:00:00Z" }), nil, 400, "occurred_at"},
			{"unknown field", "POST", "/v1/events", "ingestA", ev(func(m map[string]any) { m["tennant"] = "acme" }), nil, 400, "tennant"},
			{"invalid action", "POST", "/v1/events", "ingestA", ev(func(m map[string]any) { m["action"] = "User Delete" }), nil, 400, "action"},
			{"SQL in action", "POST", "/v1/events", "ingestA", ev(func(m map[string]any) { m["action"] = "x'); DROP TABLE trail_events;--" }), nil, 400, "action"},
			{"unknown outcome", "POST", "/v1/events", "ingestA", ev(func(m map[string]any) { m["outcome"] = "maybe" }), nil, 400, "outcome"},
			{"invalid tenant", "POST", "/v1/events", "admin", ev(func(m map[string]any) { m["tenant"] = "acme corp" }), nil, 400, "tenant"},
			{"NUL in description", "POST", "/v1/events", "ingestA", ev(func(m map[string]any) { m["description"] = "a\x00b" }), nil, 400, "description"},
			{"integer beyond 2^53 in metadata", "POST", "/v1/events", "ingestA", []byte(strings.Replace(string(ev(nil)), `"action"`, `"metadata":{"n":9007199254740993},"action"`, 1)), nil, 400, "metadata"},
			{"metadata nested 40 deep", "POST", "/v1/events", "ingestA", []byte(strings.Replace(string(ev(nil)), `"action"`, `"metadata":`+deep+`,"action"`, 1)), nil, 400, "metadata"},
			{"metadata an array", "POST", "/v1/events", "ingestA", ev(func(m map[string]any) { m["metadata"] = []int{1} }), nil, 400, "metadata"},
			{"duplicate change field", "POST", "/v1/events", "ingestA", ev(func(m map[string]any) {
				m["changes"] = []any{map[string]any{"field": "plan", "new": 1}, map[string]any{"field": "plan", "new": 2}}
			}), nil, 400, "changes[1].field"},
			// Sizes.
			{"body over 5 MiB", "POST", "/v1/events", "ingestA", []byte(`[` + strings.Repeat(" ", 6<<20) + `]`), nil, 413, "body"},
			{"event over 64 KiB", "POST", "/v1/events", "ingestA", ev(func(m map[string]any) { m["description"] = strings.Repeat("x", 70<<10) }), nil, 413, ""},
			{"description over limit", "POST", "/v1/events", "ingestA", ev(func(m map[string]any) { m["description"] = strings.Repeat("x", 5000) }), nil, 400, "description"},
			{"batch of 1001", "POST", "/v1/events", "ingestA", batch(1001, nil), nil, 400, "events"},
			{"empty batch", "POST", "/v1/events", "ingestA", []byte(`[]`), nil, 400, "events"},
			{"events not an array", "POST", "/v1/events", "ingestA", []byte(`{"events":"x"}`), nil, 400, "events"},
			{"envelope with extra member", "POST", "/v1/events", "ingestA", []byte(`{"events":[` + string(ev(nil)) + `],"dry_run":true}`), nil, 400, "dry_run"},
			{"batch with one bad event", "POST", "/v1/events", "ingestA", batch(5, func(i int, m map[string]any) {
				if i == 3 {
					m["action"] = "nope"
				}
			}), nil, 400, "events[3].action"},
			{"batch item not an object", "POST", "/v1/events", "ingestA", []byte(`[` + string(ev(nil)) + `, 7]`), nil, 400, "events[1]"},
			// Tenants.
			{"acme key writes globex", "POST", "/v1/events", "ingestA", ev(func(m map[string]any) { m["tenant"] = "globex" }), nil, 403, "tenant"},
			{"batch smuggling a globex event", "POST", "/v1/events", "ingestA", batch(3, func(i int, m map[string]any) {
				if i == 2 {
					m["tenant"] = "globex"
				}
			}), nil, 403, "events[2].tenant"},
			{"acme key reads globex", "GET", "/v1/events?tenant=globex", "readerA", nil, nil, 403, "tenant"},
			{"acme key gets globex event", "GET", "/v1/events/" + f.globexEvent.String(), "readerA", nil, nil, 404, ""},
			{"acme key gets platform event", "GET", "/v1/events/" + f.platformEvent.String(), "readerA", nil, nil, 404, ""},
			{"acme key exports globex", "GET", "/v1/export?tenant=globex", "readerA", nil, nil, 403, "tenant"},
			{"acme key tails globex", "GET", "/v1/tail?tenant=globex", "readerA", nil, nil, 403, "tenant"},
			{"acme key counts globex", "GET", "/v1/stats?tenant=globex", "readerA", nil, nil, 403, "tenant"},
			{"acme key revokes globex key", "DELETE", "/v1/keys/" + f.key["readerB"].ID, "adminA", nil, nil, 404, ""},
			// Media type.
			{"text/plain body", "POST", "/v1/events", "ingestA", ev(nil), []string{"Content-Type", "", "Content-Type", "text/plain"}, 415, "Content-Type"},
			// Authentication.
			{"no key", "POST", "/v1/events", "", ev(nil), nil, 401, "Authorization"},
			{"unknown key", "GET", "/v1/events", "", nil, []string{"Authorization", "Bearer trail_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, 401, "Authorization"},
			{"revoked key", "POST", "/v1/events", "revoked", ev(nil), nil, 401, "Authorization"},
			{"expired key", "GET", "/v1/events", "expired", nil, nil, 401, "Authorization"},
			{"Basic scheme", "GET", "/v1/events", "", nil, []string{"Authorization", "Basic dXNlcjpwYXNz"}, 401, "Authorization"},
			{"key with non-ASCII bytes", "GET", "/v1/events", "", nil, []string{"Authorization", "Bearer trail_" + strings.Repeat("\xc3\xa9", 20)}, 401, "Authorization"},
			{"two Authorization headers", "GET", "/v1/events", "readerA", nil, []string{"Authorization", "Bearer x"}, 401, "Authorization"},
			// Roles.
			{"reader ingests", "POST", "/v1/events", "readerA", ev(nil), nil, 403, ""},
			{"ingest key reads", "GET", "/v1/events", "ingestA", nil, nil, 403, ""},
			{"reader creates key", "POST", "/v1/keys", "readerAll", []byte(`{"all_tenants":true,"role":"admin"}`), nil, 403, ""},
			// Query parameters.
			{"limit 100000", "GET", "/v1/events?limit=100000", "readerA", nil, nil, 400, "limit"},
			{"limit -1", "GET", "/v1/events?limit=-1", "readerA", nil, nil, 400, "limit"},
			{"limit abc", "GET", "/v1/events?limit=abc", "readerA", nil, nil, 400, "limit"},
			{"limit 1e3", "GET", "/v1/events?limit=1e3", "readerA", nil, nil, 400, "limit"},
			{"garbage cursor", "GET", "/v1/events?cursor=not-a-cursor", "readerA", nil, nil, 400, "cursor"},
			{"cursor of another version", "GET", "/v1/events?cursor=" + validCursorWrongVersion, "readerA", nil, nil, 400, "cursor"},
			{"SQL in action filter", "GET", "/v1/events?action=%27%3B%20DROP%20TABLE%20trail_events%3B--", "readerA", nil, nil, 400, "action"},
			{"SQL in tenant filter", "GET", "/v1/events?tenant=acme%27%20OR%20%271%27%3D%271", "admin", nil, nil, 400, "tenant"},
			{"unknown actor type", "GET", "/v1/events?actor=robot:1", "readerA", nil, nil, 400, "actor"},
			{"target without id", "GET", "/v1/events?target=subscription", "readerA", nil, nil, 400, "target"},
			{"since not a time", "GET", "/v1/events?since=yesterday", "readerA", nil, nil, 400, "since"},
			{"until before since", "GET", "/v1/events?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "readerA", nil, nil, 400, "until"},
			{"misspelt parameter", "GET", "/v1/events?tennant=acme", "readerA", nil, nil, 400, "tennant"},
			{"repeated parameter", "GET", "/v1/events?action=user.delete&action=user.update", "readerA", nil, nil, 400, "action"},
			{"NUL in a filter", "GET", "/v1/events?text=a%00b", "readerA", nil, nil, 400, "text"},
			{"invalid UTF-8 in a filter", "GET", "/v1/events?field=%ff%fe", "readerA", nil, nil, 400, "field"},
			{"huge filter", "GET", "/v1/events?field=" + strings.Repeat("f", 600), "readerA", nil, nil, 400, "field"},
			{"bad outcome filter", "GET", "/v1/events?outcome=maybe", "readerA", nil, nil, 400, "outcome"},
			{"event id not a UUID", "GET", "/v1/events/not-a-uuid", "readerA", nil, nil, 400, "id"},
			{"unknown event id", "GET", "/v1/events/" + uuid.Must(uuid.NewV7()).String(), "readerA", nil, nil, 404, ""},
			{"parameter on get", "GET", "/v1/events/" + f.acmeEvent.String() + "?tenant=globex", "readerA", nil, nil, 400, "tenant"},
			{"export as xml", "GET", "/v1/export?format=xml", "readerA", nil, nil, 400, "format"},
			{"export with limit", "GET", "/v1/export?limit=5", "readerA", nil, nil, 400, "limit"},
			{"tail backlog 5000", "GET", "/v1/tail?backlog=5000", "readerA", nil, nil, 400, "backlog"},
			{"stats bad action", "GET", "/v1/stats?action=BAD", "readerA", nil, nil, 400, "action"},
			{"history with text filter", "GET", "/v1/objects/user/u1/history?text=x", "readerA", nil, nil, 400, "text"},
			// Keys.
			{"key with unknown role", "POST", "/v1/keys", "admin", []byte(`{"tenant":"acme","role":"superuser"}`), nil, 400, "role"},
			{"key with tenant and all", "POST", "/v1/keys", "admin", []byte(`{"tenant":"acme","all_tenants":true,"role":"reader"}`), nil, 400, "tenant"},
			{"key without scope", "POST", "/v1/keys", "admin", []byte(`{"role":"reader"}`), nil, 400, "tenant"},
			{"key with bad expiry", "POST", "/v1/keys", "admin", []byte(`{"tenant":"acme","role":"reader","expires_in":"forever"}`), nil, 400, "expires_in"},
			{"key with unknown field", "POST", "/v1/keys", "admin", []byte(`{"tenant":"acme","role":"reader","scopes":["*"]}`), nil, 400, "scopes"},
			{"revoke unknown key", "DELETE", "/v1/keys/nope", "admin", nil, nil, 404, ""},
			// Retention: nothing stored, nothing recorded.
			{"policy keep without unit", "PUT", "/v1/retention/policies", "admin", []byte(`{"keep":"90"}`), nil, 400, "keep"},
			{"policy keep missing", "PUT", "/v1/retention/policies", "admin", []byte(`{"action":"user.*"}`), nil, 400, "keep"},
			{"policy keep 500y", "PUT", "/v1/retention/policies", "admin", []byte(`{"keep":"500y"}`), nil, 400, "keep"},
			{"policy keep a number", "PUT", "/v1/retention/policies", "admin", []byte(`{"keep":90}`), nil, 400, "keep"},
			{"policy then unknown", "PUT", "/v1/retention/policies", "admin", []byte(`{"keep":"90d","then":"shred"}`), nil, 400, "then"},
			{"policy action not a pattern", "PUT", "/v1/retention/policies", "admin", []byte(`{"action":"auth*","keep":"90d"}`), nil, 400, "action"},
			{"policy bad tenant", "PUT", "/v1/retention/policies", "admin", []byte(`{"tenant":"acme corp","keep":"90d"}`), nil, 400, "tenant"},
			{"policy unknown field", "PUT", "/v1/retention/policies", "admin", []byte(`{"keep":"90d","after":"archive"}`), nil, 400, "after"},
			{"policy conflicting", "PUT", "/v1/retention/policies", "admin", []byte(`{"tenant":"acme","keep":"30d"}`), nil, 409, "tenant"},
			{"policy shorter than a hold", "PUT", "/v1/retention/policies", "admin", []byte(`{"tenant":"globex","action":"user.*","keep":"30d"}`), nil, 409, "keep"},
			{"acme admin sets a globex policy", "PUT", "/v1/retention/policies", "adminA", []byte(`{"tenant":"globex","action":"user.*","keep":"2y"}`), nil, 403, "tenant"},
			{"acme admin sets an all-tenant policy", "PUT", "/v1/retention/policies", "adminA", []byte(`{"keep":"2y"}`), nil, 403, "tenant"},
			{"reader sets a policy", "PUT", "/v1/retention/policies", "readerAll", []byte(`{"keep":"2y"}`), nil, 403, ""},
			{"unset unknown policy", "DELETE", "/v1/retention/policies?tenant=acme&action=user.*", "admin", nil, nil, 404, ""},
			{"unset with a misspelt parameter", "DELETE", "/v1/retention/policies?actions=auth.*", "admin", nil, nil, 400, "actions"},
			{"hold without tenant", "POST", "/v1/retention/holds", "admin", []byte(`{"reason":"case 1"}`), nil, 400, "tenant"},
			{"hold bad subject", "POST", "/v1/retention/holds", "admin", []byte(`{"tenant":"acme","subject":"user42"}`), nil, 400, "subject"},
			{"hold bad min_keep", "POST", "/v1/retention/holds", "admin", []byte(`{"tenant":"acme","min_keep":"forever"}`), nil, 400, "min_keep"},
			{"hold reason with a newline", "POST", "/v1/retention/holds", "admin", []byte(`{"tenant":"acme","reason":"a\nb"}`), nil, 400, "reason"},
			{"hold with since", "POST", "/v1/retention/holds", "admin", []byte(`{"tenant":"acme","since":"2020-01-01T00:00:00Z"}`), nil, 400, "since"},
			{"acme admin holds globex", "POST", "/v1/retention/holds", "adminA", []byte(`{"tenant":"globex"}`), nil, 403, "tenant"},
			{"release unknown hold", "DELETE", "/v1/retention/holds?tenant=acme", "admin", nil, nil, 404, ""},
			{"acme admin releases an acme hold", "DELETE", "/v1/retention/holds?tenant=acme", "adminA", nil, nil, 403, "tenant"},
			{"release without tenant", "DELETE", "/v1/retention/holds", "admin", nil, nil, 400, "tenant"},
			{"acme key reads globex retention", "GET", "/v1/retention?tenant=globex", "readerA", nil, nil, 403, "tenant"},
			{"retention of a malformed tenant", "GET", "/v1/retention?tenant=acme%20corp", "admin", nil, nil, 400, "tenant"},
			{"plan with a misspelt parameter", "GET", "/v1/retention/plan?events=1", "admin", nil, nil, 400, "events"},
			// Routing.
			{"DELETE an event", "DELETE", "/v1/events/" + f.acmeEvent.String(), "admin", nil, nil, 405, ""},
			{"PUT events", "PUT", "/v1/events", "admin", ev(nil), nil, 405, ""},
			{"unknown endpoint", "GET", "/v2/events", "admin", nil, nil, 404, ""},
		}
		if len(cases) < 30 {
			t.Fatalf("catalogue has %d cases", len(cases))
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				parent := f.t
				f.t = t
				defer func() { f.t = parent }()
				before := f.count()
				keysBefore, _ := f.keys.Count(t.Context())
				r := f.do(c.method, c.path, c.key, c.body, c.hdr...)
				if r.status != c.status {
					t.Fatalf("status %d, want %d: %s", r.status, c.status, clip(r.body))
				}
				p := r.problem(t)
				if c.field != "" && p.Field != c.field {
					t.Errorf("field %q, want %q (detail %q)", p.Field, c.field, p.Detail)
				}
				if p.Detail == "" {
					t.Error("no detail")
				}
				if c.status == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				if c.status == http.StatusMethodNotAllowed && r.header.Get("Allow") == "" {
					t.Error("405 without Allow")
				}
				if after := f.count(); after != before {
					t.Errorf("the store changed: %d events before, %d after", before, after)
				}
				if keysAfter, _ := f.keys.Count(t.Context()); keysAfter != keysBefore {
					t.Errorf("the key store changed: %d keys before, %d after", keysBefore, keysAfter)
				}
			})
		}
		// Hostile but legal filters are answered 200 with nothing leaked.
		for _, q := range []string{"text=%22%20OR%201%3D1%20NEAR(", "text=*", "field=%27%20OR%20%271%27%3D%271", "actor=user:%27%20OR%201%3D1--", "target=x:%25"} {
			r := f.do("GET", "/v1/events?"+q, "readerA", nil)
			if r.status != 200 {
				t.Errorf("%s: %d %s", q, r.status, clip(r.body))
				continue
			}
			var p struct{ Events []trail.Event }
			json.Unmarshal(r.body, &p)
			for _, ev := range p.Events {
				if ev.Tenant != "acme" {
					t.Errorf("%s leaked tenant %q", q, ev.Tenant)
				}
			}
		}
	})
}

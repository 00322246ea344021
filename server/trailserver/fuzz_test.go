package trailserver

import (
	"net/url"
	"testing"
	"time"

	"github.com/trailhq/trail"
)

// FuzzDecodeBody: the ingest body parser never panics, answers every
// refusal with a 4xx problem, and never accepts more than MaxBatch events.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{
		`{"actor":{"type":"user","id":"1"},"action":"user.delete"}`,
		`[{"actor":{"type":"user","id":"1"},"action":"user.delete"}]`,
		`{"events":[{"actor":{"type":"system"},"action":"a.b","metadata":{"n":1.5e3}}]}`,
		`{"events":[1,2]}`, `{"events":{}}`, `[[]]`, `{"events":[],"x":1}`, `{"id":"nope"}`,
		`{"occurred_at":"2026-13-01T00:00:00Z"}`, "\xff", `[{"changes":[{"field":"a","old":{}}]}]`, `  `,
		`{"tenant":"acme","tenant":"globex","actor":{"type":"user","id":"1"},"action":"user.delete"}`,
		`[{"actor":{"type":"user","id":"1","ID":"2"},"action":"user.delete"}]`,
		`{"events":[{"id":"00000000-0000-0000-0000-000000000000","actor":{"type":"system"},"action":"a.b"}]}`,
		`{"occurred_at":"0001-01-01T00:00:00Z","actor":{"type":"system"},"action":"a.b","metadata":{"a":{"b":1,"b":2}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, batch, p := decodeBody(body)
		if p != nil {
			if p.Status < 400 || p.Status > 499 || p.Detail == "" {
				t.Fatalf("problem %+v", p)
			}
			if evs != nil {
				t.Fatal("events with a problem")
			}
			return
		}
		if len(evs) == 0 || len(evs) > MaxBatch || (!batch && len(evs) != 1) {
			t.Fatalf("%d events, batch %v", len(evs), batch)
		}
		// What encoding/json lets through (a repeated member, an explicit
		// nil UUID or zero time) never is.
		if !batch {
			if err := trail.CheckEventJSON(body); err != nil {
				t.Fatalf("accepted %q: %v", body, err)
			}
		}
	})
}

// FuzzParseQuery: query parameters never panic the parser, and what it
// accepts is a valid trail.Query.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"tenant=acme&action=subscription.*&since=30d", "actor=user:42&target=user:7&limit=10",
		"cursor=AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "until=2026-01-01T00:00:00Z&since=2027-01-01T00:00:00Z",
		"text=%22%20OR%201", "limit=1e3", "since=99999999999d", "tenant=%00",
	} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		if p := checkParams(v, listParams); p != nil {
			if p.Status != 400 {
				t.Fatalf("problem %+v", p)
			}
			return
		}
		q, p := parseQuery(v, now)
		if p != nil {
			if p.Status != 400 || p.Field == "" && p.Detail == "" {
				t.Fatalf("problem %+v", p)
			}
			return
		}
		// What the store gets: the query scoped to an all-tenant key.
		if p := scopeQuery(&Key{}, &q); p != nil {
			t.Fatalf("all-tenant key: problem %+v", p)
		}
		if err := q.Validate(); err != nil {
			t.Fatalf("accepted an invalid query %+v: %v", q, err)
		}
	})
}

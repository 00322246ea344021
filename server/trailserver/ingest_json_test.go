package trailserver_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailserver"
)

// TestIngestRefusesWhatJSONHides: POST /v1/events refuses what encoding/json
// would let through silently — a member given twice (the last one winning),
// also as names that differ only in letter case, an explicit nil UUID id or zero
// occurred_at (both read as "fill in") — and personal fields that are wrong
// as plaintext (before the privacy layer encrypts them). Each is a 400
// naming the field, and nothing is stored.
func TestIngestRefusesWhatJSONHides(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b, nil)
		const actor = `"actor":{"type":"user","id":"u1"},"action":"user.update"`
		cases := []struct {
			name, body, field, detail string
		}{
			{"tenant twice", `{"tenant":"acme","tenant":"globex",` + actor + `}`, "tenant", `duplicate key "tenant"`},
			{"actor id twice", `{"tenant":"acme","actor":{"type":"user","id":"u1","id":"u2"},"action":"user.update"}`, "actor.id", "duplicate"},
			{"metadata key twice", `{"tenant":"acme",` + actor + `,"metadata":{"a":{"role":"user","role":"admin"}}}`, "metadata.a.role", "duplicate"},
			{"change value key twice", `{"tenant":"acme",` + actor + `,"changes":[{"field":"plan","new":{"x":1,"x":2}}]}`, "changes[0].new.x", "duplicate"},
			{"tenant in capitals too", `{"tenant":"acme","TENANT":"globex",` + actor + `}`, "tenant", "given twice, in names that differ only in letter case"},
			{"batch, second event's actor id twice", `[{"tenant":"acme",` + actor + `},{"tenant":"acme","actor":{"type":"user","id":"u1","id":"u2"},"action":"user.update"}]`, "events[1].actor.id", "duplicate"},
			{"envelope, tenant twice", `{"events":[{"tenant":"acme","tenant":"globex",` + actor + `}]}`, "events[0].tenant", "duplicate"},
			{"nil UUID id", `{"id":"00000000-0000-0000-0000-000000000000","tenant":"acme",` + actor + `}`, "id", "nil UUID"},
			{"batch, nil UUID id", "[\n{\"tenant\":\"acme\"," + actor + "} ,\n {\"id\":\"00000000-0000-0000-0000-000000000000\",\"tenant\":\"acme\"," + actor + "}]", "events[1].id", "nil UUID"},
			{"zero occurred_at", `{"occurred_at":"0001-01-01T00:00:00Z","tenant":"acme",` + actor + `}`, "occurred_at", "zero time"},
			{"occurred_at before 1970", `{"occurred_at":"1969-12-31T23:59:59Z","tenant":"acme",` + actor + `}`, "occurred_at", "1970"},
			{"actor.ip not an address", `{"tenant":"acme","actor":{"type":"user","id":"u1","ip":"999.1.1.1"},"action":"user.update"}`, "actor.ip", "IPv4 or IPv6"},
			{"actor.ip with a port and a bad address", `{"tenant":"acme","actor":{"type":"user","id":"u1","ip":"999.0.113.7:443"},"action":"user.update"}`, "actor.ip", "IPv4 or IPv6"},
			{"batch, actor.ip", `[{"tenant":"acme","actor":{"type":"user","id":"u1","ip":"1.2.3"},"action":"user.update"}]`, "events[0].actor.ip", "IPv4 or IPv6"},
			{"actor.email with a newline", `{"tenant":"acme","actor":{"type":"user","id":"u1","email":"ann@acme.test\nBcc: x@y"},"action":"user.update"}`, "actor.email", "control"},
			{"actor.name with a CR", `{"tenant":"acme","actor":{"type":"user","id":"u1","name":"Ann\r"},"action":"user.update"}`, "actor.name", "control"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				parent := f.t
				f.t = t
				defer func() { f.t = parent }()
				before := f.count()
				// The admin key may write any tenant: a duplicate tenant is
				// refused as such, not as another tenant.
				for range 3 {
					r := f.do("POST", "/v1/events", "admin", []byte(c.body))
					if r.status != http.StatusBadRequest {
						t.Fatalf("status %d, want 400: %s", r.status, clip(r.body))
					}
					p := r.problem(t)
					if p.Type != trailserver.ProblemInvalid || p.Field != c.field || !strings.Contains(p.Detail, c.detail) {
						t.Fatalf("problem %+v; want field %q, detail with %q", p, c.field, c.detail)
					}
				}
				if after := f.count(); after != before {
					t.Errorf("the store changed: %d events before, %d after", before, after)
				}
			})
		}

		// What is left out is filled in: a fresh UUIDv7 and now, on every send.
		// So it is for null, and for a Go Event marshaled with zero ID and time.
		goZero := must(json.Marshal(trail.Event{Tenant: "acme", Action: "user.update", Actor: trail.Actor{Type: trail.ActorUser, ID: "u1", IP: "2001:db8::1"}}))
		seen := map[uuid.UUID]bool{}
		for _, body := range []string{`{"tenant":"acme",` + actor + `}`, `{"id":null,"occurred_at":null,"tenant":"acme",` + actor + `}`, string(goZero), string(goZero)} {
			r := f.do("POST", "/v1/events", "admin", []byte(body))
			if r.status != http.StatusCreated {
				t.Fatalf("%s: status %d: %s", body, r.status, clip(r.body))
			}
			var resp trailserver.IngestResponse
			if err := json.Unmarshal(r.body, &resp); err != nil || len(resp.Results) != 1 {
				t.Fatalf("%s: %v %s", body, err, r.body)
			}
			id := resp.Results[0].ID
			if id.Version() != 7 || seen[id] {
				t.Errorf("%s: id %s, want a fresh UUIDv7", body, id)
			}
			seen[id] = true
		}
	})
}

package trailserver_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/trailprivacy"
)

// TestOwnEventsPrivacy: the events the server writes itself (audit.read on
// every read, api_key.* on key management, privacy.* on hash and forget)
// carry the calling key's IP address. They bypass ingest, so they go
// through Config.OwnTransform (default: Transform): after reads, key
// management and a hash lookup from a known address, that address is not
// in the database's bytes, and reads reveal it again.
func TestOwnEventsPrivacy(t *testing.T) {
	const callerIP = "203.0.113.219"
	const callerUA = "own-events-agent/9.7"
	forEachBackend(t, func(t *testing.T, b backend) {
		var p *trailprivacy.Privacy
		var storage func() []byte
		f := newFixture(t, b, func(c *trailserver.Config) {
			p, storage = privacyFor(t, c.Store)
			c.Transform, c.Reveal = p, p
			c.Privacy = &trailserver.PrivacyConfig{Admin: p, HashRate: 100, HashBurst: 100}
		})
		// from sends a request as if from callerIP (the loopback test
		// server cannot choose its client's address).
		from := func(method, path, key, body string) *httptest.ResponseRecorder {
			t.Helper()
			var req *http.Request
			if body == "" {
				req = httptest.NewRequest(method, path, nil)
			} else {
				req = httptest.NewRequest(method, path, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
			}
			req.RemoteAddr = callerIP + ":40123"
			req.Header.Set("User-Agent", callerUA)
			req.Header.Set("Authorization", "Bearer "+f.secret[key])
			w := httptest.NewRecorder()
			f.srv.ServeHTTP(w, req)
			if w.Code/100 != 2 {
				t.Fatalf("%s %s: %d %s", method, path, w.Code, clip(w.Body.Bytes()))
			}
			return w
		}
		from("GET", "/v1/events?tenant=acme", "readerA", "")
		from("GET", "/v1/events/"+f.acmeEvent.String(), "readerA", "")
		from("GET", "/v1/objects/subscription/sub_acme/history?tenant=acme", "readerA", "")
		from("GET", "/v1/export?tenant=acme&format=jsonl", "readerA", "")
		from("POST", "/v1/keys", "adminA", `{"tenant":"acme","role":"reader","name":"tmp"}`)
		from("POST", "/v1/hash", "adminA", `{"tenant":"acme","value":"bob@example.org"}`)

		assertNoPlaintext(t, "after the server's own events", storage(), callerIP, callerUA)

		// The events are there, and reads reveal the caller's IP.
		r := f.do("GET", "/v1/events?tenant=acme&action=audit.read&limit=100", "readerA", nil)
		if r.status != 200 || bytes.Count(r.body, []byte(callerIP)) < 4 {
			t.Fatalf("audit.read events do not reveal the caller's IP: %d %s", r.status, clip(r.body))
		}
		r = f.do("GET", "/v1/events?tenant=acme&action=privacy.hash", "readerA", nil)
		if r.status != 200 || !bytes.Contains(r.body, []byte(callerIP)) {
			t.Fatalf("privacy.hash event does not reveal the caller's IP: %d %s", r.status, clip(r.body))
		}
		r = f.do("GET", "/v1/events?tenant=acme&action=api_key.create", "readerA", nil)
		if r.status != 200 || !bytes.Contains(r.body, []byte(`"api_key.create"`)) {
			t.Fatalf("api_key.create event missing: %d %s", r.status, clip(r.body))
		}
		// The IP was encrypted, not dropped: every stored own event of the
		// caller has its IP in the enc:v1 form.
		page, err := f.store.Query(t.Context(), trail.Query{Tenant: "acme", Action: "audit.read", Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) < 4 {
			t.Fatalf("%d audit.read events stored, want at least 4", len(page.Events))
		}
		for _, ev := range page.Events {
			if !strings.HasPrefix(ev.Actor.IP, "enc:v1:") {
				t.Errorf("stored audit.read %s has actor IP %q, want an enc:v1 value", ev.ID, ev.Actor.IP)
			}
		}
	})
}

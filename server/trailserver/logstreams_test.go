package trailserver_test

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/trailhq/trail/server/logstream"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailprivacy"
)

// newLogStreamFixture starts an HTTPS webhook receiver that counts its posts
// and a fixture whose API has a log-stream manager on the SQLite store,
// trusting that receiver's certificate.
func newLogStreamFixture(t *testing.T) (*fixture, *httptest.Server, *atomic.Int64) {
	posts := new(atomic.Int64)
	rcv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		posts.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(rcv.Certificate())
	f := newFixture(t, backends[0], func(c *trailserver.Config) {
		st := c.Store.(*trailsqlite.Store)
		var key [32]byte
		rand.Read(key[:])
		kms, _ := trailprivacy.NewLocalKMS(key[:])
		ls, err := logstream.NewSQLiteStore(t.Context(), st.DB(), st)
		if err != nil {
			t.Fatal(err)
		}
		m := &logstream.Manager{Store: ls, KMS: kms, Log: st, Dialer: &logstream.Dialer{RootCAs: pool}}
		c.LogStreams = logstream.API(m, nil)
	})
	return f, rcv, posts
}

// TestLogStreamsAPI: /v1/log-streams through the HTTP API with the
// logstream manager: a tenant admin creates a stream for its own tenant
// only, never sees another tenant's, never reads a secret back; bad input,
// an unreachable destination and the wrong role are problems; every
// operation answers as documented.
func TestLogStreamsAPI(t *testing.T) {
	f, rcv, posts := newLogStreamFixture(t)
	hook := map[string]any{"type": "webhook", "url": rcv.URL + "/hook"}

	r := f.json("POST", "/v1/log-streams", "adminA", map[string]any{"name": "siem", "destination": hook})
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var created struct {
		ID, Tenant, Secret string
		HasSecret          bool `json:"has_secret"`
	}
	json.Unmarshal(r.body, &created)
	if created.Tenant != "acme" || !strings.HasPrefix(created.Secret, "whsec_") || !created.HasSecret || posts.Load() != 1 {
		t.Fatalf("created %+v (test deliveries %d)", created, posts.Load())
	}
	if p := f.json("POST", "/v1/log-streams", "adminA", map[string]any{"tenant": "globex", "destination": hook}).problem(t); p.Status != 403 || p.Field != "tenant" {
		t.Fatalf("other tenant: %+v", p)
	}
	if p := f.json("POST", "/v1/log-streams", "adminA", map[string]any{"all_tenants": true, "destination": hook}).problem(t); p.Status != 403 {
		t.Fatalf("all tenants by a tenant admin: %+v", p)
	}
	if p := f.json("POST", "/v1/log-streams", "adminA", map[string]any{"destination": map[string]any{"type": "webhook", "url": "ftp://x"}}).problem(t); p.Status != 400 || p.Field != "destination.url" {
		t.Fatalf("bad url: %+v", p)
	}
	if p := f.do("POST", "/v1/log-streams", "adminA", []byte(`{"destination":{"type":"webhook"},"bogus":1}`)).problem(t); p.Status != 400 {
		t.Fatalf("unknown member: %+v", p)
	}
	if p := f.json("POST", "/v1/log-streams", "adminA", map[string]any{"destination": map[string]any{"type": "webhook", "url": "https://127.0.0.1:1/x"}}).problem(t); p.Status != 422 || !strings.Contains(p.Detail, "refused") {
		t.Fatalf("unreachable: %+v", p)
	}
	if p := f.json("POST", "/v1/log-streams", "readerA", map[string]any{"destination": hook}).problem(t); p.Status != 403 {
		t.Fatalf("reader: %+v", p)
	}
	r = f.json("POST", "/v1/log-streams", "admin", map[string]any{"tenant": "globex", "destination": hook, "format": "ocsf"})
	if r.status != http.StatusCreated {
		t.Fatalf("admin for globex: %d %s", r.status, r.body)
	}
	var globex struct{ ID string }
	json.Unmarshal(r.body, &globex)

	list := f.do("GET", "/v1/log-streams", "adminA", nil)
	if list.status != 200 || strings.Count(string(list.body), `"id":"ls_`) != 1 || strings.Contains(string(list.body), created.Secret) {
		t.Fatalf("tenant list: %d %s", list.status, list.body)
	}
	if all := f.do("GET", "/v1/log-streams", "admin", nil); strings.Count(string(all.body), `"id":"ls_`) != 2 {
		t.Fatalf("all list: %s", all.body)
	}
	if p := f.do("GET", "/v1/log-streams/"+globex.ID, "adminA", nil).problem(t); p.Status != 404 {
		t.Fatalf("other tenant's stream: %+v", p)
	}
	if g := f.do("GET", "/v1/log-streams/"+created.ID, "adminA", nil); g.status != 200 || strings.Contains(string(g.body), created.Secret) {
		t.Fatalf("get: %d %s", g.status, g.body)
	}
	if r := f.do("POST", "/v1/log-streams/"+created.ID+"/pause", "adminA", nil); r.status != 200 || !strings.Contains(string(r.body), `"state":"paused"`) {
		t.Fatalf("pause: %d %s", r.status, r.body)
	}
	if r := f.do("POST", "/v1/log-streams/"+created.ID+"/resume", "adminA", nil); r.status != 200 {
		t.Fatalf("resume: %d %s", r.status, r.body)
	}
	if r := f.do("POST", "/v1/log-streams/"+created.ID+"/rotate-secret", "adminA", nil); r.status != 200 || !strings.Contains(string(r.body), "whsec_") {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	if r := f.do("GET", "/v1/log-streams/"+created.ID+"/dead-letters", "adminA", nil); r.status != 200 || string(r.body) != `{"dead_letters":[]}`+"\n" {
		t.Fatalf("dead letters: %d %q", r.status, r.body)
	}
	if m := f.do("GET", "/metrics", "", nil); !strings.Contains(string(m.body), `trail_log_stream_healthy{stream="`+created.ID+`"`) {
		t.Fatalf("metrics lack the stream's health")
	}
	// The UI's page: the tenant admin sees its stream and its health, not globex's;
	// a reader is refused.
	ui := newUIBrowser(t)
	ui.signIn(f.ts.URL, f.secret["adminA"])
	code, page := ui.get(f.ts.URL, "/ui/log-streams")
	if code != 200 || !strings.Contains(page, `id="stream-`+created.ID+`" data-state="healthy"`) && !strings.Contains(page, `id="stream-`+created.ID+`" data-state="pending"`) ||
		strings.Contains(page, globex.ID) || strings.Contains(page, created.Secret) {
		t.Fatalf("UI page: %d\n%s", code, page)
	}
	reader := newUIBrowser(t)
	reader.signIn(f.ts.URL, f.secret["readerA"])
	if code, _ := reader.get(f.ts.URL, "/ui/log-streams"); code != http.StatusForbidden {
		t.Fatalf("UI page for a reader: %d", code)
	}
	if p := f.do("DELETE", "/v1/log-streams/"+globex.ID, "adminA", nil).problem(t); p.Status != 404 {
		t.Fatalf("delete other tenant's: %+v", p)
	}
	if r := f.do("DELETE", "/v1/log-streams/"+created.ID, "adminA", nil); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
}

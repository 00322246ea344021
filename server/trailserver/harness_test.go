package trailserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/server/trailsqlite"
)

// backend opens a fresh event store and a key store on it.
type backend struct {
	name string
	open func(t testing.TB) (trail.Store, trailserver.KeyStore)
}

func openSQLite(t testing.TB) (trail.Store, trailserver.KeyStore) {
	t.Helper()
	ctx := context.Background()
	st, err := trailsqlite.Open(ctx, filepath.Join(t.TempDir(), "trail.db"), &trailsqlite.Config{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ks, err := trailserver.NewSQLKeyStore(ctx, st.DB(), trailserver.DialectSQLite)
	if err != nil {
		t.Fatal(err)
	}
	return st, ks
}

// backends lists every store the HTTP tests run on. PostgreSQL joins when
// its store exists (see postgres_test.go).
var backends = []backend{{"sqlite", openSQLite}}

func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

// fixture is a running server on loopback with a key of every kind and a
// few seeded events in tenants acme and globex and on the platform.
type fixture struct {
	t      testing.TB
	store  trail.Store
	keys   trailserver.KeyStore
	srv    *trailserver.Server
	ts     *httptest.Server
	secret map[string]string // by name: admin, adminA, readerA, ingestA, readerAll, ingestAll, readerB, revoked, expired
	key    map[string]trailserver.Key

	acmeEvent, globexEvent, platformEvent uuid.UUID
}

var keySpecs = []struct {
	name   string
	tenant string
	role   trailserver.Role
}{
	{"admin", "", trailserver.RoleAdmin},
	{"adminA", "acme", trailserver.RoleAdmin},
	{"readerA", "acme", trailserver.RoleReader},
	{"ingestA", "acme", trailserver.RoleIngest},
	{"readerAll", "", trailserver.RoleReader},
	{"ingestAll", "", trailserver.RoleIngest},
	{"readerB", "globex", trailserver.RoleReader},
	{"revoked", "acme", trailserver.RoleReader},
	{"expired", "acme", trailserver.RoleReader},
}

func newFixture(t testing.TB, b backend, mod func(*trailserver.Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	st, ks := b.open(t)
	f := &fixture{t: t, store: st, keys: ks, secret: map[string]string{}, key: map[string]trailserver.Key{}}
	now := time.Now()
	for _, ks := range keySpecs {
		req := trailserver.NewKeyRequest{Tenant: ks.tenant, All: ks.tenant == "", Role: ks.role, Name: ks.name}
		k, secret, err := trailserver.CreateKey(ctx, f.keys, req, now)
		if err != nil {
			t.Fatal(err)
		}
		f.secret[ks.name], f.key[ks.name] = secret, k
	}
	if err := f.keys.Revoke(ctx, f.key["revoked"].ID, now); err != nil {
		t.Fatal(err)
	}
	// An expired key: stored directly with an expiry in the past.
	exp := now.Add(-time.Hour)
	expSecret, _ := trailserver.GenerateKey()
	ek := trailserver.Key{ID: "expired0001", Tenant: "acme", Role: trailserver.RoleReader, CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: &exp}
	if err := f.keys.Insert(ctx, ek, trailserver.HashKey(expSecret)); err != nil {
		t.Fatal(err)
	}
	f.secret["expired"], f.key["expired"] = expSecret, ek

	f.acmeEvent, f.globexEvent, f.platformEvent = uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	at := now.Add(-time.Hour).UTC()
	seed := []trail.Event{
		{ID: f.acmeEvent, OccurredAt: at, Tenant: "acme", Actor: trail.Actor{Type: trail.ActorUser, ID: "u1", Email: "ann@acme.test"},
			Action: "subscription.update", Target: trail.Target{Type: "subscription", ID: "sub_acme"},
			Description: "Changed subscription plan to pro", Changes: []trail.Change{trail.Changed("plan", "free", "pro")}},
		{OccurredAt: at.Add(time.Second), Tenant: "acme", Actor: trail.Actor{Type: trail.ActorUser, ID: "u2"}, Action: "user.delete",
			Target: trail.Target{Type: "user", ID: "u9"}, Description: "Deleted user bob"},
		{ID: f.globexEvent, OccurredAt: at, Tenant: "globex", Actor: trail.Actor{Type: trail.ActorUser, ID: "g1"},
			Action: "subscription.update", Target: trail.Target{Type: "subscription", ID: "sub_globex"}, Description: "Changed subscription plan to team"},
		{ID: f.platformEvent, OccurredAt: at, Actor: trail.Actor{Type: trail.ActorSystem}, Action: "deploy.finish", Description: "Deployed"},
	}
	for i := range seed {
		seed[i].RecordedAt = now
		if err := seed[i].Normalize(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Append(ctx, seed); err != nil {
		t.Fatal(err)
	}
	cfg := trailserver.Config{Store: st, Keys: f.keys, RateLimit: -1}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := trailserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	f.ts = httptest.NewServer(srv)
	t.Cleanup(func() { srv.Close(); f.ts.Close() })
	return f
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) problem(t testing.TB) trailserver.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d with Content-Type %q, want application/problem+json; body %s", r.status, ct, clip(r.body))
	}
	var p trailserver.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body: %v: %s", err, clip(r.body))
	}
	if p.Status != r.status || p.Type == "" || p.Title == "" {
		t.Fatalf("problem %+v does not match status %d", p, r.status)
	}
	return p
}

func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// do sends a request with the named key ("" for none) and checks the answer
// against the OpenAPI document.
func (f *fixture) do(method, path, keyName string, body []byte, hdr ...string) response {
	f.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, f.ts.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if keyName != "" {
		req.Header.Set("Authorization", "Bearer "+f.secret[keyName])
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Add(hdr[i], hdr[i+1])
		}
	}
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, body: b}
	checkAgainstSpec(f.t, method, req.URL.Path, r)
	return r
}

func (f *fixture) json(method, path, keyName string, v any) response {
	f.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.do(method, path, keyName, b)
}

// count is the number of stored events.
func (f *fixture) count() int64 {
	f.t.Helper()
	counts, err := f.store.Counts(context.Background(), trail.CountQuery{AllTenants: true})
	if err != nil {
		f.t.Fatal(err)
	}
	var n int64
	for _, c := range counts {
		n += c.N
	}
	return n
}

// events returns every stored event matching q (all pages).
func (f *fixture) events(q trail.Query) []trail.Event {
	f.t.Helper()
	var out []trail.Event
	q.Limit = trail.MaxLimit
	for {
		p, err := f.store.Query(context.Background(), q)
		if err != nil {
			f.t.Fatal(err)
		}
		out = append(out, p.Events...)
		if p.Next == "" {
			return out
		}
		q.Cursor = p.Next
	}
}

func newEvent(tenant string) map[string]any {
	ev := map[string]any{
		"id":          uuid.Must(uuid.NewV7()).String(),
		"actor":       map[string]any{"type": "user", "id": "u1"},
		"action":      "user.update",
		"target":      map[string]any{"type": "user", "id": "u1"},
		"description": "Updated a user",
	}
	if tenant != "" {
		ev["tenant"] = tenant
	}
	return ev
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func ioReadAll(resp *http.Response) ([]byte, error) { return io.ReadAll(resp.Body) }

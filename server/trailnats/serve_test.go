package trailnats_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailnats"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/server/trailsqlite"
)

// TestServeThroughStream: two replicas of the API ingest through one
// stream into one store. An event posted to replica A is acknowledged (201)
// once JetStream has it, and reaches a live tail open on replica B through
// the stream, before any sink has stored it; a sink then stores it. With
// JetStream gone, ingest answers 503 with Retry-After.
func TestServeThroughStream(t *testing.T) {
	ctx := context.Background()
	st, ks, secret := edgeStore(t)
	node := startNode(t)
	cfg := trailnats.Config{Partitions: 2}
	replica := func() *httptest.Server {
		_, js := connect(t, node.ClientURL())
		setup(t, js, cfg)
		srv, err := trailserver.New(trailserver.Config{Store: &trailnats.Store{Publisher: trailnats.NewPublisher(js, cfg), Read: st},
			Keys: ks, RateLimit: -1, TailPoll: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv)
		t.Cleanup(ts.Close)
		return ts
	}
	a, b := replica(), replica()
	do := func(base, method, path, body string) *http.Response {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	tail := do(b.URL, "GET", "/v1/tail?tenant=acme", "")
	defer tail.Body.Close()
	lines := bufio.NewReader(tail.Body)
	for { // subscribed once the stream says so
		l, err := lines.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(l, ": streaming") {
			break
		}
	}
	const id = "0193e8c4-7a0f-7c3e-8a51-3f1b2c9d4e5f"
	resp := do(a.URL, "POST", "/v1/events", `{"id":"`+id+`","tenant":"acme","action":"doc.update","actor":{"type":"user","id":"u1"}}`)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !bytes.Contains(body, []byte(`"created"`)) {
		t.Fatalf("ingest: %d %s", resp.StatusCode, body)
	}
	for {
		l, err := lines.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(l, "data: ") && strings.Contains(l, id) {
			break
		}
	}
	if _, err := st.Get(ctx, trailUUID(t, id)); err == nil {
		t.Fatal("the event is stored before any sink ran: the tail did not have to read the stream")
	}
	// A sink stores it.
	_, js := connect(t, node.ClientURL())
	sctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { trailnats.NewSink(js, st, trailnats.SinkConfig{Config: cfg}).Run(sctx); close(done) }()
	for {
		if _, err := st.Get(ctx, trailUUID(t, id)); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling the store's state
	}
	stop()
	<-done
	// The same event again is a duplicate, from JetStream's window.
	resp = do(b.URL, "POST", "/v1/events", `{"id":"`+id+`","tenant":"acme","action":"doc.update","actor":{"type":"user","id":"u1"}}`)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"duplicate"`)) {
		t.Fatalf("retry: %d %s", resp.StatusCode, body)
	}
	// JetStream gone: 503 with Retry-After, nothing acknowledged.
	node.Shutdown()
	resp = do(a.URL, "POST", "/v1/events", `{"tenant":"acme","action":"doc.update","actor":{"type":"user","id":"u2"}}`)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("JetStream down: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

// edgeStore opens the store an edge reads (SQLite) with its key table and
// an all-tenant admin key, whose secret it returns.
func edgeStore(t testing.TB) (*trailsqlite.Store, trailserver.KeyStore, string) {
	t.Helper()
	ctx := context.Background()
	st, err := trailsqlite.Open(ctx, filepath.Join(t.TempDir(), "trail.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ks, err := trailserver.NewSQLKeyStore(ctx, st.DB(), trailserver.DialectSQLite)
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := trailserver.CreateKey(ctx, ks, trailserver.NewKeyRequest{All: true, Role: trailserver.RoleAdmin}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return st, ks, secret
}

func trailUUID(t testing.TB, s string) (id [16]byte) {
	t.Helper()
	ev := trail.Event{}
	if err := ev.ID.UnmarshalText([]byte(s)); err != nil {
		t.Fatal(err)
	}
	return ev.ID
}

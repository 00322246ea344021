package trailserver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailhq/trail/server/trailserver"
)

// countingKeys counts the key lookups: a header refused before the
// handler never reaches the key store.
type countingKeys struct {
	trailserver.KeyStore
	lookups atomic.Int64
}

func (k *countingKeys) Lookup(ctx context.Context, hash [32]byte) (trailserver.Key, error) {
	k.lookups.Add(1)
	return k.KeyStore.Lookup(ctx, hash)
}

// serveOnLoopback runs srv with Server.Serve (the listener setup trail
// serve uses) and returns its address; it stops at the end of the test.
func serveOnLoopback(t *testing.T, srv *trailserver.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return ln.Addr().String()
}

// rawGet sends one HTTP/1.1 request with the Authorization value as raw
// bytes, which no Go client would send, and reads the answer.
func rawGet(t *testing.T, addr, auth string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /v1/events HTTP/1.1\r\nHost: trail.example\r\nAuthorization: "+auth+"\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func wantAuthProblem(t *testing.T, what string, status int, ctype, body string) {
	t.Helper()
	var p trailserver.Problem
	if status != http.StatusUnauthorized || ctype != "application/problem+json" || json.Unmarshal([]byte(body), &p) != nil ||
		p.Type != trailserver.ProblemUnauthorized || p.Field != "Authorization" || p.Status != 401 {
		t.Errorf("%s: %d %s %q; want a 401 problem naming Authorization", what, status, ctype, body)
	}
}

// TestAuthorizationControlBytes: a NUL (or another control byte) in the
// Authorization header is refused by Go's net/http before any handler runs:
// its own plain-text 400, the connection closed, no key looked up. Trail
// cannot answer it with a problem (docs/api.md says so). What net/http does
// pass — bytes outside ASCII — and a NUL given to the handler in-process
// get the API's 401 problem, still without a lookup.
func TestAuthorizationControlBytes(t *testing.T) {
	st, ks := openSQLite(t)
	keys := &countingKeys{KeyStore: ks}
	srv, err := trailserver.New(trailserver.Config{Store: st, Keys: keys, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveOnLoopback(t, srv)
	const key = "trail_" + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ"

	for _, bad := range []string{"\x00", "\x01", "\x7f"} {
		resp, body := rawGet(t, addr, "Bearer "+key[:20]+bad+key[20:])
		if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") ||
			!strings.HasPrefix(body, "400 Bad Request") || !resp.Close {
			t.Errorf("%q in Authorization: %d %q %q; want net/http's plain-text 400", bad, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
	if n := keys.lookups.Load(); n != 0 {
		t.Fatalf("%d key lookups for headers net/http refuses", n)
	}

	resp, body := rawGet(t, addr, "Bearer "+key[:20]+"\xff\xfe"+key[20:])
	wantAuthProblem(t, "non-ASCII bytes", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	if !strings.Contains(body, "malformed API key") || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("non-ASCII bytes: %q, WWW-Authenticate %q", body, resp.Header.Get("WWW-Authenticate"))
	}

	for _, h := range []string{"Bearer " + key[:20] + "\x00" + key[20:], "Bearer\x00" + key} {
		req := httptest.NewRequest("GET", "/v1/events", nil)
		req.Header.Set("Authorization", h)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		wantAuthProblem(t, "in-process NUL", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
	}
	if n := keys.lookups.Load(); n != 0 {
		t.Fatalf("%d key lookups for malformed keys", n)
	}
}

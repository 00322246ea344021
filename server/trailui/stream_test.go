package trailui_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailserver"
)

// metric reads one sample from the site's /metrics.
func (s *site) metric(name string) float64 {
	s.t.Helper()
	resp, err := http.Get(s.url("/metrics"))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				s.t.Fatal(err)
			}
			return n
		}
	}
	s.t.Fatalf("no %s in /metrics", name)
	return 0
}

// waitMetric polls /metrics until the sample name equals want; it fails
// after 30 s.
func (s *site) waitMetric(name string, want float64) {
	s.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		v := s.metric(name)
		if v == want {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s is %v after 30 s, want %v", name, v, want)
		}
	}
}

// stream opens GET path with do, and for a 200 returns once the live tail
// is live (its ": streaming" line); the stream ends with the test.
func stream(t *testing.T, do func(*http.Request) (*http.Response, error), url string, hdr ...string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		return resp
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && sc.Text() != ": streaming" {
	}
	if sc.Err() != nil {
		t.Fatal(sc.Err())
	}
	return resp
}

func mustRefuse(t *testing.T, what string, resp *http.Response) {
	t.Helper()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("%s: %d, want 429", what, resp.StatusCode)
	}
	var p trailserver.Problem
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || p.Type != trailserver.ProblemRateLimited ||
		resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("%s: problem %+v (%v), Content-Type %q", what, p, err, resp.Header.Get("Content-Type"))
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("%s: Retry-After %q", what, resp.Header.Get("Retry-After"))
	}
}

// TestUIStreamCap: a UI session streams as its key. Its live tails and
// exports count against the key's cap together with the key's API
// streams; past it they are refused with 429, and other keys, in the UI or
// the API, stream as usual.
func TestUIStreamCap(t *testing.T) {
	s := newSite(t, nil)
	c := s.client()
	c.login("acme")
	for range trailserver.DefaultStreamsPerKey {
		if resp := stream(t, c.c.Do, s.url("/ui/tail/stream")); resp.StatusCode != http.StatusOK {
			t.Fatalf("UI tail: %d", resp.StatusCode)
		}
	}
	s.waitMetric(`trail_streams_open{kind="ui_tail"}`, trailserver.DefaultStreamsPerKey)

	mustRefuse(t, "one more UI tail", stream(t, c.c.Do, s.url("/ui/tail/stream")))
	mustRefuse(t, "a UI export", stream(t, c.c.Do, s.url("/ui/export?format=jsonl")))
	// A second sign-in with the same key shares its cap.
	c2 := s.client()
	c2.login("acme")
	mustRefuse(t, "a second session's tail", stream(t, c2.c.Do, s.url("/ui/tail/stream")))
	mustRefuse(t, "the key's API tail", stream(t, http.DefaultClient.Do, s.url("/v1/tail"), "Authorization", "Bearer "+s.secret["acme"]))
	for name, want := range map[string]float64{"ui_tail": 2, "ui_export": 1, "tail": 1, "export": 0} {
		if got := s.metric(`trail_streams_refused_total{kind="` + name + `"}`); got != want {
			t.Errorf("refused %s streams: %v, want %v", name, got, want)
		}
	}

	// Another key's session and API streams are not affected.
	g := s.client()
	g.login("globex")
	if resp := stream(t, g.c.Do, s.url("/ui/tail/stream")); resp.StatusCode != http.StatusOK {
		t.Fatalf("another key's UI tail: %d", resp.StatusCode)
	}
	if resp := stream(t, http.DefaultClient.Do, s.url("/v1/tail"), "Authorization", "Bearer "+s.secret["globex"]); resp.StatusCode != http.StatusOK {
		t.Fatalf("another key's API tail: %d", resp.StatusCode)
	}
	if code, _, _ := g.get("/ui/export?format=csv"); code != http.StatusOK {
		t.Fatalf("another key's UI export: %d", code)
	}
}

// smallBuffers gives accepted connections a small socket send buffer, so
// that an unread stream blocks after kilobytes rather than megabytes.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(16 << 10)
	}
	return c, err
}

// TestUIExportUnread: a UI export whose browser reads nothing is closed
// once its writes miss their deadline, and counted as kind ui_export.
func TestUIExportUnread(t *testing.T) {
	s := newSiteN(t, nil, 200)
	// ~12 MB of acme events: more than any socket buffers hold.
	blob := strings.Repeat("0123456789abcdef", 256)
	base := s.now.Add(-48 * time.Hour)
	for b := range 3 {
		batch := make([]trail.Event, 1000)
		for i := range batch {
			batch[i] = trail.Event{ID: uuid.Must(uuid.NewV7()), OccurredAt: base.Add(time.Duration(b*1000+i) * time.Millisecond),
				Tenant: "acme", Actor: trail.Actor{Type: trail.ActorUser, ID: "u1"}, Action: "user.update",
				Target: trail.Target{Type: "user", ID: "u1"}, Metadata: map[string]any{"blob": blob}}
			if err := batch[i].Normalize(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.store.Append(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	// The same store and keys behind a server whose streams have a tiny
	// write deadline (the client below never reads, so the test does not
	// depend on it), on a listener with small send buffers.
	srv, err := trailserver.New(trailserver.Config{Store: s.store, Keys: s.keys, RateLimit: -1, StreamWriteTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv)
	ts.Listener = smallBuffers{ts.Listener}
	ts.Start()
	t.Cleanup(func() { srv.Close(); ts.Close() })
	s2 := *s
	s2.srv, s2.ts = srv, ts
	c := s2.client()
	c.login("acme")
	var cookies []string
	for _, ck := range c.c.Jar.Cookies(mustURL(t, s2.url("/ui/"))) {
		cookies = append(cookies, ck.Name+"="+ck.Value)
	}

	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(16 << 10)
	fmt.Fprintf(conn, "GET /ui/export?format=jsonl HTTP/1.1\r\nHost: %s\r\nCookie: %s\r\n\r\n", ts.Listener.Addr(), strings.Join(cookies, "; "))

	s2.waitMetric(`trail_streams_closed_unread_total{kind="ui_export"}`, 1)
	s2.waitMetric(`trail_streams_open{kind="ui_export"}`, 0)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := io.Copy(io.Discard, conn); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("the connection is still open after 30 s (%d bytes read)", n)
		}
	}
}

// TestBrowserTailRefused: in Chromium, a live tail the key's cap refuses
// says so instead of "retrying" (the browser does not retry a 429), and
// follows again once the key has a free slot.
func TestBrowserTailRefused(t *testing.T) {
	ctx, _ := browser(t)
	s := newSite(t, nil)
	var api []*http.Response
	for range trailserver.DefaultStreamsPerKey {
		resp := stream(t, http.DefaultClient.Do, s.url("/v1/tail"), "Authorization", "Bearer "+s.secret["reader"])
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("API tail: %d", resp.StatusCode)
		}
		api = append(api, resp)
	}
	signIn(t, ctx, s, "reader")
	do(t, ctx, chromedp.Navigate(s.url("/ui/tail")))
	waitFor(t, ctx, `document.getElementById("tail-status").textContent.startsWith("The server refused the stream")`)
	if got := s.metric(`trail_streams_refused_total{kind="ui_tail"}`); got != 1 {
		t.Fatalf("refused UI tails: %v", got)
	}

	api[0].Body.Close()
	s.waitMetric(`trail_streams_open{kind="tail"}`, trailserver.DefaultStreamsPerKey-1)
	do(t, ctx, chromedp.Navigate(s.url("/ui/tail")))
	waitFor(t, ctx, `document.getElementById("tail-status").textContent === "Following."`)
}

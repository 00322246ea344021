package trailserver_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail/server/trailserver"
)

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

// serveSmallBuffers serves f's server again, on a listener with small send
// buffers, and returns its address.
func serveSmallBuffers(t *testing.T, f *fixture) string {
	t.Helper()
	ts := httptest.NewUnstartedServer(f.srv)
	ts.Listener = smallBuffers{ts.Listener}
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String()
}

// unreadGET sends GET path with the headers (name, value, …) on a raw
// connection and never reads the answer.
func unreadGET(t *testing.T, addr, path string, hdr ...string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.(*net.TCPConn).SetReadBuffer(16 << 10)
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\n", path, addr)
	for i := 0; i+1 < len(hdr); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", hdr[i], hdr[i+1])
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitMetric polls /metrics until the sample name equals want; it fails
// after 30 s.
func waitMetric(t *testing.T, f *fixture, name string, want float64) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		v := metricValue(t, f, name)
		if v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v after 30 s, want %v", name, v, want)
		}
	}
}

// closedByServer reads what c still holds and fails unless the server
// closed it (EOF or reset) within 30 s.
func closedByServer(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the connection is still open after 30 s (%d bytes read)", n)
	}
}

// A tiny per-write deadline: the unread client never reads, so the test
// does not depend on it.
func tinyWriteTimeout(c *trailserver.Config) { c.StreamWriteTimeout = 20 * time.Millisecond }

// TestStreamUnreadExport: an export whose client reads nothing is closed
// once its writes miss their deadline, and counted.
func TestStreamUnreadExport(t *testing.T) {
	f := newFixture(t, backends[0], tinyWriteTimeout)
	const n = 3000 // ~13 MB of JSON Lines: more than any socket buffers hold
	seedMany(t, f.store, n)
	addr := serveSmallBuffers(t, f)
	c := unreadGET(t, addr, "/v1/export?tenant=acme", "Authorization", "Bearer "+f.secret["readerA"])

	waitMetric(t, f, `trail_streams_closed_unread_total{kind="export"}`, 1)
	waitMetric(t, f, `trail_streams_open{kind="export"}`, 0)
	closedByServer(t, c)
	if got := metricValue(t, f, "trail_export_events_total"); got >= n {
		t.Fatalf("%v events exported to a client that read none", got)
	}
	if got := metricValue(t, f, `trail_streams_closed_unread_total{kind="tail"}`); got != 0 {
		t.Fatalf("unread tails: %v", got)
	}
	// The key's slot is free again, and a reading client gets its export.
	r := f.do("GET", "/v1/export?tenant=acme&action=user.*", "readerA", nil)
	if r.status != http.StatusOK {
		t.Fatalf("export after the unread one: %d %s", r.status, clip(r.body))
	}
}

// TestStreamUnreadTail: a live tail whose client reads nothing is closed
// once the events sent to it fill the buffers, and counted.
func TestStreamUnreadTail(t *testing.T) {
	f := newFixture(t, backends[0], tinyWriteTimeout)
	addr := serveSmallBuffers(t, f)
	c := unreadGET(t, addr, "/v1/tail?tenant=acme", "Authorization", "Bearer "+f.secret["readerA"])
	waitMetric(t, f, `trail_streams_open{kind="tail"}`, 1)

	const unread = `trail_streams_closed_unread_total{kind="tail"}`
	blob := strings.Repeat("0123456789abcdef", 2<<10) // 32 KiB an event
	for deadline := time.Now().Add(30 * time.Second); metricValue(t, f, unread) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the unread tail is still open after 30 s of events")
		}
		batch := make([]map[string]any, 50)
		for i := range batch {
			batch[i] = newEvent("acme")
			batch[i]["metadata"] = map[string]any{"blob": blob}
		}
		if r := f.json("POST", "/v1/events", "ingestA", batch); r.status != http.StatusCreated {
			t.Fatalf("ingest: %d %s", r.status, clip(r.body))
		}
	}
	waitMetric(t, f, `trail_streams_open{kind="tail"}`, 0)
	closedByServer(t, c)
}

// TestStreamCapPerKey: a key may have StreamsPerKey streams open, tails and
// exports together; one more is refused with 429 while the open ones keep
// working, and other keys are not affected.
func TestStreamCapPerKey(t *testing.T) {
	const max = 3
	f := newFixture(t, backends[0], func(c *trailserver.Config) { c.StreamsPerKey = max })
	var open []*stream
	for range max {
		open = append(open, openStream(t, f, "/v1/tail?tenant=acme", "readerA"))
	}

	refused := func(r response) {
		t.Helper()
		if r.status != http.StatusTooManyRequests {
			t.Fatalf("stream %d of the key: %d, want 429", max+1, r.status)
		}
		if p := r.problem(t); p.Type != trailserver.ProblemRateLimited || !strings.Contains(p.Detail, strconv.Itoa(max)+" streams") {
			t.Fatalf("problem %+v", p)
		}
		if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
			t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
		}
	}
	refused(tailStatus(t, f, "/v1/tail?tenant=acme", "readerA"))
	refused(f.do("GET", "/v1/export?tenant=acme", "readerA", nil))
	if got := metricValue(t, f, `trail_streams_refused_total{kind="tail"}`); got != 1 {
		t.Fatalf("refused tails: %v", got)
	}
	if got := metricValue(t, f, `trail_streams_refused_total{kind="export"}`); got != 1 {
		t.Fatalf("refused exports: %v", got)
	}

	// Another key streams as usual.
	other := openStream(t, f, "/v1/tail?tenant=acme", "readerAll")
	if r := f.do("GET", "/v1/export?tenant=acme", "readerAll", nil); r.status != http.StatusOK {
		t.Fatalf("another key's export: %d %s", r.status, clip(r.body))
	}
	// The open streams keep working.
	ev := newEvent("acme")
	if r := f.json("POST", "/v1/events", "ingestA", ev); r.status != http.StatusCreated {
		t.Fatalf("ingest: %d %s", r.status, clip(r.body))
	}
	id := uuid.MustParse(ev["id"].(string))
	for _, s := range append(open, other) {
		s.until(t, id, 30*time.Second)
	}
	if got := metricValue(t, f, `trail_streams_open{kind="tail"}`); got != max+1 {
		t.Fatalf("open tails: %v, want %d", got, max+1)
	}

	// A closed stream gives its slot back.
	open[0].cancel()
	for range open[0].events {
	}
	waitMetric(t, f, `trail_streams_open{kind="tail"}`, max)
	again := openStream(t, f, "/v1/tail?tenant=acme", "readerA")
	again.cancel()
	if got := metricValue(t, f, `trail_streams_closed_unread_total{kind="tail"}`); got != 0 {
		t.Fatalf("streams that were read counted unread: %v", got)
	}
}

// TestStreamsUncapped: a negative StreamsPerKey turns the cap off.
func TestStreamsUncapped(t *testing.T) {
	f := newFixture(t, backends[0], func(c *trailserver.Config) { c.StreamsPerKey = -1 })
	for range trailserver.DefaultStreamsPerKey + 2 {
		openStream(t, f, "/v1/tail?tenant=acme", "readerA")
	}
	if got := metricValue(t, f, `trail_streams_refused_total{kind="tail"}`); got != 0 {
		t.Fatalf("refused: %v", got)
	}
}

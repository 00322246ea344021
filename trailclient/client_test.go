package trailclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailclient"
)

// flaky is a stand-in for the ingest endpoint that fails on purpose: the
// real server's behaviour is tested end to end in the server module
// (trailserver's client_test.go); this one injects the faults a client must
// survive — 503, 429 with Retry-After, dropped connections, lost answers.
type flaky struct {
	mu       sync.Mutex
	stored   map[uuid.UUID]int // how many times each ID was offered
	requests atomic.Int64
	// fail decides the fate of request n (1-based): "" ok, "503", "429",
	// "drop" (close the connection before answering), "lose" (store, then
	// drop the connection: the client never hears the commit).
	fail func(n int64) string
	// reject makes the server answer 400 naming the event with this action.
	reject string
	// arrived, if set, is called with request n's events before it is
	// answered; it may block to hold the request in flight.
	arrived func(n int64, events []trail.Event)
	// maxBody, if set, answers 413 naming the body to a larger request, as
	// trail serve does past its 5 MiB; largest is the largest body seen.
	maxBody int64
	largest atomic.Int64
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.requests.Add(1)
	if r.Header.Get("Authorization") != "Bearer trail_test" {
		w.WriteHeader(401)
		return
	}
	for {
		old := f.largest.Load()
		if r.ContentLength <= old || f.largest.CompareAndSwap(old, r.ContentLength) {
			break
		}
	}
	if f.maxBody > 0 && r.ContentLength > f.maxBody {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(413)
		io.WriteString(w, `{"type":"urn:trail:problem:too-large","title":"Payload too large","status":413,"field":"body"}`)
		return
	}
	var body struct{ Events []trail.Event }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	if f.arrived != nil {
		f.arrived(n, body.Events)
	}
	fate := ""
	if f.fail != nil {
		fate = f.fail(n)
	}
	switch fate {
	case "503":
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(503)
		io.WriteString(w, `{"type":"urn:trail:problem:unavailable","title":"Service unavailable","status":503}`)
		return
	case "429":
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(429)
		return
	case "drop":
		hijackClose(w)
		return
	}
	for i, ev := range body.Events {
		if f.reject != "" && ev.Action == f.reject {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(400)
			json.NewEncoder(w).Encode(map[string]any{"type": "urn:trail:problem:invalid-request", "title": "Invalid request", "status": 400,
				"field": "events[" + itoa(i) + "].action", "detail": "rejected"})
			return
		}
	}
	type result struct {
		ID         uuid.UUID `json:"id"`
		Status     string    `json:"status"`
		RecordedAt time.Time `json:"recorded_at"`
	}
	var out struct {
		Results []result `json:"results"`
	}
	f.mu.Lock()
	for _, ev := range body.Events {
		f.stored[ev.ID]++
		st := "created"
		if f.stored[ev.ID] > 1 {
			st = "duplicate"
		}
		out.Results = append(out.Results, result{ev.ID, st, time.Now()})
	}
	f.mu.Unlock()
	if fate == "lose" {
		hijackClose(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(201)
	json.NewEncoder(w).Encode(out)
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func hijackClose(w http.ResponseWriter) {
	c, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		c.Close()
	}
}

func newFlaky(t testing.TB, fail func(int64) string) (*flaky, *httptest.Server) {
	f := &flaky{stored: map[uuid.UUID]int{}, fail: fail}
	ts := httptest.NewServer(f)
	t.Cleanup(ts.Close)
	return f, ts
}

func newClient(t testing.TB, url string, mod func(*trailclient.Config)) *trailclient.Client {
	cfg := trailclient.Config{BaseURL: url, Key: "trail_test", MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, FlushInterval: 5 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	c, err := trailclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func event(i int) trail.Event {
	return trail.Event{Tenant: "acme", Actor: trail.Actor{Type: trail.ActorUser, ID: "u1"}, Action: "user.update",
		Target: trail.Target{Type: "user", ID: itoa(i)}}
}

// TestRetriesAreIdempotent: through 503s, 429s, dropped connections and lost
// answers, every event recorded is stored, and a re-sent one only as a
// duplicate of itself.
func TestRetriesAreIdempotent(t *testing.T) {
	fates := []string{"503", "", "429", "lose", "", "drop", "", "lose", "503", ""}
	f, ts := newFlaky(t, func(n int64) string { return fates[(n-1)%int64(len(fates))] })
	c := newClient(t, ts.URL, func(c *trailclient.Config) { c.BatchSize = 7 })
	const n = 100
	var wg sync.WaitGroup
	ids := make([]uuid.UUID, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.Record(context.Background(), event(i))
			ids[i], errs[i] = res.ID, err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	resent := 0
	for _, id := range ids {
		if f.stored[id] == 0 {
			t.Fatalf("acknowledged event %s never reached the server", id)
		}
		if f.stored[id] > 1 {
			resent++
		}
	}
	if len(f.stored) != n {
		t.Fatalf("the server saw %d distinct IDs for %d events", len(f.stored), n)
	}
	if resent == 0 {
		t.Fatal("no event was re-sent after a lost answer: the test did not exercise idempotency")
	}
	t.Logf("%d requests for %d events, %d events re-sent with the same ID", f.requests.Load(), n, resent)
}

func TestBatchingAndFlush(t *testing.T) {
	f, ts := newFlaky(t, nil)
	c := newClient(t, ts.URL, func(c *trailclient.Config) { c.BatchSize = 50; c.FlushInterval = time.Hour })
	for i := range 120 {
		if _, err := c.Enqueue(context.Background(), event(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.requests.Load(); got != 3 {
		t.Fatalf("%d requests for 120 events in batches of 50, want 3", got)
	}
	if len(f.stored) != 120 {
		t.Fatalf("%d stored", len(f.stored))
	}
}

// TestFlushInterval: a lone Enqueued event is sent after FlushInterval, not
// held until a Flush.
func TestFlushInterval(t *testing.T) {
	f, ts := newFlaky(t, nil)
	c := newClient(t, ts.URL, func(c *trailclient.Config) { c.BatchSize = 1000 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Enqueue(ctx, event(1)); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "the interval's request", func() bool { return f.requests.Load() == 1 })
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if f.requests.Load() != 1 || len(f.stored) != 1 {
		t.Fatalf("%d requests, %d stored", f.requests.Load(), len(f.stored))
	}
}

// waitFor polls cond until it holds; ctx's deadline is only a guard against
// a hang, never the thing measured.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// TestRecordSkipsFlushInterval: with a FlushInterval of an hour, each of
// three sequential Records is sent at once in its own request and returns.
// (Before, each waited the interval: the 30 s guard would end the test.)
func TestRecordSkipsFlushInterval(t *testing.T) {
	f, ts := newFlaky(t, nil)
	c := newClient(t, ts.URL, func(c *trailclient.Config) { c.FlushInterval = time.Hour })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 3 {
		res, err := c.Record(ctx, event(i))
		if err != nil {
			t.Fatalf("Record %d: %v (held for the flush interval?)", i, err)
		}
		if res.Duplicate || res.RecordedAt.IsZero() {
			t.Fatalf("Record %d: %+v", i, res)
		}
		if got := f.requests.Load(); got != int64(i+1) {
			t.Fatalf("after %d sequential Records, %d requests", i+1, got)
		}
	}
}

// TestEnqueueWaitsForCompanions: Enqueued events still wait for the interval
// (an hour here) instead of going out alone; the next Record takes them along
// in its request.
func TestEnqueueWaitsForCompanions(t *testing.T) {
	f, ts := newFlaky(t, nil)
	c := newClient(t, ts.URL, func(c *trailclient.Config) { c.FlushInterval = time.Hour })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ids []uuid.UUID
	for i := range 3 {
		id, err := c.Enqueue(ctx, event(i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	res, err := c.Record(ctx, event(3))
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, res.ID)
	if got := f.requests.Load(); got != 1 {
		t.Fatalf("%d requests for 3 Enqueued events and a Record, want 1 shared", got)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		if f.stored[id] != 1 {
			t.Fatalf("event %s stored %d times", id, f.stored[id])
		}
	}
}

// TestConcurrentRecordsShareRequests: n goroutines Record at once with a
// FlushInterval of an hour. The first request is held at the server until
// every other event is queued behind it; all of those then go in one second
// request: 2 requests for n events (1 if the first took them all), each
// stored once.
func TestConcurrentRecordsShareRequests(t *testing.T) {
	const n = 50
	f, ts := newFlaky(t, nil)
	first := make(chan int, 1)
	hold := make(chan struct{})
	release := sync.OnceFunc(func() { close(hold) })
	f.arrived = func(r int64, events []trail.Event) {
		if r == 1 {
			first <- len(events)
			<-hold
		}
	}
	c := newClient(t, ts.URL, func(c *trailclient.Config) { c.BatchSize = 1000; c.FlushInterval = time.Hour })
	t.Cleanup(release) // runs before the client's Close and the server's
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	ids := make([]uuid.UUID, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.Record(ctx, event(i))
			ids[i], errs[i] = res.ID, err
		}()
	}
	var k int
	select {
	case k = <-first:
	case <-ctx.Done():
		t.Fatal("no request while Records wait (held for the flush interval?)")
	}
	waitFor(ctx, t, "the other events to queue", func() bool { return trailclient.QueueLen(c) == n-k })
	release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Record %d: %v", i, err)
		}
	}
	want := int64(2)
	if k == n {
		want = 1
	}
	if got := f.requests.Load(); got != want {
		t.Fatalf("%d requests for %d concurrent Records (%d in the first), want %d", got, n, k, want)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		if f.stored[id] != 1 {
			t.Fatalf("event %s stored %d times", id, f.stored[id])
		}
	}
	t.Logf("%d concurrent Records in %d requests (%d, then %d)", n, want, k, n-k)
}

// TestRejectedEventFailsAlone: one event the server refuses fails with the
// server's problem; its batch-mates are stored.
func TestRejectedEventFailsAlone(t *testing.T) {
	f, ts := newFlaky(t, nil)
	f.reject = "user.explode"
	c := newClient(t, ts.URL, func(c *trailclient.Config) { c.BatchSize = 10; c.FlushInterval = time.Hour })
	for i := range 10 {
		ev := event(i)
		if i == 4 {
			ev.Action = "user.explode"
		}
		c.Enqueue(context.Background(), ev)
	}
	err := c.Flush(context.Background())
	var ae *trailclient.APIError
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Field != "action" {
		t.Fatalf("flush error %v, want the 400 naming action", err)
	}
	if len(f.stored) != 9 {
		t.Fatalf("%d stored, want the 9 good events", len(f.stored))
	}
}

func TestPermanentErrorsAreNotRetried(t *testing.T) {
	f, ts := newFlaky(t, nil)
	c := newClient(t, ts.URL, func(c *trailclient.Config) { c.Key = "trail_wrong" })
	_, err := c.Record(context.Background(), event(1))
	var ae *trailclient.APIError
	if !errors.As(err, &ae) || ae.Status != 401 {
		t.Fatalf("%v, want 401", err)
	}
	if f.requests.Load() != 1 {
		t.Fatalf("a 401 was retried: %d requests", f.requests.Load())
	}
}

func TestGivesUp(t *testing.T) {
	f, ts := newFlaky(t, func(int64) string { return "503" })
	c := newClient(t, ts.URL, func(c *trailclient.Config) { c.MaxAttempts = 4 })
	_, err := c.Record(context.Background(), event(1))
	if err == nil || !strings.Contains(err.Error(), "giving up after 4 attempts") {
		t.Fatalf("%v", err)
	}
	if f.requests.Load() != 4 {
		t.Fatalf("%d requests, want 4", f.requests.Load())
	}
}

// TestServerDown: nothing listens; Record fails after its attempts, and the
// error is a network error, not a panic or a hang.
func TestServerDown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	c := newClient(t, "http://"+addr, func(c *trailclient.Config) { c.MaxAttempts = 3 })
	if _, err := c.Record(context.Background(), event(1)); err == nil {
		t.Fatal("recorded into nothing")
	}
}

func TestInvalidEventFailsLocally(t *testing.T) {
	f, ts := newFlaky(t, nil)
	c := newClient(t, ts.URL, nil)
	ev := event(1)
	ev.Action = "Not An Action"
	if _, err := c.Record(context.Background(), ev); !errors.Is(err, trail.ErrInvalid) {
		t.Fatalf("%v, want trail.ErrInvalid", err)
	}
	if f.requests.Load() != 0 {
		t.Fatal("an invalid event was sent")
	}
}

func TestClose(t *testing.T) {
	f, ts := newFlaky(t, nil)
	c := newClient(t, ts.URL, func(c *trailclient.Config) { c.FlushInterval = time.Hour })
	for i := range 5 {
		c.Enqueue(context.Background(), event(i))
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(f.stored) != 5 {
		t.Fatalf("Close flushed %d of 5", len(f.stored))
	}
	if _, err := c.Enqueue(context.Background(), event(9)); !errors.Is(err, trailclient.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestConfig(t *testing.T) {
	for _, cfg := range []trailclient.Config{{}, {BaseURL: "ftp://x", Key: "k"}, {BaseURL: "http://x"}, {BaseURL: "://", Key: "k"}} {
		if _, err := trailclient.New(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

// TestRecordTenantMismatch: an event naming another tenant than its context
// is refused before anything is sent.
func TestRecordTenantMismatch(t *testing.T) {
	c, err := trailclient.New(trailclient.Config{BaseURL: "http://127.0.0.1:1", Key: "trail_test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	ctx := trail.WithActor(trail.WithTenant(context.Background(), "acme"), trail.Actor{Type: trail.ActorUser, ID: "1"})
	if _, err := c.Record(ctx, trail.Event{Tenant: "globex", Action: "user.login"}); !errors.Is(err, trail.ErrTenantMismatch) {
		t.Fatalf("Record = %v, want ErrTenantMismatch", err)
	}
}

package trailserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailsqlite"
)

// heldStore is a real SQLite store whose Appends are counted; the first
// ones (as many as a server has in flight) are held until the test has
// reads queued behind them, and one can be made to fail or panic without
// writing (fault injection).
type heldStore struct {
	trail.Store
	appends atomic.Int64
	hold    int64         // Appends to hold
	entered chan struct{} // closed when the held Appends have started
	release chan struct{} // the held Appends wait for it
	failAt  int64         // this Append (1-based) fails; 0: none
	panicAt int64         // this Append panics; 0: none
}

var errInjected = errors.New("injected append failure")

func (h *heldStore) Append(ctx context.Context, evs []trail.Event) ([]trail.Result, error) {
	n := h.appends.Add(1)
	if n <= h.hold {
		if n == h.hold {
			close(h.entered)
		}
		<-h.release
	}
	switch n {
	case h.failAt:
		return nil, errInjected
	case h.panicAt:
		panic("injected append panic")
	}
	return h.Store.Append(ctx, evs)
}

// groupFixture is a server over a heldStore with one reader key and one
// stored event to read.
type groupFixture struct {
	t      *testing.T
	inner  trail.Store
	held   *heldStore
	srv    *Server
	secret string
	event  uuid.UUID
}

func newGroupFixture(t *testing.T, failAt, panicAt int64) *groupFixture {
	t.Helper()
	ctx := context.Background()
	st, err := trailsqlite.Open(ctx, filepath.Join(t.TempDir(), "trail.db"), &trailsqlite.Config{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ks, err := NewSQLKeyStore(ctx, st.DB(), DialectSQLite)
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := CreateKey(ctx, ks, NewKeyRequest{All: true, Role: RoleReader, Name: "reader"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ev := trail.Event{Tenant: "acme", Actor: trail.Actor{Type: trail.ActorUser, ID: "u1"}, Action: "user.update",
		Target: trail.Target{Type: "user", ID: "u1"}, Description: "Updated a user"}
	if err := ev.Normalize(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, []trail.Event{ev}); err != nil {
		t.Fatal(err)
	}
	held := &heldStore{Store: st, hold: int64(auditAppends), entered: make(chan struct{}), release: make(chan struct{}), failAt: failAt, panicAt: panicAt}
	srv, err := New(Config{Store: held, Keys: ks, RateLimit: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return &groupFixture{t: t, inner: st, held: held, srv: srv, secret: secret, event: ev.ID}
}

// readResult is the answer to one read: its status, or that it panicked.
type readResult struct {
	i        int
	code     int
	panicked bool
}

// read serves GET /v1/events/{id} with X-Request-Id read-i.
func (f *groupFixture) read(ctx context.Context, i int) (res readResult) {
	res.i = i
	defer func() {
		if recover() != nil {
			res.panicked = true
		}
	}()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/v1/events/"+f.event.String(), nil)
	req.Header.Set("Authorization", "Bearer "+f.secret)
	req.Header.Set("X-Request-Id", fmt.Sprintf("read-%d", i))
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	res.code = rec.Code
	return res
}

// queuedReads returns the reads queued behind srv's audit append in
// flight, and whether one is in flight.
func queuedReads(srv *Server) (int, bool) {
	auditQueues.Lock()
	defer auditQueues.Unlock()
	aq := auditQueues.m[srv]
	if aq == nil {
		return 0, false
	}
	return len(aq.waiting), true
}

// readsBehindHeldAppend starts reads 0…auditAppends-1, which lead and are
// held inside the store's first Appends, then the others up to k-1 (read i
// with ctxs[i] when given), waits until those are queued, calls queued (if
// not nil), releases the Appends and returns every read's result, in order.
func (f *groupFixture) readsBehindHeldAppend(k int, ctxs map[int]context.Context, queued func()) []readResult {
	f.t.Helper()
	done := make(chan readResult, k)
	var wg sync.WaitGroup
	start := func(i int) {
		ctx := context.Background()
		if c, ok := ctxs[i]; ok {
			ctx = c
		}
		wg.Go(func() { done <- f.read(ctx, i) })
	}
	lead := int(f.held.hold)
	for i := range lead {
		start(i)
	}
	<-f.held.entered
	for i := lead; i < k; i++ {
		start(i)
	}
	// Wait on the queue's state, not on time. No read can end while the
	// first Appends are held; one that does failed before auditing.
	for {
		if n, _ := queuedReads(f.srv); n == k-lead {
			break
		}
		select {
		case r := <-done:
			f.t.Fatalf("read %d ended (%d) before the held append was released", r.i, r.code)
		default:
			runtime.Gosched()
		}
	}
	if queued != nil {
		queued()
	}
	close(f.held.release)
	wg.Wait()
	close(done)
	res := make([]readResult, k)
	for r := range done {
		res[r.i] = r
	}
	return res
}

// auditedReads returns how many stored audit.read events carry each
// request ID.
func (f *groupFixture) auditedReads() map[string]int {
	f.t.Helper()
	page, err := f.inner.Query(context.Background(), trail.Query{AllTenants: true, Action: "audit.read", Limit: trail.MaxLimit})
	if err != nil {
		f.t.Fatal(err)
	}
	n := map[string]int{}
	for _, ev := range page.Events {
		n[ev.RequestID]++
	}
	return n
}

func (f *groupFixture) metrics() string {
	var b bytes.Buffer
	f.srv.metrics.write(&b)
	return b.String()
}

func (f *groupFixture) wantMetrics(lines ...string) {
	f.t.Helper()
	m := f.metrics()
	for _, l := range lines {
		if !strings.Contains(m, "\n"+l+"\n") {
			f.t.Errorf("metrics lack %q", l)
		}
	}
}

// noGroupLeft checks that once the reads have answered, srv has no audit
// append in flight and no goroutine is in the group's code.
func noGroupLeft(t *testing.T, srv *Server) {
	t.Helper()
	if n, busy := queuedReads(srv); busy || n != 0 {
		t.Errorf("after the reads: append in flight %v, %d reads queued", busy, n)
	}
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	for _, fn := range []string{"appendAudit", "leadAudit", "endAuditGroup"} {
		if strings.Contains(stacks, "trailserver.(*Server)."+fn) {
			t.Errorf("a goroutine is still in %s:\n%s", fn, stacks)
		}
	}
}

// TestAuditReadsShareAppends: reads that arrive while an audit append is in
// flight are stored together in the next one, each audit.read exactly once,
// also that of a read whose request was cancelled while it was queued.
func TestAuditReadsShareAppends(t *testing.T) {
	const k = 8
	f := newGroupFixture(t, 0, 0)
	// Read 3's request is cancelled once it is queued.
	cancelled, cancel := context.WithCancel(context.Background())
	res := f.readsBehindHeldAppend(k, map[int]context.Context{3: cancelled}, cancel)
	for _, r := range res {
		if r.i != 3 && r.code != http.StatusOK {
			t.Errorf("read %d: %d, want 200", r.i, r.code)
		}
	}
	if n := f.held.appends.Load(); n != 2 {
		t.Errorf("%d reads made %d appends, want 2 (one alone, one for the %d queued behind it)", k, n, k-1)
	}
	got := f.auditedReads()
	for i := range k {
		if id := fmt.Sprintf("read-%d", i); got[id] != 1 {
			t.Errorf("%s has %d audit.read events, want 1", id, got[id])
		}
	}
	if len(got) != k {
		t.Errorf("audit.read events for %d request IDs, want %d: %v", len(got), k, got)
	}
	f.wantMetrics(
		`trail_audit_read_groups_total{result="committed"} 2`,
		`trail_audit_read_groups_total{result="failed"} 0`,
		`trail_audit_read_group_size_bucket{le="1"} 1`,
		`trail_audit_read_group_size_bucket{le="5"} 1`,
		`trail_audit_read_group_size_bucket{le="10"} 2`,
		`trail_audit_read_group_size_sum 8`,
		`trail_audit_read_group_size_count 2`,
		`trail_audit_reads_total 8`,
	)
	noGroupLeft(t, f.srv)
	f.srv.Close()
	noGroupLeft(t, f.srv)
}

// TestAuditGroupSizes: a queue longer than auditGroupMax is stored in
// several appends, none larger; with auditAppends appends in flight, as
// many reads append at once, alone, and those queued behind them go
// together in the next append.
func TestAuditGroupSizes(t *testing.T) {
	for _, c := range []struct {
		name              string
		groupMax, appends int
		wantAppends       int64
		wantMetrics       []string
	}{
		// 1 alone, then the 7 queued as 3 + 3 + 1.
		{"max 3", 3, 1, 4, []string{`trail_audit_read_group_size_bucket{le="1"} 2`, `trail_audit_read_group_size_bucket{le="5"} 4`}},
		// Reads 0 and 1 alone; the first of them to end takes the 6 queued.
		{"2 in flight", MaxBatch, 2, 3, []string{`trail_audit_read_group_size_bucket{le="1"} 2`, `trail_audit_read_group_size_bucket{le="10"} 3`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer func(m, n int) { auditGroupMax, auditAppends = m, n }(auditGroupMax, auditAppends)
			auditGroupMax, auditAppends = c.groupMax, c.appends
			const k = 8
			f := newGroupFixture(t, 0, 0)
			for _, r := range f.readsBehindHeldAppend(k, nil, nil) {
				if r.code != http.StatusOK {
					t.Errorf("read %d: %d, want 200", r.i, r.code)
				}
			}
			if n := f.held.appends.Load(); n != c.wantAppends {
				t.Errorf("%d appends, want %d", n, c.wantAppends)
			}
			if got := f.auditedReads(); len(got) != k {
				t.Errorf("audit.read events for %d request IDs, want %d: %v", len(got), k, got)
			}
			f.wantMetrics(append(c.wantMetrics, `trail_audit_read_group_size_sum 8`)...)
			noGroupLeft(t, f.srv)
		})
	}
}

// TestAuditGroupFails: when a group's append fails, every read of the
// group is refused and none of its events is stored; the next read is
// audited again.
func TestAuditGroupFails(t *testing.T) {
	const k = 6
	f := newGroupFixture(t, 2, 0)
	res := f.readsBehindHeldAppend(k, nil, nil)
	if res[0].code != http.StatusOK {
		t.Errorf("read 0 (its own append): %d, want 200", res[0].code)
	}
	for _, r := range res[1:] {
		if r.code != http.StatusServiceUnavailable {
			t.Errorf("read %d (the failed group): %d, want 503", r.i, r.code)
		}
	}
	if got := f.auditedReads(); len(got) != 1 || got["read-0"] != 1 {
		t.Errorf("stored audit.read events by request ID %v, want only read-0's", got)
	}
	if r := f.read(context.Background(), k); r.code != http.StatusOK {
		t.Errorf("the read after the failure: %d, want 200", r.code)
	}
	if got := f.auditedReads(); len(got) != 2 || got[fmt.Sprintf("read-%d", k)] != 1 {
		t.Errorf("after one more read, audit.read events by request ID %v", got)
	}
	f.wantMetrics(`trail_audit_read_groups_total{result="committed"} 2`, `trail_audit_read_groups_total{result="failed"} 1`)
	noGroupLeft(t, f.srv)
}

// TestAuditGroupLeaderPanics: an append that panics in the read leading a
// group still answers the rest of the group (refused) and leaves the next
// read a writer.
func TestAuditGroupLeaderPanics(t *testing.T) {
	const k = 5
	f := newGroupFixture(t, 0, 2)
	res := f.readsBehindHeldAppend(k, nil, nil)
	panicked := 0
	for _, r := range res[1:] {
		switch {
		case r.panicked:
			panicked++
		case r.code != http.StatusServiceUnavailable:
			t.Errorf("read %d: %d, want 503", r.i, r.code)
		}
	}
	if res[0].code != http.StatusOK || panicked != 1 {
		t.Errorf("read 0: %d; %d reads panicked, want the group's leader only", res[0].code, panicked)
	}
	if r := f.read(context.Background(), k); r.code != http.StatusOK {
		t.Errorf("the read after the panic: %d, want 200", r.code)
	}
	if got := f.auditedReads(); len(got) != 2 {
		t.Errorf("audit.read events by request ID %v, want read-0's and read-%d's", got, k)
	}
	noGroupLeft(t, f.srv)
}

package trailserver_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailpgx"
)

// The stores feed the tail: a signature drift must fail the build, not turn
// the feed off.
var (
	_ trailserver.SeqTailer      = (*trailsqlite.Store)(nil)
	_ trailserver.RecordedTailer = (*trailpgx.Store)(nil)
)

// writer is a second writer on the fixture's store, in another handle (as
// `trail record` or a service embedding the library would be).
type writer struct {
	// record commits ev in a transaction of its own.
	record func(t testing.TB, ev trail.Event) trail.Event
	// begin starts a transaction holding ev, committed by the returned
	// func (PostgreSQL only: SQLite serializes writers).
	begin func(t testing.TB, ev trail.Event) (commit func())
}

func secondWriter(t testing.TB, f *fixture) writer {
	t.Helper()
	ctx := context.Background()
	// Like the server's all-tenant keys, the other writer may write
	// platform events (no tenant).
	rctx := trail.WithPlatform(ctx)
	switch st := f.store.(type) {
	case *trailsqlite.Store:
		st2, err := trailsqlite.Open(ctx, st.Path(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st2.Close() })
		c := must(trail.NewClient[*sql.Tx](st2, &trail.Config{Plaintext: true}))
		return writer{record: func(t testing.TB, ev trail.Event) trail.Event {
			t.Helper()
			if _, err := c.Record(rctx, ev); err != nil {
				t.Fatal(err)
			}
			return ev
		}}
	case *trailpgx.Store:
		pool, err := pgxpool.New(ctx, testenv.PostgresDSN())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		st2, err := trailpgx.New(ctx, pool, &trailpgx.Config{Schema: st.Schema()})
		if err != nil {
			t.Fatal(err)
		}
		c := must(trail.NewClient[pgx.Tx](st2, &trail.Config{Plaintext: true}))
		begin := func(t testing.TB, ev trail.Event) func() {
			t.Helper()
			tx, err := pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { tx.Rollback(ctx) }) // after a failure; a no-op once committed
			if _, err := c.RecordTx(rctx, tx, ev); err != nil {
				t.Fatal(err)
			}
			return func() {
				if err := tx.Commit(ctx); err != nil {
					t.Error(err)
				}
			}
		}
		return writer{
			record: func(t testing.TB, ev trail.Event) trail.Event {
				t.Helper()
				begin(t, ev)()
				return ev
			},
			begin: begin,
		}
	}
	t.Fatalf("no second writer for %T", f.store)
	return writer{}
}

func userEvent(tenant, desc string) trail.Event {
	return trail.Event{ID: uuid.Must(uuid.NewV7()), Tenant: tenant, Actor: trail.Actor{Type: trail.ActorUser, ID: "u1"},
		Action: "user.update", Target: trail.Target{Type: "user", ID: "u1"}, Description: desc}
}

// stream is an open GET /v1/tail.
type stream struct {
	events chan trail.Event // closed when the stream ends
	got    time.Time
	cancel context.CancelFunc
	mu     sync.Mutex
	at     map[uuid.UUID]time.Time // when each event arrived
}

// openStream opens path with the named key and returns once the stream is
// live.
func openStream(t testing.TB, f *fixture, path, key string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", f.ts.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+f.secret[key])
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("tail %s: %d", path, resp.StatusCode)
	}
	s := &stream{events: make(chan trail.Event, 4096), cancel: cancel, at: map[uuid.UUID]time.Time{}}
	live := make(chan struct{})
	go func() {
		defer resp.Body.Close()
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if sc.Text() == ": streaming" {
				close(live)
			}
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ev trail.Event
				if json.Unmarshal([]byte(d), &ev) != nil || ev.ID == uuid.Nil {
					continue
				}
				s.mu.Lock()
				s.at[ev.ID] = time.Now()
				s.mu.Unlock()
				s.events <- ev
			}
		}
	}()
	select {
	case <-live:
	case <-time.After(30 * time.Second):
		t.Fatal("the stream did not start")
	}
	return s
}

// until collects events until one with id arrives (fails after timeout).
func (s *stream) until(t testing.TB, id uuid.UUID, timeout time.Duration) []trail.Event {
	t.Helper()
	var got []trail.Event
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("the stream ended before %s; got %d events", id, len(got))
			}
			got = append(got, ev)
			if ev.ID == id {
				return got
			}
		case <-deadline:
			t.Fatalf("no %s on the tail within %v; got %v", id, timeout, ids(got))
		}
	}
}

// drain collects what arrives within d.
func (s *stream) drain(d time.Duration) []trail.Event {
	var got []trail.Event
	deadline := time.After(d)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return got
			}
			got = append(got, ev)
		case <-deadline:
			return got
		}
	}
}

func ids(evs []trail.Event) []uuid.UUID {
	out := make([]uuid.UUID, len(evs))
	for i := range evs {
		out[i] = evs[i].ID
	}
	return out
}

// checkOnce fails unless every want arrived exactly once and no other event
// did.
func checkOnce(t *testing.T, name string, got []trail.Event, want ...uuid.UUID) {
	t.Helper()
	n := map[uuid.UUID]int{}
	for _, ev := range got {
		n[ev.ID]++
	}
	for _, id := range want {
		if n[id] != 1 {
			t.Errorf("%s: %s arrived %d times, want once", name, id, n[id])
		}
		delete(n, id)
	}
	for id, c := range n {
		t.Errorf("%s: unexpected event %s (%d times)", name, id, c)
	}
}

const testPoll = 20 * time.Millisecond

// TestTailSeesOtherWriters: events committed by another handle on the store
// reach open streams once, revealed, and only the streams allowed to see
// them; events this server ingested also arrive once, though the feed reads
// them too.
func TestTailSeesOtherWriters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b, func(c *trailserver.Config) { c.TailPoll = testPoll; c.Reveal = marker{} })
		w := secondWriter(t, f)
		acme := openStream(t, f, "/v1/tail?action=user.*", "readerA")
		all := openStream(t, f, "/v1/tail?action=user.*", "readerAll")

		e1 := w.record(t, userEvent("acme", "from another writer"))
		e2 := w.record(t, userEvent("globex", "another tenant"))
		ingested := newEvent("acme")
		f.json("POST", "/v1/events", "ingestA", ingested)
		e3 := w.record(t, userEvent("acme", "after ingest"))
		e4 := w.record(t, userEvent("", "platform"))
		in := uuid.MustParse(ingested["id"].(string))

		// A few more polls after the last one, to catch a second copy.
		gotA := append(acme.until(t, e3.ID, 30*time.Second), acme.drain(10*testPoll)...)
		checkOnce(t, "acme stream", gotA, e1.ID, in, e3.ID)
		gotAll := append(all.until(t, e4.ID, 30*time.Second), all.drain(10*testPoll)...)
		checkOnce(t, "all-tenant stream", gotAll, e1.ID, e2.ID, in, e3.ID, e4.ID)
		for _, ev := range gotA {
			if !strings.HasPrefix(ev.Description, "revealed:") || strings.HasPrefix(ev.Description, "revealed:revealed:") {
				t.Errorf("%s: description %q, want revealed once", ev.ID, ev.Description)
			}
		}
		if m := metricValue(t, f, "trail_tail_polls_total"); m == 0 {
			t.Error("trail_tail_polls_total is 0")
		}
	})
}

// TestTailLongTransaction: on PostgreSQL an event's recorded_at is stamped
// before its transaction commits, so it can commit behind events already
// shown; the lookback window still shows it, once.
func TestTailLongTransaction(t *testing.T) {
	for _, b := range backends {
		if b.name != "postgres" {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			f := newFixture(t, b, func(c *trailserver.Config) { c.TailPoll = testPoll })
			w := secondWriter(t, f)
			s := openStream(t, f, "/v1/tail?tenant=acme&action=user.*", "readerA")
			long := userEvent("acme", "long transaction")
			commit := w.begin(t, long)
			time.Sleep(300 * time.Millisecond) // the long event's recorded_at is well behind
			later := w.record(t, userEvent("acme", "committed first"))
			got := s.until(t, later.ID, 30*time.Second)
			time.Sleep(10 * testPoll) // the feed polls past the later event
			commit()
			got = append(got, s.until(t, long.ID, 30*time.Second)...)
			got = append(got, s.drain(10*testPoll)...)
			checkOnce(t, "stream", got, later.ID, long.ID)
		})
	}
}

// TestTailPollsOnlyWithStreams: no stream, no store reads.
func TestTailPollsOnlyWithStreams(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b, func(c *trailserver.Config) { c.TailPoll = testPoll })
		time.Sleep(5 * testPoll)
		if n := metricValue(t, f, "trail_tail_polls_total"); n != 0 {
			t.Fatalf("%v polls without a stream", n)
		}
		s := openStream(t, f, "/v1/tail", "readerA")
		time.Sleep(10 * testPoll)
		if n := metricValue(t, f, "trail_tail_polls_total"); n == 0 {
			t.Fatal("no polls with a stream open")
		}
		s.cancel()
		for range s.events {
		}
		// The handler returns and the feed notices at its next tick: then the
		// count stops moving.
		for deadline := time.Now().Add(10 * time.Second); ; {
			n := metricValue(t, f, "trail_tail_polls_total")
			time.Sleep(10 * testPoll)
			m := metricValue(t, f, "trail_tail_polls_total")
			if m == n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("polls go on after the last stream closed: %v then %v", n, m)
			}
		}
		// A new stream starts a new feed, positioned at the store's end: it
		// sees what is committed from then on, and nothing older.
		w := secondWriter(t, f)
		w.record(t, userEvent("acme", "before the stream")) // must not arrive
		s2 := openStream(t, f, "/v1/tail?action=user.*", "readerA")
		after := w.record(t, userEvent("acme", "after the stream"))
		got := append(s2.until(t, after.ID, 30*time.Second), s2.drain(10*testPoll)...)
		checkOnce(t, "stream", got, after.ID)
	})
}

// metricValue reads one unlabelled sample from /metrics.
func metricValue(t testing.TB, f *fixture, name string) float64 {
	t.Helper()
	r := f.do("GET", "/metrics", "", nil)
	for line := range strings.Lines(string(r.body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// TestTailLatency measures commit → delivery for events of another writer
// with the default poll interval. TRAIL_TAIL_LATENCY=1 runs it.
func TestTailLatency(t *testing.T) {
	if os.Getenv("TRAIL_TAIL_LATENCY") == "" {
		t.Skip("set TRAIL_TAIL_LATENCY=1 to measure")
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b, nil)
		w := secondWriter(t, f)
		s := openStream(t, f, "/v1/tail?action=user.*", "readerA")
		const n = 200
		committed := map[uuid.UUID]time.Time{}
		var last uuid.UUID
		for i := range n {
			ev := w.record(t, userEvent("acme", "latency "+strconv.Itoa(i)))
			committed[ev.ID], last = time.Now(), ev.ID
			time.Sleep(7 * time.Millisecond) // spread over a few polls
		}
		got := s.until(t, last, time.Minute)
		var lat []time.Duration
		s.mu.Lock()
		for _, ev := range got {
			if c, ok := committed[ev.ID]; ok {
				lat = append(lat, s.at[ev.ID].Sub(c))
			}
		}
		s.mu.Unlock()
		if len(lat) != n {
			t.Fatalf("%d of %d events arrived", len(lat), n)
		}
		slices.Sort(lat)
		t.Logf("%s: commit → tail delivery over %d events: p50 %v, p95 %v, max %v", b.name, n,
			lat[n/2].Round(time.Millisecond), lat[n*95/100].Round(time.Millisecond), lat[n-1].Round(time.Millisecond))
	})
}

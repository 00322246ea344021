package trailserver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailui"
)

// Live tail design: a broadcast hub fed from two sides. Ingest (and the
// server's own audit.read and privacy.* events) publish each committed
// batch at once, after the store's commit. While a stream is open,
// a poller reads what other writers committed to the store — services using
// the library in their own transactions, capture triggers, other replicas,
// `trail record` — and publishes it too (tail_store.go). While the poller
// runs, the hub remembers the IDs it sent and drops a second copy, so an
// event reaches a stream once whichever path sees it first.
//
// On connect a stream may first catch up from the store (backlog=N: the
// newest N matching events, oldest first); it subscribes before that query,
// so nothing committed in between is missed, and drops live events the
// backlog already sent.
type hub struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool

	// The store feed; newFeed is nil when the store offers none.
	newFeed  func() feed
	interval time.Duration
	log      *slog.Logger
	m        *metrics
	ctx      context.Context // ends at close
	cancel   context.CancelFunc
	startMu  sync.Mutex // one stream at a time primes a new feed
	running  bool
	sent     map[uuid.UUID]seenEntry // while running: what was sent, until no poll can read it again
}

type subscriber struct {
	match func(*trail.Event) bool
	ch    chan trail.Event
	// lagged is closed when the subscriber fell more than its buffer behind
	// and events were dropped; the stream then ends so that the client knows
	// to reconnect and catch up.
	lagged chan struct{}
	once   sync.Once
}

// errHubClosed: the server is shutting down.
var errHubClosed = errors.New("trailserver: the live tail is closed")

func newHub(newFeed func() feed, interval time.Duration, log *slog.Logger, m *metrics) *hub {
	ctx, cancel := context.WithCancel(context.Background())
	return &hub{subs: map[*subscriber]struct{}{}, newFeed: newFeed, interval: interval, log: log, m: m, ctx: ctx, cancel: cancel}
}

// subscribe returns a subscriber. The first one while no feed runs primes a
// new feed at the store's end before it is added, so that every event
// committed after subscribe returns reaches it.
func (h *hub) subscribe(ctx context.Context, match func(*trail.Event) bool, buf int) (*subscriber, error) {
	s := &subscriber{match: match, ch: make(chan trail.Event, buf), lagged: make(chan struct{})}
	add := func() (*subscriber, error) {
		if h.closed {
			return nil, errHubClosed
		}
		h.subs[s] = struct{}{}
		return s, nil
	}
	h.mu.Lock()
	if h.newFeed == nil || h.running || h.closed {
		defer h.mu.Unlock()
		return add()
	}
	h.mu.Unlock()
	h.startMu.Lock()
	defer h.startMu.Unlock()
	h.mu.Lock()
	if h.running || h.closed {
		defer h.mu.Unlock()
		return add()
	}
	h.mu.Unlock()
	f := h.newFeed()
	sent := map[uuid.UUID]seenEntry{}
	if err := f.prime(ctx, func(e seenEntry) { sent[e.id] = e }); err != nil {
		return nil, fmt.Errorf("trailserver: tail: reading the store's end: %w", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := add(); err != nil {
		return nil, err
	}
	h.sent, h.running = sent, true
	go h.run(f)
	return s, nil
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.ch)
	}
}

// run polls the store every interval until no stream is open.
func (h *hub) run(f feed) {
	if c, ok := f.(interface{ close() }); ok { // a stream feed's consumer (tail_stream.go)
		defer c.close()
	}
	t := time.NewTicker(h.interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		h.mu.Lock()
		if len(h.subs) == 0 || h.closed {
			h.running, h.sent = false, nil
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		ctx, cancel := context.WithTimeout(h.ctx, max(10*h.interval, 30*time.Second))
		stale, err := f.poll(ctx, h)
		cancel()
		h.m.tailPolls.Add(1)
		if err != nil {
			// The position did not move: the next poll retries from it.
			h.m.tailPollErrors.Add(1)
			if !failing && h.ctx.Err() == nil {
				h.log.Error("trailserver: tail: polling the store", "err", err)
			}
			failing = true
			continue
		}
		if failing {
			h.log.Info("trailserver: tail: polling the store again")
			failing = false
		}
		h.mu.Lock()
		for id, e := range h.sent {
			if stale(e) {
				delete(h.sent, id)
			}
		}
		h.mu.Unlock()
	}
}

// seen reports whether the hub sent id while the current feed runs.
func (h *hub) seen(id uuid.UUID, _ time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.sent[id]
	return ok
}

// publish sends events this server committed.
func (h *hub) publish(evs []trail.Event) { h.deliver(evs, false) }

// publishStored sends events the store feed read.
func (h *hub) publishStored(evs []trail.Event) { h.deliver(evs, true) }

func (h *hub) deliver(evs []trail.Event, stored bool) {
	if len(evs) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) == 0 && !h.running {
		return
	}
	now := time.Now()
	for i := range evs {
		ev := &evs[i]
		if h.sent != nil {
			if _, dup := h.sent[ev.ID]; dup {
				continue
			}
			h.sent[ev.ID] = seenEntry{id: ev.ID, recorded: ev.RecordedAt, added: now}
			if stored {
				h.m.tailStoreEvents.Add(1)
			}
		}
		for s := range h.subs {
			if !s.match(ev) {
				continue
			}
			select {
			case s.ch <- *ev:
			default:
				s.once.Do(func() { close(s.lagged) })
			}
		}
	}
}

// close ends every stream, stops the feed and refuses new streams (at
// shutdown).
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	h.cancel()
	for s := range h.subs {
		delete(h.subs, s)
		close(s.ch)
	}
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// matcher is the in-memory form of a query's filters for live events. Text
// matches when every word of the filter occurs in the description, case
// folded — close to, not exactly, the store's full-text match.
func matcher(q trail.Query) func(*trail.Event) bool {
	actions, _ := trail.ParseActionFilter(q.Action) // validated by parseQuery
	words := strings.Fields(strings.ToLower(q.Text))
	return func(ev *trail.Event) bool {
		switch {
		case q.Tenant != "" && ev.Tenant != q.Tenant:
			return false
		case q.ActorType != "" && ev.Actor.Type != q.ActorType:
			return false
		case q.ActorID != "" && ev.Actor.ID != q.ActorID:
			return false
		// Live events are in their stored form: an encrypted name or
		// e-mail matches through the pseudonyms stored with it.
		case q.ActorName != "" && ev.Actor.Name != q.ActorName,
			q.ActorEmail != "" && ev.Actor.Email != q.ActorEmail,
			!q.ActorNameDigest.IsZero() && ev.Lookup.ActorName != q.ActorNameDigest,
			!q.ActorEmailDigest.IsZero() && ev.Lookup.ActorEmail != q.ActorEmailDigest:
			return false
		case !actions.Match(ev.Action):
			return false
		case q.TargetType != "" && ev.Target.Type != q.TargetType:
			return false
		case q.TargetID != "" && ev.Target.ID != q.TargetID:
			return false
		case q.Outcome != "" && ev.Outcome != q.Outcome:
			return false
		case !q.Since.IsZero() && ev.OccurredAt.Before(q.Since):
			return false
		case !q.Until.IsZero() && !ev.OccurredAt.Before(q.Until):
			return false
		}
		if q.Metadata != "" && !trail.MetadataContains(ev.Metadata, q.Metadata) {
			return false
		}
		if q.Field != "" && !slices.ContainsFunc(ev.Changes, func(c trail.Change) bool { return c.Field == q.Field }) {
			return false
		}
		if len(words) > 0 {
			d := strings.ToLower(ev.Description)
			for _, w := range words {
				if !strings.Contains(d, w) {
					return false
				}
			}
		}
		return true
	}
}

// tail streams matching events as Server-Sent Events: "event: event",
// "id: <event id>", "data: <event JSON>". A comment line every
// TailHeartbeat keeps the connection alive; "event: lagged" ends a stream
// that fell behind; "event: shutdown" ends it when the server stops.
func (s *Server) tail(w http.ResponseWriter, r *http.Request, k *Key) {
	s.tailAs(w, r, k, kindTail)
}

// tailAs streams a live tail counted as kind (stream.go).
func (s *Server) tailAs(w http.ResponseWriter, r *http.Request, k *Key, kind streamKind) {
	v := r.URL.Query()
	if p := checkParams(v, tailParams); p != nil {
		writeProblem(w, r, p)
		return
	}
	backlog := 0
	if b := v.Get("backlog"); b != "" {
		n, err := strconv.Atoi(b)
		if err != nil || n < 0 || n > trail.MaxLimit {
			writeProblem(w, r, badRequest("backlog", fmt.Sprintf("must be an integer from 0 to %d", trail.MaxLimit)))
			return
		}
		backlog = n
	}
	v2 := r.URL.Query()
	v2.Del("backlog")
	q, p := s.scopedQuery(k, v2)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	st := s.openStream(w, r, k, kind)
	if st == nil {
		return
	}
	defer st.close()
	sub, err := s.hub.subscribe(r.Context(), matcher(q), s.cfg.TailBuffer)
	if errors.Is(err, errHubClosed) {
		writeProblem(w, r, problem(http.StatusServiceUnavailable, ProblemUnavailable, "", "the server is shutting down"))
		return
	}
	if err != nil {
		s.storeProblem(w, r, "the live tail", err)
		return
	}
	defer s.hub.unsubscribe(sub)
	var past []trail.Event
	if backlog > 0 {
		bq := q
		bq.Limit = backlog
		page, err := s.cfg.Store.Query(r.Context(), bq)
		if err != nil {
			s.storeProblem(w, r, "the backlog query", err)
			return
		}
		past = page.Events
	}
	// The stream does not show its own audit.read.
	self, err := s.recordRead(r.Context(), k, r, q.Tenant, trail.Target{}, map[string]any{"filters": filtersOf(v)})
	if err != nil {
		s.auditFailed(w, r, err)
		return
	}
	s.metrics.tailSubscribers.Add(1)
	defer s.metrics.tailSubscribers.Add(-1)
	// A stream outlives the server's write timeout: each write has its own
	// deadline (stream.go).
	st.start()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriter(st)
	send := func(ev *trail.Event) bool {
		if s.cfg.Reveal != nil {
			one := []trail.Event{*ev} // the hub's copy is shared with other streams
			s.reveal(r.Context(), one)
			ev = &one[0]
		}
		b, err := json.Marshal(ev)
		if err != nil {
			return false
		}
		// JSON has no raw newlines, so one data line carries it.
		fmt.Fprintf(bw, "id: %s\nevent: event\ndata: %s\n\n", ev.ID, b)
		return true
	}
	flush := func() bool { return bw.Flush() == nil && st.flush() == nil }
	sent := make(map[uuid.UUID]struct{}, len(past))
	for i := len(past) - 1; i >= 0; i-- {
		send(&past[i])
		sent[past[i].ID] = struct{}{}
	}
	fmt.Fprintf(bw, ": streaming\n\n")
	if !flush() {
		return
	}
	heartbeat := time.NewTicker(s.cfg.TailHeartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-sub.lagged:
			fmt.Fprintf(bw, "event: lagged\ndata: {\"detail\":\"the stream fell more than %d events behind; reconnect with backlog to catch up\"}\n\n", s.cfg.TailBuffer)
			flush()
			return
		case <-heartbeat.C:
			// What let the stream open still holds, or it ends with an
			// "ended" event: the UI's tail then offers to sign in again.
			if !s.streamStillAllowed(r, k, kind) {
				fmt.Fprintf(bw, "event: ended\ndata: {\"detail\":\"the key was revoked or expired, or the session ended\"}\n\n")
				flush()
				return
			}
			fmt.Fprintf(bw, ": keep-alive\n\n")
			if !flush() {
				return
			}
		case ev, ok := <-sub.ch:
			if !ok {
				fmt.Fprintf(bw, "event: shutdown\ndata: {}\n\n")
				flush()
				return
			}
			if _, dup := sent[ev.ID]; dup || ev.ID == self {
				continue
			}
			send(&ev)
			// Drain what is already queued before flushing once.
			for more := true; more; {
				select {
				case ev, ok := <-sub.ch:
					if !ok {
						more = false
						break
					}
					if _, dup := sent[ev.ID]; !dup && ev.ID != self {
						send(&ev)
					}
				default:
					more = false
				}
			}
			// sent stays: the store feed may deliver an event the backlog
			// showed up to a poll interval after the stream opened.
			if !flush() {
				return
			}
		}
	}
}

// streamStillAllowed re-checks, at each heartbeat of a live tail, what let
// it open: its key is still active (not revoked, not expired), and the UI's
// tail still has its session (not expired, not signed out). Without it a
// tail opened before a revocation would go on showing new events. A store
// that cannot answer does not end the stream: the next heartbeat asks again.
func (s *Server) streamStillAllowed(r *http.Request, k *Key, kind streamKind) bool {
	ctx := r.Context()
	cur, err := s.auth.keyByID(ctx, k.ID)
	switch {
	case errors.Is(err, ErrKeyNotFound):
		return false
	case err != nil:
		return true
	case !cur.Active(s.cfg.Now()):
		return false
	}
	if kind != kindUITail {
		return true
	}
	c, err := r.Cookie(trailui.SessionCookie)
	if err != nil {
		return false
	}
	_, err = uiSessions{s.auth}.Open(ctx, c.Value)
	return !errors.Is(err, trailui.ErrNoSession)
}

package trailserver

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

// Live tail design: an in-process broadcast. Ingest publishes each committed
// batch to the hub after the store's commit, and every open GET /v1/tail
// stream whose filter matches receives it. On connect a stream may first
// catch up from the store (backlog=N: the newest N matching events, oldest
// first); it subscribes before that query, so nothing committed in between is
// missed, and drops live events the backlog already sent.
//
// What this does not see: events written to the store by another process
// (another replica, the library's RecordTx, triggers). Polling the store by
// OccurredAt would not fix that either — writers choose OccurredAt, so a
// late event can sort before a high-water mark — and a recorded_at-ordered
// feed is not part of the store contract yet.
type hub struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
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

func newHub() *hub { return &hub{subs: map[*subscriber]struct{}{}} }

// subscribe returns a subscriber, or nil when the hub is closed.
func (h *hub) subscribe(match func(*trail.Event) bool, buf int) *subscriber {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	s := &subscriber{match: match, ch: make(chan trail.Event, buf), lagged: make(chan struct{})}
	h.subs[s] = struct{}{}
	return s
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.ch)
	}
}

func (h *hub) publish(evs []trail.Event) {
	if len(evs) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		for i := range evs {
			if !s.match(&evs[i]) {
				continue
			}
			select {
			case s.ch <- evs[i]:
			default:
				s.once.Do(func() { close(s.lagged) })
			}
		}
	}
}

// close ends every stream and refuses new ones (at shutdown).
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
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
	prefix, isPrefix := q.ActionPrefix()
	words := strings.Fields(strings.ToLower(q.Text))
	return func(ev *trail.Event) bool {
		switch {
		case q.Tenant != "" && ev.Tenant != q.Tenant:
			return false
		case q.ActorType != "" && ev.Actor.Type != q.ActorType:
			return false
		case q.ActorID != "" && ev.Actor.ID != q.ActorID:
			return false
		case q.Action != "" && !isPrefix && ev.Action != q.Action:
			return false
		case isPrefix && !strings.HasPrefix(ev.Action, prefix):
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
	rc := http.NewResponseController(w)
	sub := s.hub.subscribe(matcher(q), s.cfg.TailBuffer)
	if sub == nil {
		writeProblem(w, r, problem(http.StatusServiceUnavailable, ProblemUnavailable, "", "the server is shutting down"))
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
	// A stream outlives the server's write timeout (and any read deadline).
	_ = rc.SetWriteDeadline(time.Time{})
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriter(w)
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
	flush := func() bool { return bw.Flush() == nil && rc.Flush() == nil }
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
			if !flush() {
				return
			}
			clear(sent) // the backlog overlap is only at the start
		}
	}
}

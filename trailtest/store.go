package trailtest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

// ErrTxDone is returned by the operations of a Tx that was already committed
// or rolled back, like sql.ErrTxDone.
var ErrTxDone = errors.New("trailtest: transaction already committed or rolled back")

// ErrClosed is returned by every operation of a closed Store.
var ErrClosed = errors.New("trailtest: store is closed")

// Store is an in-memory trail.TxStore. It keeps events in the order they were
// committed and answers queries like the real stores do: it passes the same
// conformance suite (trailstoretest). It is safe for concurrent use.
//
// Its transaction type is *Tx, from Begin: events appended with AppendTx are
// invisible until Commit, and gone after Rollback.
type Store struct {
	mu     sync.RWMutex
	events []stored // commit order
	byID   map[uuid.UUID]int
	closed bool
	now    func() time.Time
}

// stored is an event as the store keeps it: private copies, metadata as JSON
// (like a database column), so that callers cannot change stored events.
type stored struct {
	ev       trail.Event // Metadata nil
	metadata []byte
	words    []string // lower-cased words of the description, for Text
}

var _ trail.TxStore[*Tx] = (*Store)(nil)

// NewStore returns an empty store whose clock is time.Now.
func NewStore() *Store {
	return &Store{byID: map[uuid.UUID]int{}, now: time.Now}
}

// Tx is a transaction of a Store: the stand-in for *sql.Tx or pgx.Tx in
// tests of code that records with Client.RecordTx.
type Tx struct {
	s       *Store
	mu      sync.Mutex
	pending []stored
	ids     map[uuid.UUID]bool
	done    bool
}

// Begin starts a transaction.
func (s *Store) Begin() *Tx {
	return &Tx{s: s, ids: map[uuid.UUID]bool{}}
}

// Commit makes the transaction's events visible, atomically. An event whose
// ID another transaction committed in the meantime is dropped, as ON
// CONFLICT DO NOTHING would.
func (tx *Tx) Commit() error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.done {
		return ErrTxDone
	}
	tx.done = true
	s := tx.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	for _, st := range tx.pending {
		if _, dup := s.byID[st.ev.ID]; !dup {
			s.byID[st.ev.ID] = len(s.events)
			s.events = append(s.events, st)
		}
	}
	tx.pending = nil
	return nil
}

// Rollback discards the transaction's events.
func (tx *Tx) Rollback() error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.done {
		return ErrTxDone
	}
	tx.done = true
	tx.pending = nil
	return nil
}

// Append stores events atomically: all or none.
func (s *Store) Append(ctx context.Context, events []trail.Event) ([]trail.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("trailtest: append: %w", err)
	}
	prepared, err := s.prepare(events)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if err := s.checkDuplicates(events, nil); err != nil {
		return nil, err
	}
	res := make([]trail.Result, len(prepared))
	for i, st := range prepared {
		res[i].ID = st.ev.ID
		if _, dup := s.byID[st.ev.ID]; dup {
			res[i].Duplicate = true
			continue
		}
		s.byID[st.ev.ID] = len(s.events)
		s.events = append(s.events, st)
		res[i].RecordedAt = st.ev.RecordedAt
	}
	return res, nil
}

// AppendTx stores events inside tx: they exist if and only if tx commits.
func (s *Store) AppendTx(ctx context.Context, tx *Tx, events []trail.Event) ([]trail.Result, error) {
	if tx == nil {
		return nil, errors.New("trailtest: AppendTx: nil transaction")
	}
	if tx.s != s {
		return nil, errors.New("trailtest: AppendTx: transaction of another store")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("trailtest: append: %w", err)
	}
	prepared, err := s.prepare(events)
	if err != nil {
		return nil, err
	}
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.done {
		return nil, ErrTxDone
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	if err := s.checkDuplicates(events, tx); err != nil {
		return nil, err
	}
	res := make([]trail.Result, len(prepared))
	for i, st := range prepared {
		res[i].ID = st.ev.ID
		if _, dup := s.byID[st.ev.ID]; dup || tx.ids[st.ev.ID] {
			res[i].Duplicate = true
			continue
		}
		tx.ids[st.ev.ID] = true
		tx.pending = append(tx.pending, st)
		res[i].RecordedAt = st.ev.RecordedAt
	}
	return res, nil
}

// checkDuplicates applies trail.CheckDuplicates: an ID held (in the store,
// or in tx's pending events) or earlier in the batch must belong to the same
// event. The caller holds s.mu.
func (s *Store) checkDuplicates(events []trail.Event, tx *Tx) error {
	dup := make([]bool, len(events))
	seen := make(map[uuid.UUID]bool, len(events))
	for i := range events {
		id := events[i].ID
		_, held := s.byID[id]
		dup[i] = held || seen[id] || (tx != nil && tx.ids[id])
		seen[id] = true
	}
	return trail.CheckDuplicates(events, dup, func(ids []uuid.UUID) (map[uuid.UUID]trail.Event, error) {
		out := make(map[uuid.UUID]trail.Event, len(ids))
		for _, id := range ids {
			if j, ok := s.byID[id]; ok {
				out[id] = s.events[j].ev
				continue
			}
			if tx != nil {
				for _, st := range tx.pending {
					if st.ev.ID == id {
						out[id] = st.ev
					}
				}
			}
		}
		return out, nil
	})
}

// prepare checks events as the real stores do and makes the private copies
// to keep, with RecordedAt stamped.
func (s *Store) prepare(events []trail.Event) ([]stored, error) {
	now := s.now().UTC().Truncate(time.Microsecond)
	out := make([]stored, len(events))
	for i := range events {
		ev := &events[i]
		if err := trail.CheckStorable(ev); err != nil {
			return nil, fmt.Errorf("trailtest: append: event %d: %w", i, err)
		}
		st := stored{ev: copyEvent(*ev), words: words(ev.Description)}
		st.ev.Metadata = nil
		if len(ev.Metadata) > 0 {
			b, err := json.Marshal(ev.Metadata)
			if err != nil {
				return nil, fmt.Errorf("trailtest: append: event %d: metadata: %w", i, err)
			}
			st.metadata = b
		}
		// Microseconds in UTC, what every store keeps.
		st.ev.OccurredAt = time.UnixMicro(ev.OccurredAt.UnixMicro()).UTC()
		if ev.RecordedAt.IsZero() {
			st.ev.RecordedAt = now
		} else {
			st.ev.RecordedAt = time.UnixMicro(ev.RecordedAt.UnixMicro()).UTC()
		}
		out[i] = st
	}
	return out, nil
}

// event returns a private copy of a stored event.
func (st *stored) event() trail.Event {
	ev := copyEvent(st.ev)
	ev.Lookup = trail.Lookup{} // kept for queries, never returned, as in every store
	if st.metadata != nil {
		// The stored bytes came from a valid map: decoding cannot fail.
		ev.Metadata, _ = trail.DecodeMetadata(st.metadata)
	}
	return ev
}

// copyEvent copies ev deeply, except Metadata, which it shares.
func copyEvent(ev trail.Event) trail.Event {
	if ev.Actor.OnBehalfOf != nil {
		obo := *ev.Actor.OnBehalfOf
		ev.Actor.OnBehalfOf = &obo
	}
	if len(ev.Changes) == 0 {
		ev.Changes = nil
	} else {
		cs := make([]trail.Change, len(ev.Changes))
		for i, c := range ev.Changes {
			c.Old = bytes.Clone(c.Old)
			c.New = bytes.Clone(c.New)
			cs[i] = c
		}
		ev.Changes = cs
	}
	return ev
}

// Get returns the event with id, or an error matching trail.ErrNotFound.
func (s *Store) Get(ctx context.Context, id uuid.UUID) (trail.Event, error) {
	if err := ctx.Err(); err != nil {
		return trail.Event{}, fmt.Errorf("trailtest: get %s: %w", id, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return trail.Event{}, ErrClosed
	}
	i, ok := s.byID[id]
	if !ok {
		return trail.Event{}, fmt.Errorf("trailtest: get %s: %w", id, trail.ErrNotFound)
	}
	return s.events[i].event(), nil
}

// Query returns one page of the events matching q, newest first (by
// OccurredAt, then ID).
func (s *Store) Query(ctx context.Context, q trail.Query) (trail.Page, error) {
	if err := q.Validate(); err != nil {
		return trail.Page{}, err
	}
	if err := ctx.Err(); err != nil {
		return trail.Page{}, fmt.Errorf("trailtest: query: %w", err)
	}
	var after *trail.Cursor
	if q.Cursor != "" {
		c, err := trail.DecodeCursor(q.Cursor)
		if err != nil {
			return trail.Page{}, err
		}
		after = &c
	}
	var text []string
	if q.Text != "" {
		if text = words(q.Text); len(text) == 0 {
			return trail.Page{}, nil // no word to look for: nothing matches
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return trail.Page{}, ErrClosed
	}
	var hits []*stored
	for i := range s.events {
		st := &s.events[i]
		if matchQuery(&q, text, st) && (after == nil || older(&st.ev, after)) {
			hits = append(hits, st)
		}
	}
	slices.SortFunc(hits, func(a, b *stored) int { return compareNewestFirst(&a.ev, &b.ev) })
	limit := q.EffectiveLimit()
	var page trail.Page
	if len(hits) > limit {
		hits = hits[:limit]
		last := hits[limit-1].ev
		page.Next = trail.EncodeCursor(trail.Cursor{OccurredAt: last.OccurredAt, ID: last.ID})
	}
	page.Events = make([]trail.Event, len(hits))
	for i, st := range hits {
		page.Events[i] = st.event()
	}
	return page, nil
}

// compareNewestFirst orders events newest first: OccurredAt descending, then
// ID descending by its bytes.
func compareNewestFirst(a, b *trail.Event) int {
	if c := b.OccurredAt.Compare(a.OccurredAt); c != 0 {
		return c
	}
	return bytes.Compare(b.ID[:], a.ID[:])
}

// older reports whether ev comes after the cursor's position in the
// newest-first order.
func older(ev *trail.Event, c *trail.Cursor) bool {
	if c := ev.OccurredAt.Compare(c.OccurredAt); c != 0 {
		return c < 0
	}
	return bytes.Compare(ev.ID[:], c.ID[:]) < 0
}

func matchQuery(q *trail.Query, text []string, st *stored) bool {
	ev := &st.ev
	switch {
	case q.Tenant != "" && ev.Tenant != q.Tenant,
		q.ActorType != "" && ev.Actor.Type != q.ActorType,
		q.ActorID != "" && ev.Actor.ID != q.ActorID,
		q.ActorName != "" && ev.Actor.Name != q.ActorName,
		q.ActorEmail != "" && ev.Actor.Email != q.ActorEmail,
		!q.ActorNameDigest.IsZero() && ev.Lookup.ActorName != q.ActorNameDigest,
		!q.ActorEmailDigest.IsZero() && ev.Lookup.ActorEmail != q.ActorEmailDigest,
		!matchAction(q.Action, ev.Action),
		q.TargetType != "" && ev.Target.Type != q.TargetType,
		q.TargetID != "" && ev.Target.ID != q.TargetID,
		!q.Since.IsZero() && ev.OccurredAt.Before(q.Since),
		!q.Until.IsZero() && !ev.OccurredAt.Before(q.Until),
		q.Outcome != "" && ev.Outcome != q.Outcome,
		q.Field != "" && !changed(ev, q.Field),
		q.Metadata != "" && !metadataContains(st.metadata, q.Metadata):
		return false
	}
	for _, w := range text {
		if !slices.Contains(st.words, w) {
			return false
		}
	}
	return true
}

// matchAction matches an action filter (trail.ParseActionFilter; the query
// was validated, so it parses).
func matchAction(filter, action string) bool {
	if filter == "" {
		return true
	}
	f, _ := trail.ParseActionFilter(filter)
	return f.Match(action)
}

// metadataContains matches Query.Metadata on the stored metadata's JSON.
func metadataContains(stored []byte, text string) bool {
	m, err := trail.DecodeMetadata(stored)
	return err == nil && trail.MetadataContains(m, text)
}

func changed(ev *trail.Event, field string) bool {
	return slices.ContainsFunc(ev.Changes, func(c trail.Change) bool { return c.Field == field })
}

// words splits text into lower-cased runs of letters and digits, the words
// that full-text search matches.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// Counts returns the number of events per day (UTC, or q.Zone's) and
// action, ordered by day then action.
func (s *Store) Counts(ctx context.Context, q trail.CountQuery) ([]trail.Count, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	vq := q.Query()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("trailtest: counts: %w", err)
	}
	var text []string
	if q.Text != "" {
		if text = words(q.Text); len(text) == 0 {
			return nil, nil // no word to look for: nothing matches
		}
	}
	type key struct {
		day    int64
		action string
	}
	s.mu.RLock()
	n := map[key]int64{}
	for i := range s.events {
		ev := &s.events[i].ev
		if matchQuery(&vq, text, &s.events[i]) {
			n[key{dayOf(ev.OccurredAt, q.Zone), ev.Action}]++
		}
	}
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	var out []trail.Count
	for k, c := range n {
		out = append(out, trail.Count{Day: time.Unix(k.day, 0).In(cmp.Or(q.Zone, time.UTC)), Action: k.action, N: c})
	}
	return trail.MergeCounts(out), nil
}

// dayOf is the Unix time of the midnight (in zone, UTC if nil) that
// starts t's day.
func dayOf(t time.Time, zone *time.Location) int64 {
	t = t.In(cmp.Or(zone, time.UTC))
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location()).Unix()
}

// Close makes every later operation fail with ErrClosed. Closing twice is
// harmless.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// Events returns every stored event, oldest first: in the order they were
// appended (committed, for AppendTx).
func (s *Store) Events() []trail.Event {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]trail.Event, len(s.events))
	for i := range s.events {
		out[i] = s.events[i].event()
	}
	return out
}

// Len returns the number of stored events.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.events)
}

// Reset deletes every stored event. Transactions begun before keep their
// pending events.
func (s *Store) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = nil
	s.byID = map[uuid.UUID]int{}
}

// Tenants returns up to limit tenants that have events, in name order,
// after the tenant after (trail.TenantLister).
func (s *Store) Tenants(ctx context.Context, after string, limit int) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	seen := map[string]bool{}
	var out []string
	for i := range s.events {
		if t := s.events[i].ev.Tenant; t > after && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out[:min(len(out), limit)], nil
}

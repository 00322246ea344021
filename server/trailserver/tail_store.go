package trailserver

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

// The live tail's store feed. While at least one tail stream is open, one
// poller per server reads the events other writers committed — services
// appending in their own transactions, triggers, other replicas, `trail
// record` — and publishes them to the hub, which drops the ones already sent
// (the in-process path publishes this server's own writes at once). A store
// opts in by implementing one of the two interfaces below; with neither, the
// tail shows this server's writes only.

// SeqTailer is implemented by stores whose writes are serialized and
// numbered, so that the number orders events by commit (trailsqlite: the
// rowid). The number is then an exact cursor.
type SeqTailer interface {
	// TailHead returns the number and ID of the newest event (0 and
	// uuid.Nil in an empty store).
	TailHead(ctx context.Context) (int64, uuid.UUID, error)
	// TailAfter returns up to limit events numbered above after, in order,
	// and the number of the last one (after when there is none).
	TailAfter(ctx context.Context, after int64, limit int) ([]trail.Event, int64, error)
}

// RecordedTailer is implemented by stores whose transactions commit
// concurrently (trailpgx). recorded_at is stamped before commit, so a long
// transaction can commit an event behind newer ones: the poller re-reads a
// lookback window and remembers the IDs it has sent within it.
type RecordedTailer interface {
	// TailRecorded returns the events recorded at or after since for which
	// seen reports false, in (recorded_at, id) order.
	TailRecorded(ctx context.Context, since time.Time, seen func(id uuid.UUID, recordedAt time.Time) bool) ([]trail.Event, error)
}

// Tail feed defaults.
const (
	DefaultTailPoll     = 500 * time.Millisecond
	DefaultTailLookback = 10 * time.Second
)

// tailPage is how many events a sequence poll reads at a time.
const tailPage = trail.MaxLimit

// feed is one poller's state. A fresh one is made, and primed, whenever the
// first stream opens after none was open: what it knows is only valid while
// it keeps polling.
type feed interface {
	// prime positions the feed at the store's end: what is committed now is
	// not new. It marks seen what the hub must not send again.
	prime(ctx context.Context, mark func(ev seenEntry)) error
	// poll publishes what was committed since the last poll, then reports
	// which entries of the hub's sent set can be forgotten because no later
	// poll can read them again.
	poll(ctx context.Context, h *hub) (stale func(seenEntry) bool, err error)
}

// seenEntry is what the hub remembers about an event it sent.
type seenEntry struct {
	id       uuid.UUID
	recorded time.Time // the event's RecordedAt
	added    time.Time // when the hub saw it (monotonic)
}

// newFeed returns the factory of store feeds for st, or nil when st offers
// none or polling is off.
func newFeed(st trail.Store, cfg *Config, m *metrics) func() feed {
	if cfg.TailPoll < 0 {
		return nil
	}
	switch t := st.(type) {
	case StreamTailer: // tail_stream.go
		return func() feed { return &streamFeed{st: t} }
	case SeqTailer:
		return func() feed { return &seqFeed{st: t, m: m} }
	case RecordedTailer:
		return func() feed { return &recordedFeed{st: t, lookback: cfg.TailLookback, m: m} }
	}
	return nil
}

// seqFeed follows an exact commit-ordered number.
type seqFeed struct {
	st  SeqTailer
	m   *metrics
	pos int64
	id  uuid.UUID // the event at pos, to notice a reused number
}

func (f *seqFeed) prime(ctx context.Context, _ func(seenEntry)) error {
	var err error
	f.pos, f.id, err = f.st.TailHead(ctx)
	return err
}

func (f *seqFeed) poll(ctx context.Context, h *hub) (func(seenEntry) bool, error) {
	start := time.Now()
	for {
		evs, last, err := f.st.TailAfter(ctx, f.pos, tailPage)
		if err != nil {
			return nil, err
		}
		if len(evs) == 0 {
			break
		}
		h.publishStored(evs)
		f.pos, f.id = last, evs[len(evs)-1].ID
		if len(evs) < tailPage {
			// Caught up: whatever the hub saw before start was committed
			// before this read began, so this read (or an earlier one)
			// returned it, and no later read will.
			return func(e seenEntry) bool { return e.added.Before(start) }, nil
		}
	}
	// Nothing new. SQLite reuses the number of a deleted newest row: if
	// retention removed the event at the cursor, new rows may be numbered
	// at or below it. Resume from the head; rows appended between the purge
	// and now (at most one poll interval's) are not shown.
	head, id, err := f.st.TailHead(ctx)
	if err != nil {
		return nil, err
	}
	if head < f.pos || (head == f.pos && id != f.id) {
		f.m.tailResets.Add(1)
		h.log.Warn("trailserver: tail: the store's newest events were removed; resuming from the new end", "was", f.pos, "now", head)
		f.pos, f.id = head, id
	}
	return func(e seenEntry) bool { return e.added.Before(start) }, nil
}

// recordedFeed re-reads the last lookback of recorded_at on every poll.
// An event is shown once: the hub remembers every ID it sent until its
// recorded_at leaves the window. An event committed more than lookback after
// its recorded_at (a transaction open longer than that, or a writer whose
// clock is behind the server's by more) is not shown live.
type recordedFeed struct {
	st       RecordedTailer
	lookback time.Duration
	m        *metrics
}

func (f *recordedFeed) prime(ctx context.Context, mark func(seenEntry)) error {
	now := time.Now()
	_, err := f.st.TailRecorded(ctx, now.Add(-f.lookback), func(id uuid.UUID, rec time.Time) bool {
		mark(seenEntry{id: id, recorded: rec, added: now})
		return true
	})
	return err
}

func (f *recordedFeed) poll(ctx context.Context, h *hub) (func(seenEntry) bool, error) {
	since := time.Now().Add(-f.lookback)
	evs, err := f.st.TailRecorded(ctx, since, h.seen)
	if err != nil {
		return nil, err
	}
	h.publishStored(evs)
	// Later polls start at or after since: older entries cannot come back.
	return func(e seenEntry) bool { return e.recorded.Before(since) }, nil
}

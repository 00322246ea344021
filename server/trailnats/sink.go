package trailnats

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/trailhq/trail"
)

// SinkConfig configures a Sink. Every sink of a deployment uses the same
// Config, Batch, AckWait and PinnedTTL (they are the consumers' settings).
type SinkConfig struct {
	Config
	// Batch is the most events one store write takes, and each partition's
	// MaxAckPending. Default 500.
	Batch int
	// AckWait is how long a fetched batch stays with its sink without an
	// acknowledgement or a progress signal before JetStream redelivers it.
	// A sink sends progress signals while it stores a batch (retries
	// included). Default 10 s.
	AckWait time.Duration
	// PinnedTTL is how long a partition stays pinned to a sink that stopped
	// pulling before another sink takes it; a sink storing a batch keeps
	// its pin with pulls that cannot deliver. It must exceed AckWait, so
	// that a dead sink's batch is redelivered before the partition moves
	// and comes first to the next sink (raised to 1.5 × AckWait when not).
	// Default 15 s.
	PinnedTTL time.Duration
	// MaxWait is how long one pull waits for a batch to fill. Default 200 ms.
	MaxWait time.Duration
	// Rebalance is how often a sink compares the partitions pinned to it
	// with its fair share and hands the excess back. Default 5 s.
	Rebalance time.Duration
	// Logger receives store failures and conflicts. Default: discard.
	Logger *slog.Logger
}

// Consumer names.
const (
	ConsumerPrefix = "trail-sink-"
	PriorityGroup  = "sinks"
)

func (c SinkConfig) withDefaults() SinkConfig {
	c.Config = c.Config.withDefaults()
	if c.Batch <= 0 {
		c.Batch = 500
	}
	if c.AckWait <= 0 {
		c.AckWait = 10 * time.Second
	}
	if c.PinnedTTL <= c.AckWait {
		c.PinnedTTL = max(c.PinnedTTL, c.AckWait+c.AckWait/2)
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 200 * time.Millisecond
	}
	if c.Rebalance <= 0 {
		c.Rebalance = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// SinkStats counts what a Sink did.
type SinkStats struct {
	Batches    uint64 // store writes committed
	Events     uint64 // events read from the stream and committed
	Stored     uint64 // of those, new in the store
	Duplicates uint64 // of those, already stored (a redelivery or a retry)
	Conflicts  uint64 // refused for an ID held by another event, put on the conflict subject
	Undecoded  uint64 // messages that were not an event, put on the conflict subject
	Retries    uint64 // failed store writes retried
	HandedBack uint64 // fetched events handed back because older ones of their partition were still out
	Released   uint64 // partitions unpinned for another sink, this sink holding more than its share
	Held       int    // partitions pinned to this sink at the last rebalance check
}

// Sink moves events from the stream into a store. Run any number of them,
// in any number of processes: each partition is worked by one at a time.
type Sink struct {
	js    jetstream.JetStream
	store trail.Store
	cfg   SinkConfig

	batches, events, stored, dups, conflicts, undecoded, retries, handedBack, released atomic.Uint64
	held                                                                               atomic.Int64
}

// part is what a sink knows of one partition's consumer.
type part struct {
	cons    jetstream.Consumer
	stream  jetstream.Stream       // for Unpin
	pin     atomic.Pointer[string] // the Nats-Pin-Id of the last batch fetched
	pulls   atomic.Int64           // pull requests of this sink outstanding on it
	release atomic.Bool            // hand the partition back at the next batch boundary
}

// fetch pulls at most n messages (of at most maxBytes when > 0), counting
// the pull request while it is outstanding.
func (s *Sink) fetch(pt *part, n, maxBytes int, wait time.Duration) ([]jetstream.Msg, error) {
	opts := []jetstream.FetchOpt{jetstream.FetchMaxWait(wait), jetstream.FetchPriorityGroup(PriorityGroup)}
	if maxBytes > 0 {
		opts = append(opts, jetstream.FetchMaxBytes(maxBytes))
	}
	pt.pulls.Add(1)
	defer pt.pulls.Add(-1)
	b, err := pt.cons.Fetch(n, opts...)
	if err != nil {
		return nil, err
	}
	var msgs []jetstream.Msg
	for m := range b.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) > 0 {
		if pin := msgs[0].Headers().Get("Nats-Pin-Id"); pin != "" {
			pt.pin.Store(&pin)
		}
	}
	return msgs, b.Error()
}

// NewSink returns a Sink writing to store.
func NewSink(js jetstream.JetStream, store trail.Store, cfg SinkConfig) *Sink {
	return &Sink{js: js, store: store, cfg: cfg.withDefaults()}
}

// Stats returns the counts so far.
func (s *Sink) Stats() SinkStats {
	return SinkStats{Batches: s.batches.Load(), Events: s.events.Load(), Stored: s.stored.Load(),
		Duplicates: s.dups.Load(), Conflicts: s.conflicts.Load(), Undecoded: s.undecoded.Load(), Retries: s.retries.Load(), HandedBack: s.handedBack.Load(),
		Released: s.released.Load(), Held: int(s.held.Load())}
}

// ConsumerConfig is partition p's durable consumer: pinned to one sink,
// one batch unacknowledged at a time.
func ConsumerConfig(cfg SinkConfig, p int) jetstream.ConsumerConfig {
	cfg = cfg.withDefaults()
	return jetstream.ConsumerConfig{
		Durable:        ConsumerPrefix + strconv.Itoa(p),
		FilterSubject:  subject(&cfg.Config, p),
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckAllPolicy,
		AckWait:        cfg.AckWait,
		MaxAckPending:  cfg.Batch,
		MaxDeliver:     -1,
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PinnedTTL:      cfg.PinnedTTL,
		PriorityGroups: []string{PriorityGroup},
	}
}

// Run works every partition until ctx ends; it returns nil then. It returns
// an error only when the consumers cannot be made at the start.
func (s *Sink) Run(ctx context.Context) error {
	parts := make([]*part, s.cfg.Partitions)
	for p := range parts {
		var cons jetstream.Consumer
		var err error
		for {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			cons, err = s.js.CreateOrUpdateConsumer(cctx, s.cfg.Stream, ConsumerConfig(s.cfg, p))
			cancel()
			if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
				break
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("%w: consumer for partition %d: %w", ErrUnavailable, p, err)
		}
		parts[p] = &part{cons: cons}
	}
	var st jetstream.Stream
	for {
		var err error
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err = s.js.Stream(sctx, s.cfg.Stream)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: stream %s: %w", ErrUnavailable, s.cfg.Stream, err)
		}
	}
	for _, pt := range parts {
		pt.stream = st
	}
	// Partitions go to the first sink that pulls them: sinks started together
	// pull in different orders, so that they split the partitions between
	// them; a sink started later gets its share from rebalance.
	var wg sync.WaitGroup
	for _, p := range rand.Perm(len(parts)) {
		wg.Go(func() { s.work(ctx, p, parts[p]) })
	}
	wg.Go(func() { s.rebalance(ctx, parts) })
	wg.Wait()
	return nil
}

// work fetches, stores and acknowledges one partition's batches, one at a time.
func (s *Sink) work(ctx context.Context, p int, pt *part) {
	backoff := newBackoff()
	for ctx.Err() == nil {
		if pt.release.Load() {
			s.handBack(ctx, p, pt) // between batches: nothing of p is out with this sink
			continue
		}
		msgs, err := s.fetch(pt, s.cfg.Batch, 0, s.cfg.MaxWait)
		if len(msgs) == 0 {
			if err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
				backoff.wait(ctx)
			}
			continue
		}
		backoff.reset()
		msgs, ok := s.inOrder(ctx, pt.cons, msgs)
		if !ok {
			backoff.wait(ctx) // older events are still out with another sink, or coming back
			continue
		}
		if !s.commit(ctx, p, pt, msgs) {
			return // ctx ended: the batch is redelivered to whichever sink is pinned next
		}
	}
}

// rebalance hands partitions back while this sink holds more than its fair
// share, ceil(partitions / sinks), so that a sink started later gets work
// without waiting for another to die. JetStream tells both numbers: a
// partition's consumer info names the pinned client (this sink's when it
// is the Nats-Pin-Id of its last batch), and every sink keeps a pull
// request waiting on every partition, so the requests waiting on one this
// sink holds, less its own, are the other sinks. Those are counted low
// rather than high (the fewest over the partitions held), so that a sink
// never hands back what it should keep. Handing back is JetStream's Unpin,
// done by the partition's own worker between batches (see handBack).
func (s *Sink) rebalance(ctx context.Context, parts []*part) {
	t := time.NewTicker(s.cfg.Rebalance)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var held []int
		others := -1
		for p, pt := range parts {
			before := pt.pulls.Load()
			ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
			info, err := pt.cons.Info(ictx)
			cancel()
			own := max(before, pt.pulls.Load()) // a pull of ours the server may have counted
			mine := pt.pin.Load()
			if err != nil || mine == nil || pinnedClient(info) != *mine || pt.release.Load() {
				continue
			}
			held = append(held, p)
			if w := info.NumWaiting - int(own); others < 0 || w < others {
				others = w
			}
		}
		s.held.Store(int64(len(held)))
		if others <= 0 {
			continue
		}
		fair := (len(parts) + others) / (others + 1) // ceil(partitions / sinks)
		rand.Shuffle(len(held), func(i, j int) { held[i], held[j] = held[j], held[i] })
		for _, p := range held[min(fair, len(held)):] {
			parts[p].release.Store(true)
		}
	}
}

// pinnedClient is the pin ID of the sinks' priority group, "" when none.
func pinnedClient(info *jetstream.ConsumerInfo) string {
	for _, g := range info.PriorityGroups {
		if g.Group == PriorityGroup {
			return g.PinnedClientID
		}
	}
	return ""
}

// handBack unpins partition p, still pinned to this sink, for another sink,
// and pulls nothing of it until another sink holds it or PinnedTTL has
// passed (no other sink took it: none is waiting, or nothing arrived to
// pin). It runs between batches, when no message of p is out with this
// sink, so the next sink starts where this one stopped; the order checks
// (inOrder) hold during the move as after any fail-over.
func (s *Sink) handBack(ctx context.Context, p int, pt *part) {
	defer pt.release.Store(false)
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := pt.cons.Info(ictx)
	mine := pt.pin.Load()
	if err != nil || mine == nil || pinnedClient(info) != *mine {
		return // no longer ours: nothing to hand back
	}
	if err := pt.stream.UnpinConsumer(ictx, ConsumerPrefix+strconv.Itoa(p), PriorityGroup); err != nil {
		s.cfg.Logger.Warn("trailnats: sink: handing a partition back failed", "partition", p, "err", err)
		return
	}
	s.released.Add(1)
	s.cfg.Logger.Info("trailnats: sink: partition handed back to balance sinks", "partition", p)
	deadline := time.Now().Add(s.cfg.PinnedTTL)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := pt.cons.Info(ictx)
		cancel()
		if err == nil {
			if pin := pinnedClient(info); pin != "" && pin != *mine {
				return
			}
		}
		sleep(ctx, s.cfg.MaxWait) // polling the consumer's state
	}
}

// inOrder sorts a fetched batch by stream sequence and reports whether it
// may be stored now: only if no other message of the partition is
// unacknowledged. A redelivered batch may come out of order, and after the
// pin moved (a sink died) older messages may still be out with the dead
// sink while newer ones arrive here; storing these first would break the
// tenant's order. Such a batch is handed back (Nak), so that it comes
// again, with the older ones, once they are redelivered.
func (s *Sink) inOrder(ctx context.Context, cons jetstream.Consumer, msgs []jetstream.Msg) ([]jetstream.Msg, bool) {
	seq := func(m jetstream.Msg) uint64 {
		md, err := m.Metadata()
		if err != nil {
			return 0
		}
		return md.Sequence.Stream
	}
	slices.SortFunc(msgs, func(a, b jetstream.Msg) int { return cmp.Compare(seq(a), seq(b)) })
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	info, err := cons.Info(ictx)
	cancel()
	if err == nil && info.NumAckPending == len(msgs) {
		return msgs, true
	}
	for _, m := range msgs {
		m.Nak()
	}
	if err == nil {
		s.handedBack.Add(uint64(len(msgs)))
	}
	return nil, false
}

// commit stores msgs' events, retrying until the store takes them, then
// acknowledges the batch. It reports false if ctx ended first.
func (s *Sink) commit(ctx context.Context, p int, pt *part, msgs []jetstream.Msg) bool {
	defer s.hold(pt, msgs[len(msgs)-1])()
	events := make([]trail.Event, 0, len(msgs))
	for _, m := range msgs {
		ev, err := decodeEvent(m.Data())
		if err != nil {
			if !s.setAside(ctx, p, m.Data(), "undecodable: "+err.Error()) {
				return false
			}
			s.undecoded.Add(1)
			continue
		}
		ev.Lookup = lookupOf(m.Headers())
		events = append(events, ev)
	}
	last := msgs[len(msgs)-1]
	backoff := newBackoff()
	for len(events) > 0 {
		results, err := s.store.Append(ctx, events)
		if err == nil {
			s.batches.Add(1)
			s.events.Add(uint64(len(events)))
			for _, r := range results {
				if r.Duplicate {
					s.dups.Add(1)
				} else {
					s.stored.Add(1)
				}
			}
			break
		}
		if ctx.Err() != nil {
			return false
		}
		var ce *trail.IDConflictError
		if errors.As(err, &ce) && ce.Index >= 0 && ce.Index < len(events) {
			data, _ := json.Marshal(&events[ce.Index])
			if !s.setAside(ctx, p, data, err.Error()) {
				return false
			}
			s.conflicts.Add(1)
			s.cfg.Logger.Warn("trailnats: sink: event refused, put on the conflict subject", "partition", p, "id", ce.ID, "err", err)
			events = append(events[:ce.Index], events[ce.Index+1:]...)
			continue
		}
		s.retries.Add(1)
		s.cfg.Logger.Error("trailnats: sink: storing a batch failed; retrying", "partition", p, "events", len(events), "err", err)
		backoff.wait(ctx)
	}
	for ctx.Err() == nil {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := last.DoubleAck(actx) // AckAll: the last acknowledges the batch
		cancel()
		if err == nil {
			return true
		}
		// Not acknowledged: the batch comes back and the store drops it as
		// duplicates; keep trying so that it need not.
		backoff.wait(ctx)
	}
	return false
}

// hold keeps a fetched batch with this sink until the returned stop is
// called: progress signals so that it is not redelivered, and pulls that
// cannot deliver (at most one byte) so that the partition stays pinned
// here. Were the pin to move while this sink holds a partial batch, the
// next sink would get newer events and could commit them first. If this
// process dies or loses NATS, both stop: AckWait (shorter than PinnedTTL)
// expires first, and the batch goes, before anything newer, to the next
// sink pinned.
func (s *Sink) hold(pt *part, last jetstream.Msg) (stop func()) {
	every := min(s.cfg.AckWait, s.cfg.PinnedTTL) / 3
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			last.InProgress()
			s.fetch(pt, 1, 1, every) // none fits in one byte
		}
	}()
	return func() { close(done) }
}

// ConflictSubject is where a sink puts what the store refuses for good (an
// ID held by another event) or cannot decode, with the reason in the
// Trail-Reason header; it is in the stream, read by no sink.
func ConflictSubject(cfg Config, p int) string {
	cfg = cfg.withDefaults()
	return cfg.Subject + ".conflict." + strconv.Itoa(p)
}

func (s *Sink) setAside(ctx context.Context, p int, data []byte, reason string) bool {
	backoff := newBackoff()
	for ctx.Err() == nil {
		msg := &nats.Msg{Subject: ConflictSubject(s.cfg.Config, p), Data: data, Header: nats.Header{}}
		msg.Header.Set("Trail-Reason", reason)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := s.js.PublishMsg(pctx, msg)
		cancel()
		if err == nil {
			return true
		}
		backoff.wait(ctx)
	}
	return false
}

// backoff doubles from 50 ms to 2 s.
type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{d: 50 * time.Millisecond} }

func (b *backoff) reset() { b.d = 50 * time.Millisecond }

func (b *backoff) wait(ctx context.Context) {
	sleep(ctx, b.d)
	b.d = min(2*b.d, 2*time.Second)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

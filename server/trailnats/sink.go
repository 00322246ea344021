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
}

// Sink moves events from the stream into a store. Run any number of them,
// in any number of processes: each partition is worked by one at a time.
type Sink struct {
	js    jetstream.JetStream
	store trail.Store
	cfg   SinkConfig

	batches, events, stored, dups, conflicts, undecoded, retries, handedBack atomic.Uint64
}

// NewSink returns a Sink writing to store.
func NewSink(js jetstream.JetStream, store trail.Store, cfg SinkConfig) *Sink {
	return &Sink{js: js, store: store, cfg: cfg.withDefaults()}
}

// Stats returns the counts so far.
func (s *Sink) Stats() SinkStats {
	return SinkStats{Batches: s.batches.Load(), Events: s.events.Load(), Stored: s.stored.Load(),
		Duplicates: s.dups.Load(), Conflicts: s.conflicts.Load(), Undecoded: s.undecoded.Load(), Retries: s.retries.Load(), HandedBack: s.handedBack.Load()}
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
	cons := make([]jetstream.Consumer, s.cfg.Partitions)
	for p := range cons {
		var err error
		for {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			cons[p], err = s.js.CreateOrUpdateConsumer(cctx, s.cfg.Stream, ConsumerConfig(s.cfg, p))
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
	}
	// Partitions go to the first sink that pulls them: sinks started together
	// pull in different orders, so that they split the partitions between them.
	var wg sync.WaitGroup
	for _, p := range rand.Perm(len(cons)) {
		wg.Go(func() { s.work(ctx, p, cons[p]) })
	}
	wg.Wait()
	return nil
}

// work fetches, stores and acknowledges one partition's batches, one at a time.
func (s *Sink) work(ctx context.Context, p int, cons jetstream.Consumer) {
	backoff := newBackoff()
	for ctx.Err() == nil {
		b, err := cons.Fetch(s.cfg.Batch, jetstream.FetchMaxWait(s.cfg.MaxWait), jetstream.FetchPriorityGroup(PriorityGroup))
		if err != nil {
			backoff.wait(ctx)
			continue
		}
		var msgs []jetstream.Msg
		for m := range b.Messages() {
			msgs = append(msgs, m)
		}
		if len(msgs) == 0 {
			if b.Error() != nil && !errors.Is(b.Error(), nats.ErrTimeout) && !errors.Is(b.Error(), jetstream.ErrNoMessages) {
				backoff.wait(ctx)
			}
			continue
		}
		backoff.reset()
		msgs, ok := s.inOrder(ctx, cons, msgs)
		if !ok {
			backoff.wait(ctx) // older events are still out with another sink, or coming back
			continue
		}
		if !s.commit(ctx, p, cons, msgs) {
			return // ctx ended: the batch is redelivered to whichever sink is pinned next
		}
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
func (s *Sink) commit(ctx context.Context, p int, cons jetstream.Consumer, msgs []jetstream.Msg) bool {
	defer s.hold(cons, msgs[len(msgs)-1])()
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
func (s *Sink) hold(cons jetstream.Consumer, last jetstream.Msg) (stop func()) {
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
			if b, err := cons.Fetch(1, jetstream.FetchMaxBytes(1), jetstream.FetchMaxWait(every), jetstream.FetchPriorityGroup(PriorityGroup)); err == nil {
				for range b.Messages() { // none fits in one byte
				}
			}
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
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	b.d = min(2*b.d, 2*time.Second)
}

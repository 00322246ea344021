package trailnats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
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
	// A sink retrying a failing store sends progress signals. Default 30 s.
	AckWait time.Duration
	// PinnedTTL is how long a partition stays pinned to a sink that stopped
	// pulling before another sink takes it. Default 5 s.
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
		c.AckWait = 30 * time.Second
	}
	if c.PinnedTTL <= 0 {
		c.PinnedTTL = 5 * time.Second
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
}

// Sink moves events from the stream into a store. Run any number of them,
// in any number of processes: each partition is worked by one at a time.
type Sink struct {
	js    jetstream.JetStream
	store trail.Store
	cfg   SinkConfig

	batches, events, stored, dups, conflicts, undecoded, retries atomic.Uint64
}

// NewSink returns a Sink writing to store.
func NewSink(js jetstream.JetStream, store trail.Store, cfg SinkConfig) *Sink {
	return &Sink{js: js, store: store, cfg: cfg.withDefaults()}
}

// Stats returns the counts so far.
func (s *Sink) Stats() SinkStats {
	return SinkStats{Batches: s.batches.Load(), Events: s.events.Load(), Stored: s.stored.Load(),
		Duplicates: s.dups.Load(), Conflicts: s.conflicts.Load(), Undecoded: s.undecoded.Load(), Retries: s.retries.Load()}
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
		if !s.commit(ctx, p, msgs) {
			return // ctx ended: the batch is redelivered to whichever sink is pinned next
		}
	}
}

// commit stores msgs' events, retrying until the store takes them, then
// acknowledges the batch. It reports false if ctx ended first.
func (s *Sink) commit(ctx context.Context, p int, msgs []jetstream.Msg) bool {
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
	progress := time.Now()
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
			data, _ := jsonMarshal(&events[ce.Index])
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
		if time.Since(progress) > s.cfg.AckWait/3 {
			last.InProgress() // keep the batch: redelivery to another sink would only wait for the same store
			progress = time.Now()
		}
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

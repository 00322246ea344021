package trailnats

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/trailhq/trail"
)

// DefaultPublishTimeout bounds Publish when its context has no deadline.
const DefaultPublishTimeout = 10 * time.Second

// Publisher puts events on the stream. It is safe for concurrent use.
type Publisher struct {
	js  jetstream.JetStream
	cfg Config
}

// NewPublisher returns a Publisher for the stream Setup made with cfg.
func NewPublisher(js jetstream.JetStream, cfg Config) *Publisher {
	return &Publisher{js: js, cfg: cfg.withDefaults()}
}

// Publish puts normalized, valid events on their partitions and returns once
// JetStream has acknowledged every one (one result per event, in order;
// Duplicate when JetStream had the same message ID within its window). Any
// failure is an error matching ErrUnavailable: some events may be on the
// stream, and a retry of the same events is dropped as duplicates, by
// JetStream or by the store.
func (p *Publisher) Publish(ctx context.Context, events []trail.Event) ([]trail.Result, error) {
	if nc := p.js.Conn(); !nc.IsConnected() {
		// Disconnected: nothing published now could be acknowledged before
		// the reconnect; the client's retry is the faster way through.
		return nil, fmt.Errorf("%w: not connected to NATS (%s)", ErrUnavailable, nc.Status())
	}
	if _, ok := ctx.Deadline(); !ok {
		// An acknowledgement lost in a disconnect never arrives: never wait forever.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultPublishTimeout)
		defer cancel()
	}
	futures := make([]jetstream.PubAckFuture, len(events))
	for i := range events {
		ev := &events[i]
		if err := trail.CheckStorable(ev); err != nil {
			return nil, err
		}
		data, err := json.Marshal(ev)
		if err != nil {
			return nil, fmt.Errorf("trailnats: encoding event %d: %w", i, err)
		}
		msg := &nats.Msg{Subject: subject(&p.cfg, Partition(ev.Tenant, p.cfg.Partitions)), Data: data, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, MsgID(ev))
		f, err := p.js.PublishMsgAsync(msg)
		if err != nil {
			return nil, fmt.Errorf("%w: publishing event %d: %w", ErrUnavailable, i, err)
		}
		futures[i] = f
	}
	results := make([]trail.Result, len(events))
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			results[i] = trail.Result{ID: events[i].ID, RecordedAt: events[i].RecordedAt, Duplicate: ack.Duplicate}
			if ack.Duplicate {
				results[i].RecordedAt = time.Time{}
			}
		case err := <-f.Err():
			return nil, fmt.Errorf("%w: event %d: %w", ErrUnavailable, i, err)
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: waiting for acknowledgements: %w", ErrUnavailable, ctx.Err())
		}
	}
	return results, nil
}

// Store is a trail.Store whose Append goes through the stream and whose
// reads go to Read, the store the sinks write. trail serve --nats serves
// through it. Close does not close Read.
type Store struct {
	*Publisher
	Read trail.Store
}

// Append publishes events (see Publisher.Publish). An ID already held by
// another event is not known here: the sink refuses it and puts it on the
// conflict subject (Sink).
func (s *Store) Append(ctx context.Context, events []trail.Event) ([]trail.Result, error) {
	return s.Publish(ctx, events)
}

// Get reads Read.
func (s *Store) Get(ctx context.Context, id uuid.UUID) (trail.Event, error) {
	return s.Read.Get(ctx, id)
}

// Query reads Read.
func (s *Store) Query(ctx context.Context, q trail.Query) (trail.Page, error) {
	return s.Read.Query(ctx, q)
}

// Counts reads Read.
func (s *Store) Counts(ctx context.Context, q trail.CountQuery) ([]trail.Count, error) {
	return s.Read.Counts(ctx, q)
}

// Close does nothing: the caller owns Read and the connection.
func (s *Store) Close() error { return nil }

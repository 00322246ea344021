package trail

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Recorder records events. *Client implements it over a store; trailtest's
// in-memory recorder and trailclient's HTTP client implement it too, so that
// services depend on the interface and tests swap the implementation.
type Recorder interface {
	Record(ctx context.Context, ev Event) (Result, error)
}

// Config configures a Client. A nil *Config means every default.
type Config struct {
	// Source is written into events that name no source and whose context
	// carries none, e.g. the service's name. Default: empty.
	Source string
	// Now is the clock that stamps RecordedAt. Default: time.Now. Tests set it
	// to get deterministic events.
	Now func() time.Time
	// Transform, when set, rewrites every event after it is normalized and
	// before it is validated and stored. The privacy layer plugs in here to
	// redact, hash and encrypt fields before they leave the process.
	// Default: none.
	Transform Transformer
}

// Transformer rewrites an event in place before it is stored. It runs once per
// event, before the store sees it, and the store keeps exactly what it was
// given: integrity proofs hash that stored form, so a transform may use random
// nonces. Applying it to an already transformed event must change nothing, and
// it must be safe for concurrent use.
type Transformer interface {
	Transform(ctx context.Context, ev *Event) error
}

// Client records events into a store, filling them from the context,
// normalizing and validating them first. It is safe for concurrent use.
//
// TTx is the transaction type of the store's driver, so that RecordTx takes
// the caller's own transaction with its real type (River's pattern):
// *sql.Tx for the SQLite and database/sql stores, pgx.Tx for trailpgx.
type Client[TTx any] struct {
	store TxStore[TTx]
	cfg   Config
}

// NewClient returns a client writing to store.
func NewClient[TTx any](store TxStore[TTx], cfg *Config) (*Client[TTx], error) {
	if store == nil {
		return nil, errors.New("trail: NewClient: store is nil")
	}
	c := &Client[TTx]{store: store}
	if cfg != nil {
		c.cfg = *cfg
	}
	if c.cfg.Now == nil {
		c.cfg.Now = time.Now
	}
	return c, nil
}

// Store returns the client's store, for queries.
func (c *Client[TTx]) Store() TxStore[TTx] { return c.store }

// Prepare fills ev from ctx, stamps RecordedAt, normalizes and validates it:
// everything Record does short of writing. The returned event is exactly what
// the store will keep.
func (c *Client[TTx]) Prepare(ctx context.Context, ev Event) (Event, error) {
	ev.FromContext(ctx)
	if ev.Source == "" {
		ev.Source = c.cfg.Source
	}
	// One clock reading for both times, so that an event recorded "now" never
	// shows recorded_at before occurred_at.
	now := c.cfg.Now()
	if ev.OccurredAt.IsZero() {
		ev.OccurredAt = now
	}
	ev.RecordedAt = now
	if err := ev.Normalize(); err != nil {
		return ev, err
	}
	if c.cfg.Transform != nil {
		if err := c.cfg.Transform.Transform(ctx, &ev); err != nil {
			return ev, fmt.Errorf("trail: transform: %w", err)
		}
	}
	if err := ev.Validate(); err != nil {
		return ev, err
	}
	return ev, nil
}

// Record stores one event in its own write. The event is durable when Record
// returns without error. Recording an ID that is already stored returns
// Result.Duplicate and no error.
func (c *Client[TTx]) Record(ctx context.Context, ev Event) (Result, error) {
	res, err := c.RecordMany(ctx, []Event{ev})
	if err != nil {
		return Result{}, err
	}
	return res[0], nil
}

// RecordTx stores one event inside the caller's transaction tx: it becomes
// visible if and only if tx commits.
func (c *Client[TTx]) RecordTx(ctx context.Context, tx TTx, ev Event) (Result, error) {
	res, err := c.RecordManyTx(ctx, tx, []Event{ev})
	if err != nil {
		return Result{}, err
	}
	return res[0], nil
}

// RecordMany stores events in one atomic write: all or none. A validation
// error names the index of the bad event and stores nothing.
func (c *Client[TTx]) RecordMany(ctx context.Context, events []Event) ([]Result, error) {
	prepared, err := c.prepareAll(ctx, events)
	if err != nil {
		return nil, err
	}
	return c.store.Append(ctx, prepared)
}

// RecordManyTx is RecordMany inside the caller's transaction.
func (c *Client[TTx]) RecordManyTx(ctx context.Context, tx TTx, events []Event) ([]Result, error) {
	prepared, err := c.prepareAll(ctx, events)
	if err != nil {
		return nil, err
	}
	return c.store.AppendTx(ctx, tx, prepared)
}

func (c *Client[TTx]) prepareAll(ctx context.Context, events []Event) ([]Event, error) {
	if len(events) == 0 {
		return nil, errors.New("trail: no events to record")
	}
	out := make([]Event, len(events))
	for i, ev := range events {
		p, err := c.Prepare(ctx, ev)
		if err != nil {
			if len(events) > 1 {
				return nil, fmt.Errorf("event %d: %w", i, err)
			}
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

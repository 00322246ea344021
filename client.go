package trail

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Recorder records events. *Client implements it over a store; trailtest's
// in-memory recorder and trailclient's HTTP client implement it too, so that
// services depend on the interface and tests swap the implementation.
type Recorder interface {
	Record(ctx context.Context, ev Event) (Result, error)
}

// TxRecorder records events inside the caller's transaction: the event
// exists if and only if tx commits. *Client implements it; so does trailtest's
// TxRecorder, which takes a real pgx.Tx or *sql.Tx, so that code written
// against TxRecorder is tested with real transactions, rollback included.
type TxRecorder[TTx any] interface {
	RecordTx(ctx context.Context, tx TTx, ev Event) (Result, error)
}

// Revealer turns a stored event back into its readable form, in place.
// *trailprivacy.Privacy implements it: a Client whose Transform is also a
// Revealer returns revealed events from Get, Query and History.
type Revealer interface {
	Reveal(ctx context.Context, ev *Event) error
}

// ErrNoPrivacy is returned by NewClient for a Config with neither a Transform
// nor Plaintext: such a client would store personal data as given.
var ErrNoPrivacy = errors.New("trail: NewClient: no privacy layer, so personal data (actor name, e-mail, IP, user agent) would be stored in plaintext: " +
	"open the store with trailpgx.NewClient, trailsql.NewClient or trailsqlite.NewClient (they encrypt it under TRAIL_MASTER_KEY or a key file), " +
	"set Config.Transform to a *trailprivacy.Privacy, or set Config.Plaintext to store it as given")

// Config configures a Client. A nil *Config means every default, and the
// default is safe: NewClient refuses to build a client that would store
// personal data in plaintext (ErrNoPrivacy) unless Transform or Plaintext is
// set.
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
	// Default: none, which NewClient accepts only with Plaintext.
	Transform Transformer
	// Plaintext lets a client without Transform store the personal fields
	// (the actor's name, e-mail, IP and user agent, the target's name) as
	// given, in plaintext. Secrets are still redacted by the default
	// deny-list (RedactSecrets) unless NoDefaultRedaction is also set.
	// Default: false. Ignored when Transform is set: the Transform then
	// decides.
	Plaintext bool
	// NoDefaultRedaction turns off the deny-list redaction (RedactSecrets)
	// that a Plaintext client applies to every event. Default: false.
	NoDefaultRedaction bool
	// Trace, when set, returns the trace and span IDs of the span active in
	// a context (e.g. trailotel.Trace for OpenTelemetry): an event that
	// names no trace ID takes both, so that it points at the span that
	// recorded it rather than only at the request's trace. Default: none,
	// the trace ID of the context's trail.Request (from the incoming
	// traceparent header).
	Trace func(ctx context.Context) (traceID, spanID string)
	// Close, when set, is called once by Client.Close after the store is
	// closed: the one-call setups (trailpgx.NewClient, …) release what they
	// opened besides the store here. Default: none.
	Close func() error
}

type txKey struct{}

// TxFrom returns the caller's transaction while RecordTx prepares events in
// it (nil otherwise), for a Transformer that must write in that
// transaction: on SQLite the transaction holds the only write lock, so the
// privacy layer creates a new subject's key in it (and the key is rolled
// back with the event).
func TxFrom(ctx context.Context) any { return ctx.Value(txKey{}) }

// Transformer rewrites an event in place before it is stored. It runs once per
// event, before the store sees it, and the store keeps exactly what it was
// given: integrity proofs hash that stored form, so a transform may use random
// nonces. Applying it to an already transformed event must change nothing, and
// it must be safe for concurrent use.
type Transformer interface {
	Transform(ctx context.Context, ev *Event) error
}

// BatchTransformer is a Transformer that can transform a batch's events
// with one write for the whole batch: the privacy layer (trailprivacy)
// creates a new subject's key when it first meets the subject, and writing
// each such key on its own — one commit, one fsync — cost more than the batch
// itself when a bulk load met thousands of new subjects. RunBatch drives it.
//
// Batch returns a context under which Transform defers those writes, and
// finish, which makes them, in one write, before the batch is stored. When
// another writer won a race the transforms depended on (a key for the same
// new subject stored first), finish returns ErrRetryBatch: transform the
// events again, from the events as given, under a new Batch.
type BatchTransformer interface {
	Transformer
	Batch(ctx context.Context) (bctx context.Context, finish func(ctx context.Context) error)
}

// ErrRetryBatch is returned by a BatchTransformer's finish when the batch
// must be transformed again (see BatchTransformer). Nothing of the batch was
// stored but what its next attempt will use.
var ErrRetryBatch = errors.New("trail: another writer won a race the batch's transform depended on: transform it again")

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
	if c.cfg.Transform == nil && !c.cfg.Plaintext {
		return nil, ErrNoPrivacy
	}
	if c.cfg.Now == nil {
		c.cfg.Now = time.Now
	}
	return c, nil
}

// Store returns the client's store. Reads through it return events in their
// stored form (encrypted fields as ciphertext); the client's own Get, Query
// and History reveal them.
func (c *Client[TTx]) Store() TxStore[TTx] { return c.store }

// Close closes the store, then calls Config.Close.
func (c *Client[TTx]) Close() error {
	err := c.store.Close()
	if c.cfg.Close != nil {
		err = errors.Join(err, c.cfg.Close())
	}
	return err
}

// Get returns the event with id, revealed (see Query).
func (c *Client[TTx]) Get(ctx context.Context, id uuid.UUID) (Event, error) {
	ev, err := c.store.Get(ctx, id)
	if err != nil {
		return ev, err
	}
	if err := c.reveal(ctx, &ev); err != nil {
		return ev, err
	}
	return ev, nil
}

// Query returns one page of the events matching q, newest first. When the
// client's Transform is a Revealer (a *trailprivacy.Privacy), every event is
// revealed: encrypted fields decrypted, an erased subject's fields read
// "[erased]". A value that cannot be revealed is an error naming the event;
// the page is not returned half readable.
func (c *Client[TTx]) Query(ctx context.Context, q Query) (Page, error) {
	p, err := c.store.Query(ctx, q)
	if err != nil {
		return p, err
	}
	for i := range p.Events {
		if err := c.reveal(ctx, &p.Events[i]); err != nil {
			return Page{}, err
		}
	}
	return p, nil
}

// History returns one page of an object's timeline in a tenant, newest
// first, revealed: every event whose target is typ:id. q filters further
// (Action, Since, Until, Field, Limit, Cursor); its Tenant and target are
// set from the arguments.
func (c *Client[TTx]) History(ctx context.Context, tenant, typ, id string, q Query) (Page, error) {
	if tenant == "" || typ == "" || id == "" {
		return Page{}, fmt.Errorf("%w: history needs a tenant, a target type and a target ID", ErrInvalidQuery)
	}
	q.Tenant, q.AllTenants, q.TargetType, q.TargetID = tenant, false, typ, id
	return c.Query(ctx, q)
}

func (c *Client[TTx]) reveal(ctx context.Context, ev *Event) error {
	r, ok := c.cfg.Transform.(Revealer)
	if !ok {
		return nil
	}
	if err := r.Reveal(ctx, ev); err != nil {
		return fmt.Errorf("trail: event %s: %w", ev.ID, err)
	}
	return nil
}

// Prepare fills ev from ctx, stamps RecordedAt, normalizes and validates it:
// everything Record does short of writing. The returned event is exactly what
// the store will keep.
//
// An event must name its tenant, in ctx (WithTenant) or in Event.Tenant,
// unless ctx is marked WithPlatform; a tenant that differs from the
// context's is an error (see Event.Fill).
func (c *Client[TTx]) Prepare(ctx context.Context, ev Event) (Event, error) {
	if c.cfg.Trace != nil && ev.TraceID == "" {
		ev.TraceID, ev.SpanID = c.cfg.Trace(ctx)
	}
	if err := ev.Fill(ctx); err != nil {
		return ev, err
	}
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
	switch {
	case c.cfg.Transform != nil:
		if err := c.cfg.Transform.Transform(ctx, &ev); err != nil {
			return ev, fmt.Errorf("trail: transform: %w", err)
		}
	case !c.cfg.NoDefaultRedaction:
		if err := RedactSecrets(&ev); err != nil {
			return ev, err
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
	prepared, err := c.PrepareMany(ctx, events)
	if err != nil {
		return nil, err
	}
	return c.store.Append(ctx, prepared)
}

// RecordManyTx is RecordMany inside the caller's transaction.
func (c *Client[TTx]) RecordManyTx(ctx context.Context, tx TTx, events []Event) ([]Result, error) {
	prepared, err := c.PrepareMany(context.WithValue(ctx, txKey{}, tx), events)
	if err != nil {
		return nil, err
	}
	return c.store.AppendTx(ctx, tx, prepared)
}

// PrepareMany is Prepare for a batch (what RecordMany stores): with a
// BatchTransformer (the privacy layer), the writes the transforms need are
// made once for the batch (RunBatch). An error names the index of the bad
// event. events are not modified.
func (c *Client[TTx]) PrepareMany(ctx context.Context, events []Event) ([]Event, error) {
	if len(events) == 0 {
		return nil, errors.New("trail: no events to record")
	}
	if len(events) == 1 {
		return c.prepareEach(ctx, events)
	}
	var out []Event
	err := RunBatch(ctx, c.cfg.Transform, func(ctx context.Context) (err error) {
		out, err = c.prepareEach(ctx, events)
		return err
	})
	return out, err
}

// RunBatch runs prepareAll, which prepares a batch's events with t under the
// context it is given, inside one batch of t when t is a BatchTransformer:
// the writes the transforms need are made once, after prepareAll, and the
// events may be stored once RunBatch returns nil. When another writer won a
// race the transforms depended on (ErrRetryBatch), prepareAll runs again and
// must start from the events as given; after three such races, without a
// batch. prepareAll's own error is returned as it is. Client.PrepareMany,
// the server's ingest and the CLI's record and import use it.
func RunBatch(ctx context.Context, t Transformer, prepareAll func(ctx context.Context) error) error {
	bt, ok := t.(BatchTransformer)
	if !ok {
		return prepareAll(ctx)
	}
	for range 3 {
		bctx, finish := bt.Batch(ctx)
		if err := prepareAll(bctx); err != nil {
			return err
		}
		err := finish(ctx)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrRetryBatch) {
			return fmt.Errorf("trail: transform: %w", err)
		}
	}
	return prepareAll(ctx)
}

func (c *Client[TTx]) prepareEach(ctx context.Context, events []Event) ([]Event, error) {
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

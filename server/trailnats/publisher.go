package trailnats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
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

	mu       sync.Mutex
	queue    []*queued // requests waiting for a batch
	flushers int       // goroutines sending batches from queue
	stream   jetstream.Stream
}

// queued is one request's chunk waiting to go in a shared atomic batch.
type queued struct {
	ctx  context.Context
	msgs []*nats.Msg
	done chan error // buffered
}

// NewPublisher returns a Publisher for the stream Setup made with cfg.
func NewPublisher(js jetstream.JetStream, cfg Config) *Publisher {
	return &Publisher{js: js, cfg: cfg.withDefaults()}
}

// Publish puts normalized, valid events on their partitions and returns once
// JetStream has acknowledged every one (one result per event, in order;
// Duplicate when JetStream had the event's ID within its window for the
// same event, trail.SameEvent). An ID JetStream had within its window for
// another event, of any tenant, is an *trail.IDConflictError (Index in
// events), as the store's Append returns it; the events of the request
// before it may be on the stream then (a retry without it reports them as
// duplicates). Any other failure is an error matching ErrUnavailable: some
// events may be on the stream, and a retry of the same events is dropped as
// duplicates, by JetStream or by the store.
//
// Order: the events go as JetStream atomic batches (the whole request, or
// MaxAtomicBatch events at a time, one after the other; a batch may span
// partitions), so a stream leader failing over mid-publish stores a batch
// whole or not at all, never its tail before its head, and a retry cannot
// put an event behind one that followed it. (One batch per request, not
// per partition: nats-server stages each batch of a file-stored R1 stream
// in a store of its own, a cost paid per batch.)
func (p *Publisher) Publish(ctx context.Context, events []trail.Event) ([]trail.Result, error) {
	nc := p.js.Conn()
	if !nc.IsConnected() {
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
	msgs := make([]*nats.Msg, len(events))
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
		setLookup(msg.Header, ev.Lookup)
		msgs[i] = msg
	}
	results := make([]trail.Result, len(events))
	for i := range events {
		results[i] = trail.Result{ID: events[i].ID, RecordedAt: events[i].RecordedAt}
	}
	for lo := 0; lo < len(msgs); lo += MaxAtomicBatch {
		dup := func(i int) { results[lo+i].Duplicate, results[lo+i].RecordedAt = true, time.Time{} }
		chunk := msgs[lo:min(lo+MaxAtomicBatch, len(msgs))]
		var err error
		if len(chunk) == 1 {
			err = p.oneByOne(ctx, chunk, dup) // one message is atomic by itself
		} else {
			err = p.grouped(ctx, chunk, dup)
		}
		if err != nil {
			if ce := (*trail.IDConflictError)(nil); errors.As(err, &ce) {
				ce.Index += lo
			}
			return nil, err
		}
	}
	return results, nil
}

// MaxFlushers is how many atomic batches of grouped requests one Publisher
// sends at once. Requests arriving meanwhile wait and go together in the
// next batch: nats-server's cost per atomic batch (at R1 it stages each
// batch in a file store of its own) is then shared by every request in it.
const MaxFlushers = 1

// grouped publishes msgs (one request's, at most MaxAtomicBatch) in an
// atomic batch shared with other requests waiting at the same time, each
// request's messages in order and together. The batch is stored whole or
// not at all, so every request in it keeps its order through a leader
// failover, as in a batch of its own; it is answered when the batch is.
func (p *Publisher) grouped(ctx context.Context, msgs []*nats.Msg, dup func(int)) error {
	q := &queued{ctx: ctx, msgs: msgs, done: make(chan error, 1)}
	p.mu.Lock()
	p.queue = append(p.queue, q)
	if p.flushers < MaxFlushers {
		p.flushers++
		go p.flush()
	}
	p.mu.Unlock()
	select {
	case err := <-q.done:
		if errors.Is(err, errHasDuplicate) {
			// Refused whole, nothing stored: tell retries from reuses event by event.
			return p.oneByOne(ctx, msgs, dup)
		}
		return err
	case <-ctx.Done():
		// The batch may still be stored: a retry is a duplicate.
		return fmt.Errorf("%w: publishing to %s: %w", ErrUnavailable, msgs[0].Subject, ctx.Err())
	}
}

// flush sends the queued requests as atomic batches of at most
// MaxAtomicBatch messages until none is left waiting.
func (p *Publisher) flush() {
	for {
		p.mu.Lock()
		n, total := 0, 0
		for n < len(p.queue) && (n == 0 || total+len(p.queue[n].msgs) <= MaxAtomicBatch) {
			total += len(p.queue[n].msgs)
			n++
		}
		if n == 0 {
			p.flushers--
			p.mu.Unlock()
			return
		}
		group := slices.DeleteFunc(slices.Clone(p.queue[:n]), func(q *queued) bool {
			return q.ctx.Err() != nil // answered already (503): not sent
		})
		p.queue = slices.Delete(p.queue, 0, n)
		p.mu.Unlock()
		if len(group) == 0 {
			continue
		}

		// The batch lives as long as the request waiting longest for it.
		var msgs []*nats.Msg
		deadline := time.Now().Add(DefaultPublishTimeout)
		for k, q := range group {
			msgs = append(msgs, q.msgs...)
			if d, ok := q.ctx.Deadline(); ok && (k == 0 || d.After(deadline)) {
				deadline = d
			}
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err := p.publishChunk(ctx, p.js.Conn(), msgs)
		cancel()
		for _, q := range group {
			q.done <- err
		}
	}
}

// MaxAtomicBatch is the most events published as one atomic batch: nats-server's default limit (max_batch_size).
const MaxAtomicBatch = 1000

// Atomic batch error codes (nats-server's errors.json) Publish branches on.
const (
	errCodeAtomicDisabled  = 10174
	errCodeAtomicDuplicate = 10201
)

// errHasDuplicate: an atomic batch held an ID JetStream already had, and
// was refused whole.
var errHasDuplicate = errors.New("trailnats: the batch holds an ID the stream has")

// publishChunk stores msgs (in order) as one atomic batch, retrying a
// batch that was abandoned (leader change, lost message, too many batches
// in flight) until ctx ends. A batch holding an ID JetStream already has
// is refused whole (errHasDuplicate); its requests' events then go one at
// a time (oneByOne), each acknowledged before the next, which keeps the
// order too.
func (p *Publisher) publishChunk(ctx context.Context, nc *nats.Conn, msgs []*nats.Msg) error {
	backoff := 10 * time.Millisecond
	for {
		// At most MaxFlushers batches are open per Publisher (flush is the
		// only caller), below nats-server's default of 50 per stream
		// (max_batch_inflight_per_stream); a server refusing more is retried.
		err := ctx.Err()
		if err == nil {
			err = p.atomicBatch(ctx, nc, msgs)
		}
		var apiErr *jetstream.APIError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeAtomicDuplicate:
			return fmt.Errorf("%w: %w", errHasDuplicate, err)
		case errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeAtomicDisabled:
			return fmt.Errorf("%w: stream %s does not allow atomic publish (run trail serve --nats once to update it): %w", ErrUnavailable, p.cfg.Stream, err)
		case ctx.Err() != nil:
			return fmt.Errorf("%w: publishing to %s: %w (last error: %w)", ErrUnavailable, msgs[0].Subject, ctx.Err(), err)
		}
		// A leader election or a full server: back off, bounded by ctx.
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// atomicBatch publishes one atomic batch: the first message as a request
// (the server answers once it has opened the batch, or refuses it), the
// ones between without waiting, the last with Nats-Batch-Commit as a
// request whose answer is the batch's PubAck. A message lost on the way
// leaves a gap the server refuses the batch for.
func (p *Publisher) atomicBatch(ctx context.Context, nc *nats.Conn, msgs []*nats.Msg) error {
	id := uuid.NewString() // at most 64 characters
	for k, m := range msgs {
		out := &nats.Msg{Subject: m.Subject, Data: m.Data, Header: nats.Header{}}
		out.Header.Set(jetstream.MsgIDHeader, m.Header.Get(jetstream.MsgIDHeader))
		if l := m.Header.Get(LookupHeader); l != "" {
			out.Header.Set(LookupHeader, l)
		}
		out.Header.Set("Nats-Batch-Id", id)
		out.Header.Set("Nats-Batch-Sequence", strconv.Itoa(k+1))
		if k == 0 {
			resp, err := nc.RequestMsgWithContext(ctx, out)
			if err != nil {
				return err
			}
			if err := ackError(resp); err != nil {
				return err
			}
			continue
		}
		if k < len(msgs)-1 {
			if err := nc.PublishMsg(out); err != nil {
				return err
			}
			continue
		}
		out.Header.Set("Nats-Batch-Commit", "1")
		resp, err := nc.RequestMsgWithContext(ctx, out)
		if err != nil {
			return err
		}
		var ack struct {
			Error *jetstream.APIError `json:"error"`
			Seq   uint64              `json:"seq"`
			Count int                 `json:"count"`
		}
		if err := json.Unmarshal(resp.Data, &ack); err != nil {
			return fmt.Errorf("trailnats: reading the batch's acknowledgement %q: %w", resp.Data, err)
		}
		if ack.Error != nil {
			return ack.Error
		}
		if ack.Count != len(msgs) {
			return fmt.Errorf("trailnats: batch of %d acknowledged with count %d", len(msgs), ack.Count)
		}
	}
	return nil
}

// ackError is the error in a batch message's answer, nil for an empty one.
func ackError(resp *nats.Msg) error {
	if len(resp.Data) == 0 {
		return nil
	}
	var ack struct {
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return fmt.Errorf("trailnats: reading the batch's answer %q: %w", resp.Data, err)
	}
	if ack.Error != nil {
		return ack.Error
	}
	return nil
}

// oneByOne publishes msgs one at a time, each acknowledged before the next
// is sent: a retry of events partly on the stream, in order. dup(i) marks
// msgs[i] a duplicate: JetStream had its ID (the message ID) for the same
// event. For another event it is an *trail.IDConflictError (Index in msgs).
func (p *Publisher) oneByOne(ctx context.Context, msgs []*nats.Msg, dup func(int)) error {
	for i, m := range msgs {
		ack, err := p.js.PublishMsg(ctx, m, jetstream.WithRetryAttempts(50))
		if err != nil {
			return fmt.Errorf("%w: publishing to %s: %w", ErrUnavailable, m.Subject, err)
		}
		if !ack.Duplicate {
			continue
		}
		ev, had, err := p.had(ctx, m, ack.Sequence)
		if err != nil {
			return err
		}
		if !trail.SameEvent(&ev, &had) {
			return &trail.IDConflictError{Index: i, ID: ev.ID}
		}
		dup(i)
	}
	return nil
}

// had returns the event m carries and the one the stream holds at seq,
// which JetStream named as the first with m's message ID (the event ID).
func (p *Publisher) had(ctx context.Context, m *nats.Msg, seq uint64) (ev, had trail.Event, err error) {
	if ev, err = decodeEvent(m.Data); err != nil {
		return ev, had, err
	}
	p.mu.Lock()
	st := p.stream
	p.mu.Unlock()
	if st == nil {
		if st, err = p.js.Stream(ctx, p.cfg.Stream); err != nil {
			return ev, had, fmt.Errorf("%w: stream %s: %w", ErrUnavailable, p.cfg.Stream, err)
		}
		p.mu.Lock()
		p.stream = st
		p.mu.Unlock()
	}
	raw, err := st.GetMsg(ctx, seq)
	if err != nil {
		return ev, had, fmt.Errorf("%w: reading the event holding ID %s (stream sequence %d): %w", ErrUnavailable, ev.ID, seq, err)
	}
	had, err = decodeEvent(raw.Data)
	return ev, had, err
}

// Store is a trail.Store whose Append goes through the stream and whose
// reads go to Read, the store the sinks write. trail serve --nats serves
// through it. Close does not close Read.
type Store struct {
	*Publisher
	Read trail.Store
}

// Append publishes events (see Publisher.Publish). An ID JetStream had
// within its duplicate window for another event is an *trail.IDConflictError;
// an ID held by an event older than the window and not yet stored is not
// known here: the sink refuses it and puts it on the conflict subject (Sink).
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

package trailclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

// Config configures a Client. BaseURL and Key are required; the other
// fields have the defaults their comments give.
type Config struct {
	// BaseURL is the server's address, e.g. "http://127.0.0.1:8080".
	BaseURL string
	// Key is the API key (trail_…), sent as a Bearer token.
	Key string
	// HTTPClient sends the requests. Default: an http.Client with a 30 s
	// timeout.
	HTTPClient *http.Client
	// BatchSize is the most events sent in one request. Default 200, at most
	// 1000 (the server's limit).
	BatchSize int
	// MaxBatchBytes bounds the JSON body of one request: a batch ends before
	// the event that would take it over. Default 4 MiB, under trail serve's
	// 5 MiB body limit (trailserver.DefaultMaxBodyBytes). A batch the server
	// still refuses as too large (413 naming the body) is split in two and
	// each half sent; an event too large alone is refused alone.
	MaxBatchBytes int
	// FlushInterval is how long an Enqueued event may wait for companions
	// before its batch is sent. It never delays Record: an event a Record
	// caller waits for is sent as soon as the sending goroutine is free,
	// together with everything queued by then (Enqueued events included).
	// Default 200 ms.
	FlushInterval time.Duration
	// QueueSize is how many events may wait in memory (strict and
	// best-effort; durable ones wait in the spool). Strict callers block
	// while it is full; best-effort events are dropped and counted.
	// Default 10,000.
	QueueSize int
	// MaxAttempts bounds the sends of one batch (the first try included);
	// its events then fail with the last error (Enqueued ones go to the
	// dead letter). Default 0: queued events are retried until delivered
	// (or MaxAge), with the backoff below — an outage of any length loses
	// nothing. Send and the read helpers, whose callers wait, stop after 10
	// attempts when it is 0.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the wait between attempts, which
	// doubles from MinBackoff with jitter (half to all of it) up to
	// MaxBackoff, or follows the server's Retry-After (at most MaxBackoff).
	// Defaults 100 ms and 10 s: once the server is back, the queue moves
	// again within 10 s.
	MinBackoff, MaxBackoff time.Duration
	// MaxAge, if set, is how long an Enqueued event is retried: older, it
	// is given up — written to the dead letter and passed to OnError, never
	// dropped silently. Default 0: no limit.
	MaxAge time.Duration
	// Spool is the directory of the durable spool, created if missing
	// (0700). Events of the Durable policy are written there before Enqueue
	// returns and deleted once delivered; a client opened on the directory
	// after a crash sends what is left. One client at a time: New fails
	// with ErrSpoolLocked while another has it open. Default: none (no
	// Durable policy).
	Spool string
	// SpoolBytes bounds the spool on disk; a durable Enqueue beyond it
	// fails with ErrSpoolFull. Default 1 GiB.
	SpoolBytes int64
	// DeadLetter is the JSON Lines file that Enqueued events given up on
	// are appended to (and fsynced): refused by the server, older than
	// MaxAge, or past MaxAttempts. Default: dead-letter.jsonl in Spool;
	// without a spool, none (OnError and DeliveryStats still see them).
	DeadLetter string
	// Policy is Enqueue's default fail policy (Strict, Durable,
	// BestEffort). Default Durable with a Spool, else BestEffort.
	Policy Policy
	// Policies overrides Policy per action: the key is an action
	// ("user.delete") or a pattern with * ("billing.*"); the exact action
	// wins, else the longest matching pattern. E.g.
	// {"auth.*": Strict, "page.view": BestEffort}.
	Policies map[string]Policy
	// OnError is called, from the sending goroutine, with Enqueued events
	// that finally failed (after they are in the dead letter, if any), and
	// with no events when opening the spool set damaged bytes aside.
	// Default: none (Flush reports the error).
	OnError func(failed []trail.Event, err error)
	// Source is written into events that name none and whose context carries
	// none. Default: empty.
	Source string
}

// ErrClosed is returned for events given to a closed client.
var ErrClosed = errors.New("trailclient: client is closed")

// UndeliveredError is Close's answer when its context ended before every
// event was delivered: Spooled events stay in the spool and are sent by the
// next client opened on it; Dropped best-effort events were in memory only
// and are lost (they are in DeliveryStats.Dropped too).
type UndeliveredError struct {
	Spooled int64
	Dropped int64
}

func (e *UndeliveredError) Error() string {
	return fmt.Sprintf("trailclient: closed with %d events left in the spool for the next start and %d best-effort events dropped", e.Spooled, e.Dropped)
}

// Client sends events to and reads events from a Trail server. It is safe
// for concurrent use. Close it to flush what is queued.
type Client struct {
	cfg   Config
	base  *url.URL
	http  *http.Client
	pol   policies
	spool *spool // nil without Config.Spool
	dead  *deadLetter

	in      chan item
	flushes chan chan struct{}
	quit    chan struct{}
	stopped chan struct{}
	// sendCtx is the sending goroutine's; Close cancels it when its own
	// context ends, which stops a delivery in progress.
	sendCtx    context.Context
	cancelSend context.CancelFunc

	mu      sync.Mutex
	closed  bool
	senders sync.WaitGroup // calls about to put an item in `in`
	errMu   sync.Mutex
	errs    []error // failures of Enqueued events since the last Flush
	n       counters
	// replayed is what New found in the spool.
	replayed int64
}

var _ trail.Recorder = (*Client)(nil)

// item is one event on its way: from memory (Record, strict and best-effort
// Enqueue) or read back from the spool.
type item struct {
	ev      trail.Event
	raw     []byte // ev's JSON, as sent
	enq     time.Time
	done    chan outcome // a strict caller waits on it; nil otherwise
	spooled bool
	end     spoolPos // where its spool record ends
	bad     error    // a spool record whose event does not decode
}

type outcome struct {
	res trail.Result
	err error
}

// New returns a client and starts its sending goroutine. With
// Config.Spool it opens the spool first; the events a previous client left
// there are sent at once.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		return nil, errors.New("trailclient: Config.BaseURL is required")
	}
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("trailclient: Config.BaseURL %q must be an http(s) URL", cfg.BaseURL)
	}
	if cfg.Key == "" {
		return nil, errors.New("trailclient: Config.Key is required")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 200
	}
	cfg.BatchSize = min(cfg.BatchSize, 1000)
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = 4 << 20
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 200 * time.Millisecond
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 10_000
	}
	if cfg.MaxAttempts < 0 {
		cfg.MaxAttempts = 0
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Second
	}
	if cfg.SpoolBytes <= 0 {
		cfg.SpoolBytes = 1 << 30
	}
	if cfg.Policy == "" {
		cfg.Policy = BestEffort
		if cfg.Spool != "" {
			cfg.Policy = Durable
		}
	}
	if !cfg.Policy.valid() {
		return nil, fmt.Errorf("trailclient: Config.Policy %q: want strict, durable or best-effort", cfg.Policy)
	}
	pol, err := newPolicies(cfg.Policy, cfg.Policies)
	if err != nil {
		return nil, err
	}
	if cfg.Spool == "" && pol.uses(Durable) {
		return nil, errors.New("trailclient: the durable policy needs Config.Spool, a directory")
	}
	if cfg.DeadLetter == "" && cfg.Spool != "" {
		cfg.DeadLetter = filepath.Join(cfg.Spool, deadLetterName)
	}
	c := &Client{
		cfg:     cfg,
		base:    base,
		http:    cfg.HTTPClient,
		pol:     pol,
		dead:    &deadLetter{path: cfg.DeadLetter},
		in:      make(chan item, cfg.QueueSize),
		flushes: make(chan chan struct{}),
		quit:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	c.sendCtx, c.cancelSend = context.WithCancel(context.Background())
	if cfg.Spool != "" {
		sp, rep, err := openSpool(cfg.Spool, cfg.SpoolBytes)
		if err != nil {
			c.cancelSend()
			return nil, err
		}
		c.spool, c.replayed = sp, rep.replayed
		for _, f := range rep.torn {
			if cfg.OnError != nil {
				cfg.OnError(nil, fmt.Errorf("trailclient: spool: damaged bytes set aside in %s, not replayed", f))
			}
		}
		if rep.replayed > 0 {
			sp.notify <- struct{}{}
		}
	}
	go c.loop()
	return c, nil
}

// prepare fills ev from ctx and gives it its ID and time now, so that every
// re-send carries the same ID; then checks it as the server will. An
// Event.Tenant that contradicts the context's is refused (ErrTenantMismatch)
// as by trail.Client; an event with no tenant is left to the server, which
// files it under a tenant key's tenant (an all-tenant key makes it a
// platform event).
func (c *Client) prepare(ctx context.Context, ev trail.Event) (trail.Event, error) {
	if err := ev.Fill(ctx); err != nil && !errors.Is(err, trail.ErrNoTenant) {
		return ev, err
	}
	if ev.Source == "" {
		ev.Source = c.cfg.Source
	}
	ev.RecordedAt = time.Time{}
	if err := ev.Normalize(); err != nil {
		return ev, err
	}
	if err := ev.Validate(); err != nil {
		return ev, err
	}
	return ev, nil
}

// newItem prepares ev and encodes it as it will be sent.
func (c *Client) newItem(ctx context.Context, ev trail.Event) (item, error) {
	ev, err := c.prepare(ctx, ev)
	if err != nil {
		return item{}, err
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		return item{}, fmt.Errorf("trailclient: encode event: %w", err)
	}
	return item{ev: ev, raw: raw, enq: time.Now()}, nil
}

// enqueue puts it in the memory queue; block says whether to wait for room
// (strict) or drop it when the queue is full (best-effort).
func (c *Client) enqueue(ctx context.Context, it item, block bool) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.senders.Add(1)
	c.mu.Unlock()
	defer c.senders.Done()
	if !block {
		select {
		case c.in <- it:
			c.n.queued.Add(1)
		default:
			c.n.dropped.Add(1)
		}
		return nil
	}
	select {
	case c.in <- it:
		c.n.queued.Add(1)
		return nil
	case <-c.quit:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Record sends ev and returns when the server has committed it (or
// reported it a duplicate): the Strict policy, whatever Config.Policy says.
// It does not wait for FlushInterval: the event goes out in the next
// request — at once if none is in flight, else as soon as the one in flight
// is done — so a lone Record costs one round trip. Concurrent calls share
// batches. If ctx ends first, Record returns ctx's error, but the event
// stays queued and is still sent: a later re-send of the same ID is
// harmless.
func (c *Client) Record(ctx context.Context, ev trail.Event) (trail.Result, error) {
	it, err := c.newItem(ctx, ev)
	if err != nil {
		return trail.Result{}, err
	}
	return c.recordItem(ctx, it)
}

func (c *Client) recordItem(ctx context.Context, it item) (trail.Result, error) {
	it.done = make(chan outcome, 1)
	if err := c.enqueue(ctx, it, true); err != nil {
		return trail.Result{}, err
	}
	select {
	case o := <-it.done:
		return o.res, o.err
	case <-ctx.Done():
		return trail.Result{ID: it.ev.ID}, ctx.Err()
	}
}

// Enqueue accepts ev under its action's policy (Config.Policy and
// Policies) and returns its ID: Strict once the server committed it,
// Durable once it is fsynced in the spool, BestEffort once it is in memory
// (a best-effort event dropped because the queue is full is counted in
// DeliveryStats.Dropped, not returned as an error). A later failure to
// deliver it is reported to Config.OnError, written to the dead letter and
// returned by the next Flush.
func (c *Client) Enqueue(ctx context.Context, ev trail.Event) (uuid.UUID, error) {
	it, err := c.newItem(ctx, ev)
	if err != nil {
		return uuid.Nil, err
	}
	switch c.pol.of(it.ev.Action) {
	case Strict:
		_, err := c.recordItem(ctx, it)
		return it.ev.ID, err
	case Durable:
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return uuid.Nil, ErrClosed
		}
		pos, err := c.spool.append(it.enq, it.raw)
		if err == nil {
			err = c.spool.sync(pos)
		}
		if err != nil {
			return uuid.Nil, err
		}
		return it.ev.ID, nil
	default:
		return it.ev.ID, c.enqueue(ctx, it, false)
	}
}

// Flush sends everything queued before it (spool included; not what is
// appended while it runs) and waits for the answers. It returns the delivery failures of Enqueued events since
// the last Flush. While the server is down it waits, as delivery does, until
// ctx ends.
func (c *Client) Flush(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case c.flushes <- done:
	case <-c.stopped:
		return c.takeErrors()
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return c.takeErrors()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) takeErrors() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	err := errors.Join(c.errs...)
	c.errs = nil
	return err
}

// Close delivers what is queued and stops the client; events given to it
// later fail with ErrClosed. If ctx ends first, the delivery in progress is
// stopped: durable events stay in the spool for the next client opened on
// it, best-effort ones are dropped (strict callers get an error), and Close
// returns ctx's error joined with an *UndeliveredError that says how many of
// each (nil if nothing was left).
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.stopped
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	dropped := c.n.dropped.Load()
	close(c.quit)
	var ctxErr error
	select {
	case <-c.stopped:
	case <-ctx.Done():
		select {
		case <-c.stopped: // done anyway
		default:
			ctxErr = ctx.Err()
			c.cancelSend()
			<-c.stopped
		}
	}
	c.cancelSend()
	c.senders.Wait()
	for {
		select {
		case it := <-c.in:
			c.abandon([]item{it}, ErrClosed)
			continue
		default:
		}
		break
	}
	var left int64
	var err error
	if c.spool != nil {
		left, _ = c.spool.counts()
		err = c.spool.close()
	}
	c.dead.close()
	if d := int64(c.n.dropped.Load() - dropped); left > 0 || d > 0 {
		err = errors.Join(ctxErr, &UndeliveredError{Spooled: left, Dropped: d}, err)
	}
	return errors.Join(err, c.takeErrors())
}

type ingestResponse struct {
	Results []struct {
		ID         uuid.UUID  `json:"id"`
		Status     string     `json:"status"`
		RecordedAt *time.Time `json:"recorded_at"`
	} `json:"results"`
}

// Send posts events as one batch now, bypassing the queue, with the same
// retries. At most 1000 events.
func (c *Client) Send(ctx context.Context, events []trail.Event) ([]trail.Result, error) {
	prepared := make([]trail.Event, len(events))
	for i, ev := range events {
		p, err := c.prepare(ctx, ev)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		prepared[i] = p
	}
	return c.send(ctx, prepared)
}

func (c *Client) send(ctx context.Context, events []trail.Event) ([]trail.Result, error) {
	body, err := json.Marshal(map[string]any{"events": events})
	if err != nil {
		return nil, fmt.Errorf("trailclient: encode events: %w", err)
	}
	var resp ingestResponse
	if err := c.retry(ctx, func() error {
		return c.do(ctx, http.MethodPost, "/v1/events", nil, body, &resp)
	}); err != nil {
		return nil, err
	}
	return resp.results(len(events), func(i int) uuid.UUID { return events[i].ID })
}

// results checks that the answer is for the n events sent, in order, and
// returns it as trail.Results.
func (resp *ingestResponse) results(n int, id func(int) uuid.UUID) ([]trail.Result, error) {
	if len(resp.Results) != n {
		return nil, fmt.Errorf("trailclient: the server answered %d results for %d events", len(resp.Results), n)
	}
	out := make([]trail.Result, n)
	for i, r := range resp.Results {
		if r.ID != id(i) {
			return nil, fmt.Errorf("trailclient: result %d is for event %s, not %s", i, r.ID, id(i))
		}
		out[i] = trail.Result{ID: r.ID, Duplicate: r.Status == "duplicate"}
		if r.RecordedAt != nil {
			out[i].RecordedAt = *r.RecordedAt
		}
	}
	return out, nil
}

package trailclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
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
	// FlushInterval is how long an Enqueued event may wait for companions
	// before its batch is sent. It never delays Record: an event a Record
	// caller waits for is sent as soon as the sending goroutine is free,
	// together with everything queued by then (Enqueued events included).
	// Default 200 ms.
	FlushInterval time.Duration
	// QueueSize is how many events may wait to be sent; Enqueue and Record
	// block while it is full. Default 10,000.
	QueueSize int
	// MaxAttempts bounds the sends of one batch (the first try included)
	// before its events fail with the last error. Default 10 (about a minute
	// of backoff).
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the wait between attempts, which
	// doubles from MinBackoff with jitter, or follows the server's
	// Retry-After. Defaults 100 ms and 10 s.
	MinBackoff, MaxBackoff time.Duration
	// OnError is called, from the sending goroutine, with events sent by
	// Enqueue that finally failed. Default: none (Flush reports the error).
	OnError func(failed []trail.Event, err error)
	// Source is written into events that name none and whose context carries
	// none. Default: empty.
	Source string
}

// APIError is an error answer of the server: an RFC 9457 problem.
type APIError struct {
	Status int    `json:"status"`
	Type   string `json:"type"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	// Field names the offending input, e.g. "events[3].action" or "limit".
	Field string `json:"field"`
	// RetryAfter is the server's Retry-After, for 429 and 503.
	RetryAfter time.Duration `json:"-"`
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("trail API: %d %s", e.Status, e.Title)
	if e.Field != "" {
		msg += ": " + e.Field
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Temporary reports whether retrying the same request may succeed.
func (e *APIError) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// ErrClosed is returned for events given to a closed client.
var ErrClosed = errors.New("trailclient: client is closed")

// Client sends events to and reads events from a Trail server. It is safe
// for concurrent use. Close it to flush what is queued.
type Client struct {
	cfg  Config
	base *url.URL
	http *http.Client

	in      chan item
	flushes chan chan struct{}
	quit    chan struct{}
	stopped chan struct{}

	mu     sync.Mutex
	closed bool
	errMu  sync.Mutex
	errs   []error // failures of Enqueued events since the last Flush
}

var _ trail.Recorder = (*Client)(nil)

type item struct {
	ev   trail.Event
	done chan outcome // nil for Enqueue
}

type outcome struct {
	res trail.Result
	err error
}

// New returns a client and starts its sending goroutine.
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
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 200 * time.Millisecond
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 10_000
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Second
	}
	c := &Client{
		cfg:     cfg,
		base:    base,
		http:    cfg.HTTPClient,
		in:      make(chan item, cfg.QueueSize),
		flushes: make(chan chan struct{}),
		quit:    make(chan struct{}),
		stopped: make(chan struct{}),
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

func (c *Client) enqueue(ctx context.Context, it item) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return ErrClosed
	}
	select {
	case c.in <- it:
		return nil
	case <-c.quit:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Record sends ev and returns when the server has committed it (or
// reported it a duplicate). It does not wait for FlushInterval: the event
// goes out in the next request — at once if none is in flight, else as soon
// as the one in flight is done (answered, or retried to its end) — so a lone
// Record costs one round trip. Concurrent calls share batches: those that
// arrive while a request is in flight go together in the next one. If ctx
// ends first, Record returns ctx's error, but the event stays queued and is
// still sent: a later re-send of the same ID is harmless.
func (c *Client) Record(ctx context.Context, ev trail.Event) (trail.Result, error) {
	ev, err := c.prepare(ctx, ev)
	if err != nil {
		return trail.Result{}, err
	}
	done := make(chan outcome, 1)
	if err := c.enqueue(ctx, item{ev: ev, done: done}); err != nil {
		return trail.Result{}, err
	}
	select {
	case o := <-done:
		return o.res, o.err
	case <-ctx.Done():
		return trail.Result{ID: ev.ID}, ctx.Err()
	}
}

// Enqueue queues ev and returns its ID at once. A failure to deliver it is
// reported to Config.OnError and by the next Flush.
func (c *Client) Enqueue(ctx context.Context, ev trail.Event) (uuid.UUID, error) {
	ev, err := c.prepare(ctx, ev)
	if err != nil {
		return uuid.Nil, err
	}
	return ev.ID, c.enqueue(ctx, item{ev: ev})
}

// Flush sends everything queued before it and waits for the answers. It
// returns the delivery failures of Enqueued events since the last Flush.
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

// Close flushes the queue and stops the client. Events given to it later
// fail with ErrClosed. If ctx ends first, what is still queued is dropped
// and Close returns ctx's error.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.stopped
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	close(c.quit)
	select {
	case <-c.stopped:
		return c.takeErrors()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loop is the sending goroutine: it gathers events into batches and sends
// one batch at a time. Each time it wakes it first takes everything already
// queued. If a Record caller waits on one of those events, it sends them all
// at once — what accumulated while the previous request was in flight is the
// batch, so concurrent Records share requests and a lone one pays only its
// round trip. Otherwise (Enqueued events only) it sends full batches and
// lets the rest wait up to FlushInterval for companions.
func (c *Client) loop() {
	defer close(c.stopped)
	var (
		pending []item
		waited  bool // an event in pending has a Record caller waiting
		timer   *time.Timer
		timerC  <-chan time.Time
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	add := func(it item) {
		pending = append(pending, it)
		if it.done != nil {
			waited = true
		}
	}
	sendAll := func(all bool) {
		for len(pending) >= c.cfg.BatchSize || (all && len(pending) > 0) {
			n := min(len(pending), c.cfg.BatchSize)
			batch := pending[:n:n]
			pending = pending[n:]
			c.deliver(ctx, batch)
		}
		if len(pending) == 0 {
			pending = nil
			waited = false
			if timer != nil {
				timer.Stop()
			}
			timerC = nil
		}
	}
	drain := func() {
		for {
			select {
			case it := <-c.in:
				add(it)
			default:
				return
			}
		}
	}
	for {
		select {
		case it := <-c.in:
			add(it)
			// Take what else is already waiting before deciding.
			drain()
			sendAll(waited)
			if len(pending) > 0 && timerC == nil {
				if timer == nil {
					timer = time.NewTimer(c.cfg.FlushInterval)
				} else {
					timer.Reset(c.cfg.FlushInterval)
				}
				timerC = timer.C
			}
		case <-timerC:
			timerC = nil
			drain()
			sendAll(true)
		case done := <-c.flushes:
			drain()
			sendAll(true)
			close(done)
		case <-c.quit:
			drain()
			sendAll(true)
			return
		}
	}
}

// deliver sends one batch with retries and hands each event its outcome.
// An event the server rejects (400/403 naming events[i]) fails alone; the
// rest of the batch is sent again.
func (c *Client) deliver(ctx context.Context, batch []item) {
	for len(batch) > 0 {
		events := make([]trail.Event, len(batch))
		for i := range batch {
			events[i] = batch[i].ev
		}
		results, err := c.send(ctx, events)
		if err == nil {
			for i, it := range batch {
				c.finish(it, outcome{res: results[i]})
			}
			return
		}
		var ae *APIError
		if errors.As(err, &ae) && !ae.Temporary() {
			if i, ok := eventIndex(ae.Field); ok && i < len(batch) {
				one := *ae
				one.Field = strings.TrimPrefix(ae.Field, fmt.Sprintf("events[%d]", i))
				one.Field = strings.TrimPrefix(one.Field, ".")
				c.finish(batch[i], outcome{err: &one})
				batch = append(batch[:i:i], batch[i+1:]...)
				continue
			}
		}
		for _, it := range batch {
			c.finish(it, outcome{err: err})
		}
		return
	}
}

// eventIndex parses "events[12].actor.id" → 12.
func eventIndex(field string) (int, bool) {
	rest, ok := strings.CutPrefix(field, "events[")
	if !ok {
		return 0, false
	}
	n, _, ok := strings.Cut(rest, "]")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(n)
	return i, err == nil && i >= 0
}

func (c *Client) finish(it item, o outcome) {
	if it.done != nil {
		it.done <- o
		return
	}
	if o.err != nil {
		err := fmt.Errorf("trailclient: event %s: %w", it.ev.ID, o.err)
		c.errMu.Lock()
		if len(c.errs) < 100 {
			c.errs = append(c.errs, err)
		}
		c.errMu.Unlock()
		if c.cfg.OnError != nil {
			c.cfg.OnError([]trail.Event{it.ev}, o.err)
		}
	}
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
	if len(resp.Results) != len(events) {
		return nil, fmt.Errorf("trailclient: the server answered %d results for %d events", len(resp.Results), len(events))
	}
	out := make([]trail.Result, len(events))
	for i, r := range resp.Results {
		if r.ID != events[i].ID {
			return nil, fmt.Errorf("trailclient: result %d is for event %s, not %s", i, r.ID, events[i].ID)
		}
		out[i] = trail.Result{ID: r.ID, Duplicate: r.Status == "duplicate"}
		if r.RecordedAt != nil {
			out[i].RecordedAt = *r.RecordedAt
		}
	}
	return out, nil
}

// retry runs fn until it succeeds, fails permanently, or MaxAttempts is
// reached, sleeping with exponential backoff and jitter in between.
func (c *Client) retry(ctx context.Context, fn func() error) error {
	var err error
	for attempt := 0; attempt < c.cfg.MaxAttempts; attempt++ {
		if err = fn(); err == nil || !retryable(err) {
			return err
		}
		wait := c.cfg.MinBackoff << min(attempt, 20)
		if wait > c.cfg.MaxBackoff || wait <= 0 {
			wait = c.cfg.MaxBackoff
		}
		wait = wait/2 + rand.N(wait/2+1) // jitter: spread re-sends of many clients
		var ae *APIError
		if errors.As(err, &ae) && ae.RetryAfter > 0 {
			wait = min(ae.RetryAfter, c.cfg.MaxBackoff)
		}
		if attempt == c.cfg.MaxAttempts-1 {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return errors.Join(ctx.Err(), err)
		}
	}
	return fmt.Errorf("trailclient: giving up after %d attempts: %w", c.cfg.MaxAttempts, err)
}

// retryable: network errors, 5xx and 429. Not: other 4xx, or a cancelled
// context.
func retryable(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Temporary()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var de *decodeError
	return !errors.As(err, &de)
}

type decodeError struct{ err error }

func (e *decodeError) Error() string { return "trailclient: decode the answer: " + e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

func (c *Client) do(ctx context.Context, method, path string, query url.Values, body []byte, out any) error {
	u, err := url.Parse(c.base.String() + path) // path segments are escaped by the callers
	if err != nil {
		return fmt.Errorf("trailclient: bad path %q: %w", path, err)
	}
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Key)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		ae := &APIError{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = json.Unmarshal(b, ae)
		ae.Status = resp.StatusCode
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			ae.RetryAfter = time.Duration(s) * time.Second
		}
		return ae
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return &decodeError{err}
	}
	return nil
}

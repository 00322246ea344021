package trailclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

// errTooOld is the dead letter's reason for an event older than MaxAge.
var errTooOld = errors.New("trailclient: not delivered within Config.MaxAge")

// loop is the sending goroutine: it gathers events into batches and sends
// one batch at a time — first what waits in memory (strict callers among
// them), then the spool, in the order written. Each time it wakes it first
// takes everything already queued. If a Record caller waits on one of those
// events, it sends them all at once — what accumulated while the previous
// request was in flight is the batch, so concurrent Records share requests
// and a lone one pays only its round trip. Otherwise it sends full batches
// (BatchSize events or MaxBatchBytes) and lets the rest wait up to
// FlushInterval for companions.
func (c *Client) loop() {
	defer close(c.stopped)
	var (
		mem    []item // from c.in, in arrival order
		sp     []item // read from the spool, not sent yet
		waited bool   // an event in mem has a Record caller waiting
		timer  *time.Timer
		timerC <-chan time.Time
		note   <-chan struct{}
	)
	ctx := c.sendCtx
	if c.spool != nil {
		note = c.spool.notify
	}
	drain := func(limit int) {
		for len(mem) < limit {
			select {
			case it := <-c.in:
				mem = append(mem, it)
				if it.done != nil {
					waited = true
				}
			default:
				return
			}
		}
	}
	readSpool := func() {
		if c.spool == nil || len(sp) >= c.cfg.BatchSize {
			return
		}
		recs, err := c.spool.next(c.cfg.BatchSize-len(sp), c.cfg.MaxBatchBytes)
		for _, r := range recs {
			it := item{raw: r.rec.event, enq: r.rec.enqueued, spooled: true, end: r.end}
			if derr := json.Unmarshal(r.rec.event, &it.ev); derr != nil {
				it.bad = fmt.Errorf("trailclient: spool record is not an event: %w", derr)
			}
			sp = append(sp, it)
		}
		if err != nil && c.cfg.OnError != nil {
			c.cfg.OnError(nil, err)
		}
	}
	pending := func() (n, bytes int) {
		for _, it := range mem {
			bytes += len(it.raw) + 1
		}
		for _, it := range sp {
			bytes += len(it.raw) + 1
		}
		n = len(mem) + len(sp)
		if c.spool != nil {
			n += int(c.spool.available())
		}
		return n, bytes
	}
	// take cuts the next batch: memory first, then the spool; at most
	// BatchSize events and, past the first, MaxBatchBytes of JSON.
	take := func() []item {
		var batch []item
		size := len(`{"events":[]}`)
		for len(batch) < c.cfg.BatchSize {
			var src *[]item
			switch {
			case len(mem) > 0:
				src = &mem
			default:
				if len(sp) == 0 {
					readSpool()
				}
				if len(sp) == 0 {
					return batch
				}
				src = &sp
			}
			it := (*src)[0]
			if len(batch) > 0 && size+len(it.raw)+1 > c.cfg.MaxBatchBytes {
				return batch
			}
			size += len(it.raw) + 1
			batch = append(batch, it)
			(*src)[0] = item{}
			*src = (*src)[1:]
		}
		return batch
	}
	sendAll := func(all bool) {
		for ctx.Err() == nil {
			readSpool()
			n, bytes := pending()
			if n == 0 || (!all && !waited && n < c.cfg.BatchSize && bytes < c.cfg.MaxBatchBytes) {
				break
			}
			batch := take()
			if len(batch) == 0 {
				break // the spool counted records it could not read; reported by readSpool
			}
			c.deliverBatch(ctx, batch)
			if len(mem) == 0 {
				waited = false
			}
		}
		if n, _ := pending(); n == 0 {
			mem, sp, waited = nil, nil, false
			if timer != nil {
				timer.Stop()
			}
			timerC = nil
		}
	}
	arm := func() {
		if n, _ := pending(); n > 0 && timerC == nil {
			if timer == nil {
				timer = time.NewTimer(c.cfg.FlushInterval)
			} else {
				timer.Reset(c.cfg.FlushInterval)
			}
			timerC = timer.C
		}
	}
	for {
		in := c.in
		if len(mem) >= c.cfg.QueueSize {
			in = nil // memory is bounded: at most QueueSize here and QueueSize in c.in
		}
		select {
		case it := <-in:
			mem = append(mem, it)
			if it.done != nil {
				waited = true
			}
			// Take what else is already waiting before deciding.
			drain(c.cfg.QueueSize)
			sendAll(waited)
			arm()
		case <-note:
			drain(c.cfg.QueueSize)
			sendAll(waited)
			arm()
		case <-timerC:
			timerC = nil
			drain(c.cfg.QueueSize)
			sendAll(true)
			arm()
		case done := <-c.flushes:
			// Everything queued before the Flush, not what producers
			// keep appending to the spool meanwhile.
			drain(c.cfg.QueueSize)
			var target int64
			if c.spool != nil {
				target = c.spool.appendedCount()
			}
			for ctx.Err() == nil {
				if len(mem) == 0 && len(sp) == 0 && (c.spool == nil || c.spool.readCount() >= target) {
					break
				}
				batch := take()
				if len(batch) == 0 {
					break
				}
				c.deliverBatch(ctx, batch)
			}
			arm()
			close(done)
		case <-c.quit:
			for {
				drain(len(mem) + c.cfg.QueueSize)
				sendAll(true)
				if ctx.Err() != nil || len(c.in) == 0 {
					break
				}
			}
			c.abandon(mem, ErrClosed) // left only if Close's context ended
			return
		}
	}
}

// deliverBatch delivers batch and, if every spooled event in it got its
// outcome, moves the spool's delivered position past them.
func (c *Client) deliverBatch(ctx context.Context, batch []item) {
	if !c.deliver(ctx, batch, 0) || c.spool == nil {
		return
	}
	var end spoolPos
	n := 0
	for _, it := range batch {
		if it.spooled {
			end, n = it.end, n+1
		}
	}
	if n > 0 {
		if err := c.spool.commit(end, n); err != nil && c.cfg.OnError != nil {
			c.cfg.OnError(nil, err)
		}
	}
}

// deliver sends one batch until every event in it has its outcome and
// reports whether that happened (false: ctx ended first; memory events are
// then abandoned, spooled ones left in the spool). Network errors, 5xx and
// 429 are retried with backoff — without end unless MaxAttempts is set. An
// event the server refuses (a 4xx naming events[i]) fails alone and the rest
// is sent again at once; a batch refused as too large (413) is split in
// two. Before each attempt, events older than MaxAge are given up.
func (c *Client) deliver(ctx context.Context, batch []item, attempt int) bool {
	for {
		batch = c.expire(batch)
		if len(batch) == 0 {
			return true
		}
		results, err := c.post(ctx, batch)
		if err == nil {
			c.n.delivered.Add(uint64(len(batch)))
			for i, it := range batch {
				c.finish(it, outcome{res: results[i]})
			}
			return true
		}
		if ctx.Err() != nil {
			c.abandon(batch, ctx.Err())
			return false
		}
		var ae *APIError
		if errors.As(err, &ae) && !ae.Temporary() {
			if i, ok := eventIndex(ae.Field); ok && i < len(batch) {
				one := *ae
				one.Field = strings.TrimPrefix(ae.Field, fmt.Sprintf("events[%d]", i))
				one.Field = strings.TrimPrefix(one.Field, ".")
				c.fail(batch[i:i+1], &one)
				batch = append(batch[:i:i], batch[i+1:]...)
				continue
			}
			if ae.Status == http.StatusRequestEntityTooLarge && len(batch) > 1 {
				h := len(batch) / 2
				if !c.deliver(ctx, batch[:h], attempt) {
					c.abandon(batch[h:], ctx.Err())
					return false
				}
				return c.deliver(ctx, batch[h:], attempt)
			}
		}
		if !retryable(err) {
			c.fail(batch, err)
			return true
		}
		attempt++
		if c.cfg.MaxAttempts > 0 && attempt >= c.cfg.MaxAttempts {
			c.fail(batch, fmt.Errorf("trailclient: giving up after %d attempts: %w", attempt, err))
			return true
		}
		c.n.retries.Add(1)
		if sleepCtx(ctx, c.backoff(attempt-1, err)) != nil {
			c.abandon(batch, ctx.Err())
			return false
		}
	}
}

// expire gives up the events of batch older than MaxAge and spool records
// that do not decode, and returns the rest.
func (c *Client) expire(batch []item) []item {
	var keep []item
	now := time.Now()
	for i, it := range batch {
		var err error
		switch {
		case it.bad != nil:
			err = it.bad
		case c.cfg.MaxAge > 0 && now.Sub(it.enq) > c.cfg.MaxAge:
			err = fmt.Errorf("%w (%s): enqueued %s", errTooOld, c.cfg.MaxAge, it.enq.UTC().Format(time.RFC3339))
		}
		if err == nil {
			if keep != nil {
				keep = append(keep, it)
			}
			continue
		}
		if keep == nil {
			keep = append(make([]item, 0, len(batch)), batch[:i]...)
		}
		c.fail([]item{it}, err)
	}
	if keep == nil {
		return batch
	}
	return keep
}

// post sends batch once and returns the server's results in its order.
func (c *Client) post(ctx context.Context, batch []item) ([]trail.Result, error) {
	size := len(`{"events":[]}`) + len(batch)
	for _, it := range batch {
		size += len(it.raw)
	}
	body := make([]byte, 0, size)
	body = append(body, `{"events":[`...)
	for i, it := range batch {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, it.raw...)
	}
	body = append(body, "]}"...)
	var resp ingestResponse
	if err := c.do(ctx, http.MethodPost, "/v1/events", nil, body, &resp); err != nil {
		return nil, err
	}
	return resp.results(len(batch), func(i int) uuid.UUID { return batch[i].ev.ID })
}

// finish hands a delivered event its result.
func (c *Client) finish(it item, o outcome) {
	if !it.spooled {
		c.n.queued.Add(-1)
	}
	if it.done != nil {
		it.done <- o
	}
}

// fail gives events up with err: a strict caller gets err; an Enqueued
// event goes to the dead letter, then to OnError, and is counted.
func (c *Client) fail(items []item, err error) {
	var dead []item
	for _, it := range items {
		if !it.spooled {
			c.n.queued.Add(-1)
		}
		if it.done != nil {
			c.n.failed.Add(1)
			it.done <- outcome{err: err}
			continue
		}
		dead = append(dead, it)
	}
	if len(dead) == 0 {
		return
	}
	raws := make([][]byte, len(dead))
	events := make([]trail.Event, len(dead))
	for i, it := range dead {
		raws[i], events[i] = it.raw, it.ev
	}
	if werr := c.dead.write(raws, err); werr != nil {
		err = fmt.Errorf("%w (and writing the dead letter %s failed: %v)", err, c.cfg.DeadLetter, werr)
	}
	c.n.deadLettered.Add(uint64(len(dead)))
	c.errMu.Lock()
	for _, it := range dead {
		if len(c.errs) < 100 {
			c.errs = append(c.errs, fmt.Errorf("trailclient: event %s: %w", it.ev.ID, err))
		}
	}
	c.errMu.Unlock()
	if c.cfg.OnError != nil {
		c.cfg.OnError(events, err)
	}
}

// abandon stops trying events because the client is closing: a strict
// caller gets err, a best-effort event is dropped and counted, a spooled
// one stays in the spool.
func (c *Client) abandon(items []item, err error) {
	for _, it := range items {
		switch {
		case it.spooled:
		case it.done != nil:
			c.n.queued.Add(-1)
			it.done <- outcome{err: err}
		default:
			c.n.queued.Add(-1)
			c.n.dropped.Add(1)
		}
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

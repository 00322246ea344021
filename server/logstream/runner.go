package logstream

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trailhq/trail"
)

// Runner delivers every enabled stream: it reads what each stream has not
// delivered from the sealed logs, sends it in batches, and records the
// position reached in the stream's row after the receiver accepted it.
// Run it on one replica: Leader (the sealer's Leading) keeps it to the
// sealer's leader.
type Runner struct {
	Manager *Manager
	// Reveal turns a stored event into its readable form before it is
	// delivered (the privacy layer). Default: events go as stored.
	Reveal func(ctx context.Context, ev *trail.Event) error
	// Leader reports whether this process leads (trailseal.Sealer.Leading);
	// nil: always.
	Leader func() bool
	// Poll is how often the streams are looked at. Default 200 ms.
	Poll time.Duration
	// Backoff after n failures in a row is min(BaseBackoff×2^(n-1),
	// MaxBackoff), measured from the last failure as stored. Defaults 1 s
	// and 60 s.
	BaseBackoff, MaxBackoff time.Duration
	// Workers is how many streams are delivered at once. Default 8.
	Workers int
	// BatchesPerStep bounds the batches one stream sends in one step, so
	// that a stream catching up does not hold a worker. Default 20.
	BatchesPerStep int
	// OnError receives delivery errors (also stored as the stream's
	// last_error). Default: none.
	OnError func(stream string, err error)

	mu      sync.Mutex
	senders map[string]*openSender
	counts  sync.Map // stream ID -> *counters
}

type openSender struct {
	updated time.Time
	s       sender
}

type counters struct {
	delivered, batches, failures, deadLetters atomic.Int64
}

// Counters are a stream's delivery counts since this process started.
type Counters struct {
	Delivered, Batches, Failures, DeadLetters int64
}

// Counts returns the counters of stream id.
func (r *Runner) Counts(id string) Counters {
	c := r.counters(id)
	return Counters{c.delivered.Load(), c.batches.Load(), c.failures.Load(), c.deadLetters.Load()}
}

func (r *Runner) counters(id string) *counters {
	c, _ := r.counts.LoadOrStore(id, &counters{})
	return c.(*counters)
}

func (r *Runner) defaults() {
	if r.Poll <= 0 {
		r.Poll = 200 * time.Millisecond
	}
	if r.BaseBackoff <= 0 {
		r.BaseBackoff = time.Second
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = time.Minute
	}
	if r.Workers <= 0 {
		r.Workers = 8
	}
	if r.BatchesPerStep <= 0 {
		r.BatchesPerStep = 20
	}
}

// Run delivers until ctx ends.
func (r *Runner) Run(ctx context.Context) {
	r.defaults()
	defer r.closeAll()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := r.Step(ctx); err != nil && ctx.Err() == nil && r.OnError != nil {
			r.OnError("", err)
		}
		t.Reset(r.Poll)
	}
}

// Step delivers each enabled stream as far as it can in one pass (up to
// BatchesPerStep batches each). It does nothing unless this process leads.
func (r *Runner) Step(ctx context.Context) error {
	r.defaults()
	if r.Leader != nil && !r.Leader() {
		r.closeAll()
		return nil
	}
	rows, err := r.Manager.Store.list(ctx, "", true)
	if err != nil {
		return err
	}
	live := map[string]bool{}
	work := make(chan *row)
	var wg sync.WaitGroup
	for range min(r.Workers, max(1, len(rows))) {
		wg.Go(func() {
			for row := range work {
				r.deliver(ctx, row)
			}
		})
	}
	for _, row := range rows {
		if row.Enabled {
			live[row.ID] = true
			work <- row
		}
	}
	close(work)
	wg.Wait()
	r.mu.Lock()
	for id, s := range r.senders {
		if !live[id] {
			s.s.close()
			delete(r.senders, id)
		}
	}
	r.mu.Unlock()
	return nil
}

func (r *Runner) closeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, s := range r.senders {
		s.s.close()
		delete(r.senders, id)
	}
}

func (r *Runner) sender(ctx context.Context, row *row) (sender, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.senders == nil {
		r.senders = map[string]*openSender{}
	}
	if s, ok := r.senders[row.ID]; ok && s.updated.Equal(row.UpdatedAt) {
		return s.s, nil
	}
	if s, ok := r.senders[row.ID]; ok {
		s.s.close()
		delete(r.senders, row.ID)
	}
	sec, err := openSecrets(ctx, r.Manager.KMS, row.ID, row.secret)
	if err != nil {
		return nil, err
	}
	s, err := r.Manager.dialer().open(&row.Stream, sec)
	if err != nil {
		return nil, err
	}
	r.senders[row.ID] = &openSender{updated: row.UpdatedAt, s: s}
	return s, nil
}

func (r *Runner) dropSender(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.senders[id]; ok {
		s.s.close()
		delete(r.senders, id)
	}
}

func (r *Runner) backoff(failures int) time.Duration {
	d := r.BaseBackoff
	for i := 1; i < failures && d < r.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, r.MaxBackoff)
}

// deliver sends row's batches until it is caught up, a batch waits for
// more events, a batch fails, or BatchesPerStep were sent.
func (r *Runner) deliver(ctx context.Context, row *row) {
	m := r.Manager
	now := m.now()
	if row.Health.Failures > 0 && row.Health.LastErrorAt != nil && now.Before(row.Health.LastErrorAt.Add(r.backoff(row.Health.Failures))) {
		return
	}
	// The logs are listed once per step, not once per batch: an all-tenant
	// stream's list is a query of every log. Of them, only those with leaves
	// past the cursor are read.
	logs, err := m.logsOf(ctx, row)
	if err == nil {
		logs, err = m.withNew(ctx, row, logs)
	}
	if err != nil {
		r.failed(ctx, row, err)
		return
	}
	sort.Strings(logs)
	for range r.BatchesPerStep {
		if ctx.Err() != nil {
			return
		}
		more, err := r.batch(ctx, row, logs)
		if err != nil {
			r.failed(ctx, row, err)
			return
		}
		if !more {
			return
		}
	}
}

// batch reads row's logs (sorted), sends and records one batch; more is
// false when there is nothing more to send now.
func (r *Runner) batch(ctx context.Context, row *row, logs []string) (more bool, err error) {
	m := r.Manager
	max := row.Batching.MaxEvents
	var items []item
	readEnd := map[string]int64{}
	full := false
	for _, l := range logs {
		want := int64(max - len(items))
		if want <= 0 {
			full = true
			break
		}
		from := row.cursor[l]
		leaves, err := m.Log.Leaves(ctx, l, from, from+want)
		if err != nil {
			return false, fmt.Errorf("read log: %w", err)
		}
		if int64(len(leaves)) == want {
			full = true
		}
		for _, se := range leaves {
			readEnd[l] = se.Seq + 1
			if se.Event == nil || !row.Filter.Match(se.Event) {
				continue // purged, or filtered out
			}
			items = append(items, item{log: l, leafSeq: se.Seq, ev: se.Event})
		}
	}
	if len(readEnd) == 0 {
		return false, nil // caught up
	}
	if len(items) == 0 {
		// Only filtered events: move past them.
		cur := merge(row.cursor, readEnd)
		if err := m.Store.skip(ctx, row.ID, cur); err != nil {
			return false, err
		}
		row.cursor = cur
		return full, nil
	}
	if !full && len(items) < max && m.now().Sub(items[0].ev.RecordedAt) < time.Duration(row.Batching.MaxWaitMS)*time.Millisecond {
		return false, nil // wait for a fuller batch
	}
	for i := range items {
		ev := *items[i].ev
		if r.Reveal != nil {
			if err := r.Reveal(ctx, &ev); err != nil {
				return false, fmt.Errorf("reveal: %w", err)
			}
		}
		items[i].ev = &ev
		items[i].seq = row.next + int64(i)
		if items[i].rec, err = format(&row.Stream, &items[i]); err != nil {
			return false, err
		}
	}
	snd, err := r.sender(ctx, row)
	if err != nil {
		return false, err
	}
	sent, err := r.send(ctx, snd, row, items)
	if sent > 0 {
		// Record what the receiver accepted, even when a later half failed.
		cur := merge(row.cursor, nil)
		if sent == len(items) {
			cur = merge(row.cursor, readEnd)
		} else {
			for _, it := range items[:sent] {
				cur[it.log] = it.leafSeq + 1
			}
		}
		if perr := m.Store.advance(ctx, row.ID, cur, row.next+int64(sent), m.now()); perr != nil {
			return false, perr
		}
		row.cursor, row.next = cur, row.next+int64(sent)
		row.Health.Failures, row.failingSince = 0, nil
		c := r.counters(row.ID)
		c.delivered.Add(int64(sent))
		c.batches.Add(1)
	}
	if err != nil {
		rest := items[sent:]
		if row.failingSince != nil && m.now().Sub(*row.failingSince) >= time.Duration(row.DeadLetterAfterS)*time.Second {
			return r.deadLetter(ctx, row, rest, err)
		}
		return false, err
	}
	return full, nil
}

// send sends items, splitting a batch the receiver finds too large; sent
// is how many of items (a prefix) the receiver accepted.
func (r *Runner) send(ctx context.Context, snd sender, row *row, items []item) (sent int, err error) {
	err = snd.send(ctx, &row.Stream, items)
	var tl *TooLargeError
	if err == nil {
		return len(items), nil
	}
	if !errors.As(err, &tl) || len(items) == 1 {
		return 0, err
	}
	half := len(items) / 2
	n, err := r.send(ctx, snd, row, items[:half])
	if err != nil {
		return n, err
	}
	n2, err := r.send(ctx, snd, row, items[half:])
	return half + n2, err
}

// deadLetter sets items aside after they kept failing for the stream's
// dead_letter_after_s, and moves the stream past them.
func (r *Runner) deadLetter(ctx context.Context, row *row, items []item, cause error) (bool, error) {
	m := r.Manager
	cur := merge(row.cursor, nil)
	ids := make([]string, len(items))
	for i, it := range items {
		cur[it.log] = it.leafSeq + 1
		ids[i] = it.ev.ID.String()
	}
	next := row.next + int64(len(items))
	if err := m.Store.deadLetter(ctx, row.ID, cur, row.next, next, ids, cause.Error(), m.now()); err != nil {
		return false, err
	}
	row.cursor, row.next, row.Health.Failures, row.failingSince = cur, next, 0, nil
	r.counters(row.ID).deadLetters.Add(1)
	if r.OnError != nil {
		r.OnError(row.ID, fmt.Errorf("dead-lettered sequence %d-%d: %w", next-int64(len(items)), next-1, cause))
	}
	return true, nil
}

func (r *Runner) failed(ctx context.Context, row *row, err error) {
	r.dropSender(row.ID)
	r.counters(row.ID).failures.Add(1)
	if r.OnError != nil {
		r.OnError(row.ID, err)
	}
	if ferr := r.Manager.Store.fail(context.WithoutCancel(ctx), row.ID, err.Error(), r.Manager.now()); ferr != nil && r.OnError != nil && !errors.Is(ferr, ErrNotFound) {
		r.OnError(row.ID, ferr)
	}
}

func merge(a, b map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

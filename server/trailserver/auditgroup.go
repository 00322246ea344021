package trailserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/trailhq/trail"
)

// Reads are audited in groups. A read answers only once its audit.read
// event is stored (auditRead); with one Append per read, every concurrent
// read was a write transaction of its own, and on SQLite, whose single
// writer ingest also waits for, N reads took N turns at the write lock
// between ingest's batches.
//
// A read now hands its event to its server's audit queue and waits:
//
//   - A read that finds no audit append in flight (fewer than
//     auditLimit) leads: it appends its event at once, alone. There is
//     no timer: a lone read waits for nothing but its own write.
//   - A read that finds auditLimit appends in flight queues. When one of
//     them ends, the first queued read leads the next one with everything queued (up
//     to auditGroupMax events) in one Append, one transaction: the reads
//     that arrive during one write cost one more write, not one each. On a
//     store whose writers wait for their turn (GatherAppender: SQLite), the
//     group also takes in the reads that queued while it waited for its
//     turn, once it has it.
//   - Each read answers after its group's Append has returned, with its
//     error: a failed group fails every read in it (503, as a read whose
//     audit cannot be written always has), so an answered read has its
//     audit.read stored. The group's events are published to the live tail
//     after the commit and before any read of the group answers.
//
// The queue holds only events whose reads are waiting for them, so it is
// bounded by the reads in flight, and a read queued behind a busy writer
// waits: that is the back-pressure. A read whose request is cancelled still
// waits for its group (the Append does not see the cancellation, as before
// groups): its event has been handed over and is written either way, and
// the read may be the one leading the next group.
//
// Nothing runs between groups: no goroutine of its own, no timer. A server
// is in auditQueues only while an audit append of its is in flight, so
// there is nothing to start in New or to drain in Close: http.Server's
// Shutdown waits for the reads, and the reads wait for their groups.

// auditGroupMax is the most events one audit Append carries (a variable for
// tests).
var auditGroupMax = MaxBatch

// auditAppends is the most audit appends of one server in flight at once
// when neither Config.AuditAppends nor the store (ConcurrentAppender) says.
// One is best for SQLite's single writer: each more audit writer is one
// more waiting for the write lock against ingest (`trail bench --workload
// mixed`, BENCHMARKS.md, alternating runs with 16 readers beside ingest:
// read p99 1.4–1.7 s with one, 2.0–2.8 s with two or four). PostgreSQL,
// which writes concurrently, measured better with two to four (read p99
// 0.3–0.65 s against 0.4–0.95 s); trailpgx's store says 2.
var auditAppends = 1

// ConcurrentAppender is optionally implemented by a Store to say how many
// appends it runs at once with profit: the server keeps that many audit.read
// appends in flight (Config.AuditAppends overrides it). trailsqlite says 1
// (one writer at a time), trailpgx 2.
type ConcurrentAppender interface {
	ConcurrentAppends() int
}

// GatherAppender is optionally implemented by a Store whose writers wait
// for their turn (trailsqlite): AppendGathered appends, in one transaction,
// the events gather returns, and calls gather only once it may write. An
// audit group then takes in the reads that queued while it waited for the
// writer, instead of leaving them for a turn of their own behind ingest.
type GatherAppender interface {
	AppendGathered(ctx context.Context, gather func() []trail.Event) ([]trail.Result, error)
}

// auditLimit is the most audit appends of s in flight at once.
func (s *Server) auditLimit() int {
	if s.cfg.AuditAppends > 0 {
		return s.cfg.AuditAppends
	}
	if ca, ok := s.cfg.Store.(ConcurrentAppender); ok {
		if n := ca.ConcurrentAppends(); n > 0 {
			return n
		}
	}
	return auditAppends
}

// auditWaiter is a read waiting for its audit.read event to be stored.
type auditWaiter struct {
	ev    trail.Event
	wake  chan error     // one message: the group's result, or errLead
	group []*auditWaiter // with errLead: the group to append, this read first
}

// auditQueue is a server's audit appends in flight and the reads waiting
// for the next one.
type auditQueue struct {
	appending int
	waiting   []*auditWaiter
}

// next removes the group the next append takes from the waiting reads.
func (aq *auditQueue) next() []*auditWaiter {
	return aq.take(auditGroupMax)
}

// take removes up to max of the waiting reads, the oldest first.
func (aq *auditQueue) take(max int) []*auditWaiter {
	n := min(len(aq.waiting), max)
	group := aq.waiting[:n:n]
	if n == len(aq.waiting) {
		aq.waiting = nil
	} else {
		aq.waiting = slices.Clone(aq.waiting[n:])
	}
	return group
}

// errLead wakes the first queued read to lead the next group.
var errLead = errors.New("trailserver: lead the next audit group")

// errAuditPanic is what the rest of a group gets when its Append panicked.
var errAuditPanic = errors.New("trailserver: the audit append panicked")

// auditQueues holds the queue of each server with an audit append in
// flight.
var auditQueues = struct {
	sync.Mutex
	m map[*Server]*auditQueue
}{m: map[*Server]*auditQueue{}}

// appendAudit stores ev, a prepared audit.read event, in one Append with
// those of the concurrent reads, and returns when it is stored (nil) or its
// group failed. The Append runs without ctx's cancellation.
func (s *Server) appendAudit(ctx context.Context, ev trail.Event) error {
	w := &auditWaiter{ev: ev, wake: make(chan error, 1)}
	q := &auditQueues
	q.Lock()
	aq := q.m[s]
	if aq == nil {
		aq = &auditQueue{}
		q.m[s] = aq
	}
	if aq.appending < s.auditLimit() {
		aq.appending++
		q.Unlock()
		return s.leadAudit(ctx, []*auditWaiter{w})
	}
	aq.waiting = append(aq.waiting, w)
	q.Unlock()
	if err := <-w.wake; err != errLead {
		return err
	}
	return s.leadAudit(ctx, w.group)
}

// leadAudit appends the events of group, whose first read is the caller, in
// one Append; then it hands the lead to the next queued read, if any, and
// wakes the rest of the group with the result, also if the Append panicked.
// On a GatherAppender the group also takes in, once the store may write,
// the reads queued meanwhile (up to auditGroupMax in all).
func (s *Server) leadAudit(ctx context.Context, group []*auditWaiter) (err error) {
	err = errAuditPanic
	defer func() { s.endAuditGroup(group, err) }()
	var evs []trail.Event
	events := func() []trail.Event {
		evs = make([]trail.Event, len(group))
		for i, w := range group {
			evs[i] = w.ev
		}
		return evs
	}
	actx := context.WithoutCancel(ctx)
	if ga, ok := s.cfg.Store.(GatherAppender); ok {
		_, err = ga.AppendGathered(actx, func() []trail.Event {
			q := &auditQueues
			q.Lock()
			group = append(group, q.m[s].take(auditGroupMax-len(group))...)
			q.Unlock()
			return events()
		})
	} else {
		_, err = s.cfg.Store.Append(actx, events())
	}
	if err != nil {
		return err
	}
	s.metrics.auditGroups.observe(len(evs))
	s.metrics.auditReads.Add(uint64(len(evs)))
	s.hub.publish(evs)
	return nil
}

func (s *Server) endAuditGroup(group []*auditWaiter, err error) {
	if err != nil {
		s.metrics.auditGroups.failed.Add(1)
	}
	q := &auditQueues
	q.Lock()
	if aq := q.m[s]; len(aq.waiting) > 0 {
		next := aq.next()
		next[0].group = next
		next[0].wake <- errLead
	} else if aq.appending--; aq.appending == 0 {
		delete(q.m, s)
	}
	q.Unlock()
	for _, w := range group[1:] {
		w.wake <- err
	}
}

// auditGroupBuckets are the upper bounds of trail_audit_read_group_size.
var auditGroupBuckets = [...]int{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000}

// auditGroupMetrics are trail_audit_read_groups_total and
// trail_audit_read_group_size.
type auditGroupMetrics struct {
	committed atomic.Uint64
	failed    atomic.Uint64
	sizes     [len(auditGroupBuckets) + 1]atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	events    atomic.Uint64
}

func (m *auditGroupMetrics) observe(n int) {
	i, _ := slices.BinarySearch(auditGroupBuckets[:], n)
	m.sizes[i].Add(1)
	m.events.Add(uint64(n))
	m.committed.Add(1)
}

func (m *auditGroupMetrics) write(w io.Writer) {
	fmt.Fprintln(w, "# HELP trail_audit_read_groups_total Appends of audit.read events (one transaction each), by result.")
	fmt.Fprintln(w, "# TYPE trail_audit_read_groups_total counter")
	fmt.Fprintf(w, "trail_audit_read_groups_total{result=\"committed\"} %d\n", m.committed.Load())
	fmt.Fprintf(w, "trail_audit_read_groups_total{result=\"failed\"} %d\n", m.failed.Load())
	fmt.Fprintln(w, "# HELP trail_audit_read_group_size audit.read events per committed append.")
	fmt.Fprintln(w, "# TYPE trail_audit_read_group_size histogram")
	var cum uint64
	for i, b := range auditGroupBuckets {
		cum += m.sizes[i].Load()
		fmt.Fprintf(w, "trail_audit_read_group_size_bucket{le=\"%d\"} %d\n", b, cum)
	}
	cum += m.sizes[len(auditGroupBuckets)].Load()
	fmt.Fprintf(w, "trail_audit_read_group_size_bucket{le=\"+Inf\"} %d\n", cum)
	fmt.Fprintf(w, "trail_audit_read_group_size_sum %d\n", m.events.Load())
	fmt.Fprintf(w, "trail_audit_read_group_size_count %d\n", cum)
}

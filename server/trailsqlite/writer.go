package trailsqlite

import (
	"context"
	"slices"
	"sync"
)

// writeQueue makes the store's own writers (Append, AppendGathered and the
// sealer's transactions) take turns at SQLite's single write lock. Without
// it they all raced for the lock in SQLite's busy handler, which retries
// after sleeps of up to 100 ms and serves whoever tries at the right
// moment: under sustained ingest the sealer and the audit.read groups lost
// most races, and once in eight runs a writer gave up after the 10 s busy
// timeout (issue 13). With the queue only the writer holding the turn runs
// BEGIN IMMEDIATE, so the busy timeout counts only against other processes
// (and against transactions begun on DB() by the caller, which do not
// queue); in-process writers wait in the queue, however long it is, until
// their context ends.
//
// Writers of one kind (writerClass) are served in the order they asked.
// The sealer goes first whenever it waits: it is one writer, each of its
// turns serves thousands of events, and between its three turns a step
// (lease, seal, checkpoints) it reads and computes without the lock, so the
// others always get turns. With a plain FIFO each of those turns waited
// behind every ingest writer's append and the sealing lag grew to seconds
// (BENCHMARKS.md); before the queue, its BEGIN, retried every millisecond,
// won most gaps over writers sleeping in the busy handler, which is the
// priority it keeps here without their busy timeouts. Appends and the
// server's audit groups take turns, so that reads, whose answers wait for
// their group, are not served only after every queued ingest batch.
type writeQueue struct {
	mu      sync.Mutex
	busy    bool                            // a writer holds the turn
	last    writerClass                     // of appends and audit groups, the kind that got the turn last
	waiting [nWriterClasses][]chan struct{} // per kind, in the order they asked; closed to hand one the turn
}

// writerClass is a kind of writer: the kinds take turns.
type writerClass int

const (
	appendWriter writerClass = iota // Append: ingest
	sealWriter                      // the sealer's transactions
	gatherWriter                    // AppendGathered: the server's audit.read groups
	nWriterClasses
)

// acquire waits for the turn of a writer of class k. On an error (ctx
// done) the caller does not hold it.
func (q *writeQueue) acquire(ctx context.Context, k writerClass) error {
	q.mu.Lock()
	if !q.busy {
		q.busy = true
		if k != sealWriter {
			q.last = k
		}
		q.mu.Unlock()
		return nil
	}
	c := make(chan struct{})
	q.waiting[k] = append(q.waiting[k], c)
	q.mu.Unlock()
	select {
	case <-c:
		return nil
	case <-ctx.Done():
	}
	q.mu.Lock()
	if i := slices.Index(q.waiting[k], c); i >= 0 {
		q.waiting[k] = slices.Delete(q.waiting[k], i, i+1)
		q.mu.Unlock()
		return ctx.Err()
	}
	q.mu.Unlock()
	q.release() // handed the turn as ctx ended: pass it on
	return ctx.Err()
}

// release hands the turn to the sealer if it waits, else to the writer
// that has waited longest of the kind (append, audit group) not served
// last, else of the other; or frees it.
func (q *writeQueue) release() {
	q.mu.Lock()
	defer q.mu.Unlock()
	next := func(k writerClass) bool {
		if len(q.waiting[k]) == 0 {
			return false
		}
		c := q.waiting[k][0]
		q.waiting[k] = slices.Delete(q.waiting[k], 0, 1)
		if k != sealWriter {
			q.last = k
		}
		close(c)
		return true
	}
	other := appendWriter
	if q.last == appendWriter {
		other = gatherWriter
	}
	if !next(sealWriter) && !next(other) && !next(q.last) {
		q.busy = false
	}
}

// ConcurrentAppends is 1: SQLite has one writer at a time, so a server
// (trailserver.ConcurrentAppender) keeps one audit append in flight, which
// gathers the reads queued while it waits (AppendGathered).
func (s *Store) ConcurrentAppends() int { return 1 }

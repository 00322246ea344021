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
// Writers of one kind (writerClass) are served in the order they asked;
// the kinds take turns, so that the sealer, which needs three turns a step
// (lease, seal, checkpoints), waits behind at most one append of each other
// kind per turn, not behind every ingest writer's: a plain FIFO made each
// step wait for all of them three times, and the sealing lag grew.
type writeQueue struct {
	mu      sync.Mutex
	busy    bool                            // a writer holds the turn
	last    writerClass                     // the kind of the writer that got the turn last
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
		q.busy, q.last = true, k
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

// release hands the turn to the writer that has waited longest of the next
// kind after the last one served that has writers waiting, if any.
func (q *writeQueue) release() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := 1; i <= int(nWriterClasses); i++ {
		k := (q.last + writerClass(i)) % nWriterClasses
		if len(q.waiting[k]) == 0 {
			continue
		}
		c := q.waiting[k][0]
		q.waiting[k] = slices.Delete(q.waiting[k], 0, 1)
		q.last = k
		close(c)
		return
	}
	q.busy = false
}

// queued returns how many writers wait for the turn (tests).
func (q *writeQueue) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, w := range q.waiting {
		n += len(w)
	}
	return n
}

// ConcurrentAppends is 1: SQLite has one writer at a time, so a server
// (trailserver.ConcurrentAppender) keeps one audit append in flight, which
// gathers the reads queued while it waits (AppendGathered).
func (s *Store) ConcurrentAppends() int { return 1 }

package trailsqlite

import (
	"context"
	"slices"
	"sync"
)

// writeQueue makes the store's own writers (Append, AppendGathered and the
// sealer's transactions) take turns at SQLite's single write lock in the
// order they asked for it. Without it they all raced for the lock in
// SQLite's busy handler, which retries after sleeps of up to 100 ms and
// serves whoever tries at the right moment: under sustained ingest the
// sealer and the audit.read groups lost most races, and once in eight runs
// a writer gave up after the 10 s busy timeout (issue 13). With the queue
// only the writer at its head runs BEGIN IMMEDIATE, so the busy timeout
// counts only against other processes (and against transactions begun on
// DB() by the caller, which do not queue); in-process writers wait in the
// queue, however long it is, until their context ends.
type writeQueue struct {
	mu      sync.Mutex
	busy    bool            // a writer holds the turn
	waiting []chan struct{} // writers in the order they asked; closed to hand one the turn
}

// acquire waits for the turn. On an error (ctx done) the caller does not
// hold it.
func (q *writeQueue) acquire(ctx context.Context) error {
	q.mu.Lock()
	if !q.busy {
		q.busy = true
		q.mu.Unlock()
		return nil
	}
	c := make(chan struct{})
	q.waiting = append(q.waiting, c)
	q.mu.Unlock()
	select {
	case <-c:
		return nil
	case <-ctx.Done():
	}
	q.mu.Lock()
	if i := slices.Index(q.waiting, c); i >= 0 {
		q.waiting = slices.Delete(q.waiting, i, i+1)
		q.mu.Unlock()
		return ctx.Err()
	}
	q.mu.Unlock()
	q.release() // handed the turn as ctx ended: pass it on
	return ctx.Err()
}

// release hands the turn to the writer that has waited longest, if any.
func (q *writeQueue) release() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiting) == 0 {
		q.busy = false
		return
	}
	c := q.waiting[0]
	q.waiting = slices.Delete(q.waiting, 0, 1)
	close(c)
}

// queued returns how many writers wait for the turn (tests).
func (q *writeQueue) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiting)
}

// ConcurrentAppends is 1: SQLite has one writer at a time, so a server
// (trailserver.ConcurrentAppender) keeps one audit append in flight, which
// gathers the reads queued while it waits (AppendGathered).
func (s *Store) ConcurrentAppends() int { return 1 }

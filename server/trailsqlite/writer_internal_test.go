package trailsqlite

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"testing"
)

// waitQueued yields until n writers wait in q: state, not time.
func waitQueued(q *writeQueue, n int) {
	for q.queued() != n {
		runtime.Gosched()
	}
}

// TestWriteQueueIsFIFO: writers of one kind that ask for the turn while it
// is held get it in the order they asked, one at a time.
func TestWriteQueueIsFIFO(t *testing.T) {
	var q writeQueue
	ctx := context.Background()
	if err := q.acquire(ctx, appendWriter); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var (
		mu      sync.Mutex
		order   []int
		holding int
		wg      sync.WaitGroup
	)
	for i := range n {
		wg.Go(func() {
			if err := q.acquire(ctx, appendWriter); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			holding++
			if holding > 1 {
				t.Errorf("writer %d holds the turn with %d others", i, holding-1)
			}
			order = append(order, i)
			mu.Unlock()
			mu.Lock()
			holding--
			mu.Unlock()
			q.release()
		})
		waitQueued(&q, i+1)
	}
	q.release()
	wg.Wait()
	for i, w := range order {
		if w != i {
			t.Fatalf("turns taken in order %v, want 0…%d", order, n-1)
		}
	}
	if err := q.acquire(ctx, appendWriter); err != nil || q.queued() != 0 {
		t.Fatalf("turn not free after everyone released: %v, %d queued", err, q.queued())
	}
}

// TestWriteQueueCancel: a writer whose context ends while it waits leaves
// the queue without the turn; the writers behind it still get theirs.
func TestWriteQueueCancel(t *testing.T) {
	var q writeQueue
	if err := q.acquire(context.Background(), appendWriter); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error)
	go func() { gone <- q.acquire(cctx, appendWriter) }()
	waitQueued(&q, 1)
	got := make(chan error)
	go func() { got <- q.acquire(context.Background(), appendWriter) }()
	waitQueued(&q, 2)
	cancel()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	waitQueued(&q, 1)
	q.release()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	q.release()
	if q.busy {
		t.Fatal("turn still held after the last release")
	}
}

// TestWriteQueueKindsTakeTurns: each kind of writer is served in the order
// it asked; the sealer goes first whenever it waits, and appends and audit
// groups take turns.
func TestWriteQueueKindsTakeTurns(t *testing.T) {
	var q writeQueue
	ctx := context.Background()
	if err := q.acquire(ctx, appendWriter); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		order []string
		wg    sync.WaitGroup
	)
	ask := func(name string, k writerClass) {
		n := q.queued()
		wg.Go(func() {
			if err := q.acquire(ctx, k); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			q.release()
		})
		waitQueued(&q, n+1)
	}
	ask("append1", appendWriter)
	ask("append2", appendWriter)
	ask("append3", appendWriter)
	ask("seal1", sealWriter)
	ask("seal2", sealWriter)
	ask("gather1", gatherWriter)
	ask("gather2", gatherWriter)
	q.release()
	wg.Wait()
	want := []string{"seal1", "seal2", "gather1", "append1", "gather2", "append2", "append3"}
	if !slices.Equal(order, want) {
		t.Fatalf("turns taken in order %v, want %v", order, want)
	}
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

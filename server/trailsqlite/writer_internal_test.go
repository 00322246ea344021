package trailsqlite

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
)

// waitQueued yields until n writers wait in q: state, not time.
func waitQueued(q *writeQueue, n int) {
	for q.queued() != n {
		runtime.Gosched()
	}
}

// TestWriteQueueIsFIFO: writers that ask for the turn while it is held get
// it in the order they asked, one at a time.
func TestWriteQueueIsFIFO(t *testing.T) {
	var q writeQueue
	ctx := context.Background()
	if err := q.acquire(ctx); err != nil {
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
			if err := q.acquire(ctx); err != nil {
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
	if err := q.acquire(ctx); err != nil || q.queued() != 0 {
		t.Fatalf("turn not free after everyone released: %v, %d queued", err, q.queued())
	}
}

// TestWriteQueueCancel: a writer whose context ends while it waits leaves
// the queue without the turn; the writers behind it still get theirs.
func TestWriteQueueCancel(t *testing.T) {
	var q writeQueue
	if err := q.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error)
	go func() { gone <- q.acquire(cctx) }()
	waitQueued(&q, 1)
	got := make(chan error)
	go func() { got <- q.acquire(context.Background()) }()
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

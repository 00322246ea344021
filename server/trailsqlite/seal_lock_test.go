package trailsqlite_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailseal"
)

// busyTimeout reads the busy timeout of the store's one connection.
func busyTimeout(t *testing.T, s *trailsqlite.Store) int {
	t.Helper()
	var ms int
	if err := s.DB().QueryRowContext(context.Background(), "PRAGMA busy_timeout").Scan(&ms); err != nil {
		t.Fatal(err)
	}
	return ms
}

// TestSealerLeavesConnectionsWaiting: the sealer's transactions wait for
// the write lock with busy_timeout 0 on their connection; every
// connection goes back to the pool with the store's busy timeout, after a
// transaction that committed and after one that failed, so that writers
// never get a connection that fails at once on a held lock.
func TestSealerLeavesConnectionsWaiting(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, &trailsqlite.Config{MaxOpenConns: 1, BusyTimeout: 7 * time.Second})
	if got := busyTimeout(t, s); got != 7000 {
		t.Fatalf("busy timeout %d ms before sealing, want 7000", got)
	}
	epoch, ok, err := s.Lease(ctx, trailseal.DefaultLeaseName, "h", time.Minute)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if got := busyTimeout(t, s); got != 7000 {
		t.Fatalf("busy timeout %d ms after a lease, want 7000", got)
	}
	stale := trailseal.Fence{Lease: trailseal.DefaultLeaseName, Epoch: epoch + 1}
	if err := s.Seal(ctx, stale, trailseal.SealBatch{}); !errors.Is(err, trailseal.ErrFenced) {
		t.Fatalf("seal with a stale fence: %v", err)
	}
	if got := busyTimeout(t, s); got != 7000 {
		t.Fatalf("busy timeout %d ms after a failed seal, want 7000", got)
	}
}

// retrying reports whether a goroutine waits in sealTx's select (between
// two tries for the write lock).
func retrying() bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		header, frames, _ := bytes.Cut(g, []byte("\n"))
		top, _, _ := bytes.Cut(frames, []byte("\n"))
		if bytes.Contains(header, []byte("[select")) && bytes.Contains(top, []byte("trailsqlite.(*Store).sealTx(")) {
			return true
		}
	}
	return false
}

// TestSealerWaitsForTheWriteLock: while another connection holds the write
// lock, a sealer transaction waits (it does not fail at once for its busy
// timeout of 0) and goes through when the lock is released.
func TestSealerWaitsForTheWriteLock(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, nil)
	other := openTamperer(t, s.Path()).db
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := s.Lease(ctx, trailseal.DefaultLeaseName, "h", time.Minute)
		done <- err
	}()
	// Until the sealer is between two tries for the lock (its goroutine
	// waits in sealTx's select); it must not return before the lock is free.
	for !retrying() {
		select {
		case err := <-done:
			t.Fatalf("the lease returned while another connection held the write lock: %v", err)
		default:
			runtime.Gosched()
		}
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("lease after the lock was released: %v", err)
	}
}

package trailtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailtest"
)

// normalized returns a valid, normalized event, as a store receives it.
func normalized(t *testing.T, action string) trail.Event {
	t.Helper()
	ev := trail.Event{Action: action, Actor: admin, Tenant: "acme",
		Changes:  []trail.Change{trail.Changed("plan", "free", "pro")},
		Metadata: map[string]any{"n": 1, "tags": []any{"a"}}}
	if err := ev.Normalize(); err != nil {
		t.Fatal(err)
	}
	if err := ev.Validate(); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestTxLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	ev := normalized(t, "user.create")

	tx := s.Begin()
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); !errors.Is(err, trailtest.ErrTxDone) {
		t.Errorf("second Commit: %v, want ErrTxDone", err)
	}
	if err := tx.Rollback(); !errors.Is(err, trailtest.ErrTxDone) {
		t.Errorf("Rollback after Commit: %v, want ErrTxDone", err)
	}
	if _, err := s.AppendTx(ctx, tx, []trail.Event{ev}); !errors.Is(err, trailtest.ErrTxDone) {
		t.Errorf("AppendTx on a committed tx: %v, want ErrTxDone", err)
	}
	if _, err := s.AppendTx(ctx, nil, []trail.Event{ev}); err == nil {
		t.Errorf("AppendTx with a nil tx: no error")
	}
	if _, err := s.AppendTx(ctx, trailtest.NewStore().Begin(), []trail.Event{ev}); err == nil {
		t.Errorf("AppendTx with another store's tx: no error")
	}
	if s.Len() != 0 {
		t.Fatalf("failed calls stored %d events", s.Len())
	}
}

// Two transactions racing on one ID: both see it as new, one commit keeps
// it, like ON CONFLICT DO NOTHING.
func TestTxConcurrentSameID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	ev := normalized(t, "user.create")
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tx := s.Begin()
			if _, err := s.AppendTx(ctx, tx, []trail.Event{ev}); err != nil {
				t.Error(err)
			}
			if err := tx.Commit(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := s.Len(); n != 1 {
		t.Errorf("%d events stored, want 1", n)
	}
}

func TestStoreKeepsCopies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	ev := normalized(t, "subscription.update")
	if _, err := s.Append(ctx, []trail.Event{ev}); err != nil {
		t.Fatal(err)
	}
	// Mutating the caller's event and a returned event changes nothing stored.
	ev.Changes[0].New[1] = 'X'
	ev.Metadata["n"] = "changed"
	got, err := s.Get(ctx, ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	got.Changes[0].Field = "other"
	got.Metadata["tags"] = nil
	again, err := s.Get(ctx, ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	if again.Changes[0].Field != "plan" || string(again.Changes[0].New) != `"pro"` {
		t.Errorf("stored changes were modified: %+v", again.Changes)
	}
	if n, ok := again.Metadata["n"].(json.Number); !ok || n != "1" || again.Metadata["tags"] == nil {
		t.Errorf("stored metadata was modified: %#v", again.Metadata)
	}
}

func TestClosedStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := trailtest.NewStore()
	tx := s.Begin()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	ev := normalized(t, "user.create")
	for name, err := range map[string]error{
		"Append":   func() error { _, err := s.Append(ctx, []trail.Event{ev}); return err }(),
		"AppendTx": func() error { _, err := s.AppendTx(ctx, tx, []trail.Event{ev}); return err }(),
		"Get":      func() error { _, err := s.Get(ctx, uuid.New()); return err }(),
		"Query":    func() error { _, err := s.Query(ctx, trail.Query{AllTenants: true}); return err }(),
		"Counts":   func() error { _, err := s.Counts(ctx, trail.CountQuery{AllTenants: true}); return err }(),
		"Commit":   tx.Commit(),
	} {
		if !errors.Is(err, trailtest.ErrClosed) {
			t.Errorf("%s on a closed store: %v, want ErrClosed", name, err)
		}
	}
}

func TestStoreTimes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	ev := normalized(t, "user.create")
	ev.OccurredAt = time.Date(2026, 1, 2, 3, 4, 5, 6789, time.FixedZone("X", 3600))
	if _, err := s.Append(ctx, []trail.Event{ev}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 1, 2, 2, 4, 5, 6000, time.UTC); got.OccurredAt != want {
		t.Errorf("OccurredAt %v, want %v (UTC, microseconds)", got.OccurredAt, want)
	}
}

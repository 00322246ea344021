package trailstoretest

import (
	"context"
	"errors"
	"testing"

	"github.com/trailhq/trail"
)

// RunTx runs the transactional part of the suite: AppendTx inside the
// caller's transaction. Stores that implement trail.TxStore run it in
// addition to Run.
func RunTx[TTx any](t *testing.T, h TxHarness[TTx]) {
	if h.NewStore == nil || h.Begin == nil || h.Commit == nil || h.Rollback == nil {
		t.Fatal("trailstoretest: TxHarness needs NewStore, Begin, Commit and Rollback")
	}
	for _, c := range []struct {
		name string
		fn   func(t *testing.T, h TxHarness[TTx], s trail.TxStore[TTx])
	}{
		{"CommitMakesVisible", txCommit[TTx]},
		{"RollbackLeavesNothing", txRollback[TTx]},
		{"DuplicateInsideTx", txDuplicate[TTx]},
		{"IDConflictInsideTx", txConflict[TTx]},
		{"LookupInsideTx", txLookup[TTx]},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !h.Serial {
				t.Parallel()
			}
			c.fn(t, h, h.NewStore(t))
		})
	}
}

// begin starts a transaction that is rolled back at cleanup unless ended.
func begin[TTx any](t *testing.T, h TxHarness[TTx], s trail.TxStore[TTx]) (tx TTx, end func(commit bool)) {
	ctx := context.Background()
	tx = h.Begin(ctx, t, s)
	done := false
	t.Cleanup(func() {
		if !done {
			h.Rollback(ctx, tx)
		}
	})
	return tx, func(commit bool) {
		done = true
		var err error
		if commit {
			err = h.Commit(ctx, tx)
		} else {
			err = h.Rollback(ctx, tx)
		}
		if err != nil {
			t.Fatalf("end transaction (commit=%t): %v", commit, err)
		}
	}
}

func txCommit[TTx any](t *testing.T, h TxHarness[TTx], s trail.TxStore[TTx]) {
	ctx := context.Background()
	evs := []trail.Event{event(t, "acme", "subscription.update", 0), event(t, "acme", "user.delete", hour)}
	tx, end := begin(t, h, s)
	res, err := s.AppendTx(ctx, tx, evs)
	if err != nil {
		t.Fatalf("AppendTx: %v", err)
	}
	if len(res) != len(evs) || res[0].ID != evs[0].ID || res[1].ID != evs[1].ID || res[0].Duplicate || res[1].Duplicate {
		t.Fatalf("AppendTx results %+v do not match the batch", res)
	}
	// Not visible outside the transaction before it commits.
	if _, err := s.Get(ctx, evs[0].ID); !errors.Is(err, trail.ErrNotFound) {
		t.Errorf("event visible outside its transaction before commit: Get err = %v", err)
	}
	end(true)
	want := stored(evs, res)
	for _, w := range want {
		got, err := s.Get(ctx, w.ID)
		if err != nil {
			t.Fatalf("Get after commit: %v", err)
		}
		sameEvent(t, "after commit", w, got)
	}
	sameIDs(t, "after commit", newestFirst(want), queryAll(t, s, trail.Query{Tenant: "acme"}))
}

func txRollback[TTx any](t *testing.T, h TxHarness[TTx], s trail.TxStore[TTx]) {
	ctx := context.Background()
	evs := []trail.Event{event(t, "acme", "subscription.update", 0), event(t, "", "system.start", hour)}
	tx, end := begin(t, h, s)
	if _, err := s.AppendTx(ctx, tx, evs); err != nil {
		t.Fatalf("AppendTx: %v", err)
	}
	end(false)
	for _, ev := range evs {
		if _, err := s.Get(ctx, ev.ID); !errors.Is(err, trail.ErrNotFound) {
			t.Errorf("event %s after rollback: Get err = %v, want ErrNotFound", ev.ID, err)
		}
	}
	if all := queryAll(t, s, trail.Query{AllTenants: true}); len(all) != 0 {
		t.Errorf("rollback left %d events", len(all))
	}
	cs, err := s.Counts(ctx, trail.CountQuery{AllTenants: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := total(cs); n != 0 {
		t.Errorf("rollback left counts %d", n)
	}
	// The IDs are free again: appending them is not a duplicate.
	for i, r := range mustAppend(t, s, evs...) {
		if r.Duplicate {
			t.Errorf("event %d after rollback reported Duplicate", i)
		}
	}
}

func txDuplicate[TTx any](t *testing.T, h TxHarness[TTx], s trail.TxStore[TTx]) {
	ctx := context.Background()
	old := event(t, "acme", "user.create", 0)
	mustAppend(t, s, old)
	fresh := event(t, "acme", "user.update", hour)
	tx, end := begin(t, h, s)
	res, err := s.AppendTx(ctx, tx, []trail.Event{old, fresh, fresh})
	if err != nil {
		t.Fatalf("AppendTx: %v", err)
	}
	if !res[0].Duplicate || res[1].Duplicate || !res[2].Duplicate {
		t.Errorf("AppendTx duplicates = %t %t %t, want true false true", res[0].Duplicate, res[1].Duplicate, res[2].Duplicate)
	}
	end(true)
	if all := queryAll(t, s, trail.Query{AllTenants: true}); len(all) != 2 {
		t.Errorf("store holds %d events, want 2", len(all))
	}
}

// txConflict: AppendTx refuses an ID held by another tenant's event, and
// the caller's rollback leaves nothing of the batch.
func txConflict[TTx any](t *testing.T, h TxHarness[TTx], s trail.TxStore[TTx]) {
	ctx := context.Background()
	held := event(t, "acme", "user.create", 0)
	mustAppend(t, s, held)
	reuse := held
	reuse.Tenant = "globex"
	fresh := event(t, "globex", "user.update", hour)
	tx, end := begin(t, h, s)
	_, err := s.AppendTx(ctx, tx, []trail.Event{fresh, reuse})
	if !errors.Is(err, trail.ErrIDConflict) {
		t.Errorf("AppendTx of another tenant's ID = %v, want ErrIDConflict", err)
	}
	end(false)
	if all := queryAll(t, s, trail.Query{AllTenants: true}); len(all) != 1 {
		t.Errorf("store holds %d events, want 1", len(all))
	}
}

package sealtest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
)

// RunHeads is the contract of a trailseal.HeadStore: no head at first
// (ErrNoHead); a sealer signs one covering every log's newest checkpoint,
// which LatestHead returns byte for byte (its file form parses and checks);
// store must hold sealed-or-pending events of a few tenants (the caller
// appends them); a save under a stale lease epoch is refused (ErrFenced) and saves
// nothing; the newest save wins.
func RunHeads(t *testing.T, store trailseal.Store) {
	ctx := context.Background()
	hs, ok := store.(trailseal.HeadStore)
	if !ok {
		t.Fatal("store is not a trailseal.HeadStore")
	}
	if _, err := hs.LatestHead(ctx); !errors.Is(err, trailseal.ErrNoHead) {
		t.Fatalf("LatestHead of an empty store: %v, want ErrNoHead", err)
	}
	signer, verifier := TestKey(t, "heads.example")
	sl, err := trailseal.NewSealer(store, &trailseal.Config{Signer: signer, Origin: "heads.example", Now: func() time.Time { return Base }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sl.SealAll(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := hs.LatestHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	logs, err := store.Logs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Entries) != len(logs) {
		t.Fatalf("head has %d entries, the store %d logs", len(h.Entries), len(logs))
	}
	for _, e := range h.Entries {
		cp, err := store.LatestCheckpoint(ctx, e.Log)
		if err != nil || cp.Size != e.Size || cp.Root != e.Root {
			t.Fatalf("entry %+v is not the newest checkpoint %+v (%v)", e, cp, err)
		}
	}
	got, err := trailseal.ParseHead(trailseal.MarshalHead(h), note.VerifierList(verifier), "heads.example")
	if err != nil || got.Root != h.Root || !got.Time.Equal(h.Time) {
		t.Fatalf("stored head does not check: %v", err)
	}
	// A stale epoch saves nothing.
	epoch, ok, err := store.Lease(ctx, "heads.test", "a", time.Minute)
	if err != nil || !ok {
		t.Fatalf("lease: %v %v", ok, err)
	}
	later, err := trailseal.SignHead(signer, "heads.example", h.Entries, Base.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := hs.SaveHead(ctx, trailseal.Fence{Lease: "heads.test", Epoch: epoch + 1}, later); !errors.Is(err, trailseal.ErrFenced) {
		t.Fatalf("SaveHead under a stale epoch: %v, want ErrFenced", err)
	}
	if now, _ := hs.LatestHead(ctx); now.Note != h.Note {
		t.Fatal("a fenced SaveHead saved a head")
	}
	if err := hs.SaveHead(ctx, trailseal.Fence{Lease: "heads.test", Epoch: epoch}, later); err != nil {
		t.Fatal(err)
	}
	now, err := hs.LatestHead(ctx)
	if err != nil || now.Note != later.Note || !now.Time.Equal(later.Time) || !slices.Equal(now.Entries, later.Entries) {
		t.Fatalf("newest head: %+v %v", now, err)
	}
}

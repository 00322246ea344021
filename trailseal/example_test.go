package trailseal_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
)

// Seal a tenant's events, prove one of them, and verify the whole store.
func Example() {
	ctx := context.Background()
	skey, vkey, err := trailseal.GenerateSigningKey("audit.example.com")
	if err != nil {
		log.Fatal(err)
	}
	signer, _, err := trailseal.ParseSigningKey(skey)
	if err != nil {
		log.Fatal(err)
	}

	store := trailseal.NewMemLog() // a SQL store in production
	var events []trail.Event
	for i := range 5 {
		ev := trail.Event{
			ID:         uuid.Must(uuid.NewV7()),
			OccurredAt: time.Date(2025, 6, 1, 12, i, 0, 0, time.UTC),
			Tenant:     "acme",
			Actor:      trail.Actor{Type: trail.ActorUser, ID: "42"},
			Action:     "subscription.update",
			Target:     trail.Target{Type: "subscription", ID: "sub_1"},
		}
		if err := ev.Normalize(); err != nil {
			log.Fatal(err)
		}
		events = append(events, ev)
	}
	if _, err := store.Append(ctx, events); err != nil {
		log.Fatal(err)
	}

	sealer, err := trailseal.NewSealer(store, &trailseal.Config{Signer: signer, Origin: "audit.example.com"})
	if err != nil {
		log.Fatal(err)
	}
	st, err := sealer.SealAll(ctx) // `trail seal`; trail serve runs sealer.Run
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("sealed", st.Sealed, "events, signed", st.Checkpoints, "checkpoint")

	// A tenant checks one event offline with the public key alone.
	proof, err := trailseal.ProveInclusion(ctx, store, events[3].ID, nil)
	if err != nil {
		log.Fatal(err)
	}
	v, _ := trailseal.ParseVerifierKey(vkey)
	keys := note.VerifierList(v)
	fmt.Println("event is record", proof.Index, "of", proof.TreeSize, "- proof ok:", proof.Verify(keys, "audit.example.com") == nil)

	// `trail verify`.
	rep, err := (&trailseal.Verifier{Store: store, Verifiers: keys, Origin: "audit.example.com"}).Verify(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("store verified:", rep.OK())

	// Someone edits an event behind Trail's back.
	store.TamperEditDescription(ctx, events[1].ID, "nothing happened")
	rep, _ = (&trailseal.Verifier{Store: store, Verifiers: keys, Origin: "audit.example.com"}).Verify(ctx, nil)
	for _, p := range rep.Problems {
		fmt.Println(p.Tenant, p.Seq, p.Kind)
	}
	// Output:
	// sealed 5 events, signed 1 checkpoint
	// event is record 3 of 5 - proof ok: true
	// store verified: true
	// acme 1 modified
}

package trailseal_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
)

// A sealer that writes every checkpoint and head to a directory witness,
// and a check of the store against it after the store lost its tail.
func ExampleCheckWitness() {
	ctx := context.Background()
	skey, vkey, _ := trailseal.GenerateSigningKey("audit.example.com")
	signer, _, _ := trailseal.ParseSigningKey(skey)
	verifier, _ := trailseal.ParseVerifierKey(vkey)
	dir, _ := os.MkdirTemp("", "witness")
	defer os.RemoveAll(dir)
	witness := trailseal.DirWitness{Dir: dir}

	store := trailseal.NewMemLog()
	sealer, _ := trailseal.NewSealer(store, &trailseal.Config{
		Signer: signer, Origin: "audit.example.com", Witnesses: []trailseal.Witness{witness},
	})
	store.Append(ctx, exampleEvents("acme", 8))
	sealer.SealAll(ctx)

	store.TamperTruncate(ctx, "acme", 5) // the database restored from an older backup
	rep, _ := trailseal.CheckWitness(ctx, store, witness, note.VerifierList(verifier), "audit.example.com", nil)
	for _, p := range rep.Problems {
		fmt.Println(p.Tenant, p.Kind, p.Checkpoint)
	}
	// Output: acme rolled_back 8
}

func exampleEvents(tenant string, n int) []trail.Event {
	var out []trail.Event
	for i := range n {
		ev := trail.Event{ID: uuid.Must(uuid.NewV7()), OccurredAt: time.Date(2025, 6, 1, 12, i, 0, 0, time.UTC), Tenant: tenant,
			Actor: trail.Actor{Type: trail.ActorUser, ID: "42"}, Action: "subscription.update"}
		ev.Normalize()
		out = append(out, ev)
	}
	return out
}

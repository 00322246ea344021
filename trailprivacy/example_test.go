package trailprivacy_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailprivacy"
)

func Example() {
	ctx := context.Background()
	kms, _ := trailprivacy.NewLocalKMS(bytes.Repeat([]byte{7}, 32)) // use OpenMasterKey in a program
	policy, _ := trailprivacy.ParsePolicy("customer_ref hmac\n")
	p, _ := trailprivacy.New(ctx, trailprivacy.Config{Policy: policy, KMS: kms, Keys: trailprivacy.NewMemoryKeyStore()})

	ev := trail.Event{
		Tenant: "acme",
		Actor:  trail.Actor{Type: trail.ActorUser, ID: "42", Email: "alice@example.com"},
		Action: "user.update",
		Changes: []trail.Change{
			trail.Changed("password", "old", "new"),
			trail.Changed("customer_ref", nil, "C-1001"),
		},
	}
	_ = ev.Normalize()
	_ = p.Transform(ctx, &ev) // what a Client with Config.Transform: p stores

	fmt.Println("email stored encrypted:", trailprivacy.IsStored(ev.Actor.Email))
	fmt.Println("password redacted:", ev.Changes[0].Redacted)
	fmt.Println("customer_ref searchable:", string(ev.Changes[1].New) == `"`+p.HashFor("acme", "C-1001")+`"`)

	_ = p.Forget(ctx, "acme", "user:42")
	_ = p.Reveal(ctx, &ev)
	fmt.Println("after forget:", ev.Actor.Email)
	// Output:
	// email stored encrypted: true
	// password redacted: true
	// customer_ref searchable: true
	// after forget: [erased]
}

package trail_test

import (
	"context"
	"fmt"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailtest"
)

// RecordTx writes the event in the caller's transaction: it exists if and
// only if the business change commits. The actor and tenant come from the
// context, set once per request by middleware. The in-memory store of
// trailtest stands in here for SQLite (*sql.Tx) or PostgreSQL (pgx.Tx).
func ExampleClient_RecordTx() {
	store := trailtest.NewStore()
	client, err := trail.NewClient(store, &trail.Config{Source: "billing", Plaintext: true})
	if err != nil {
		fmt.Println(err)
		return
	}

	ctx := trail.WithActor(context.Background(), trail.Actor{Type: trail.ActorUser, ID: "42", Name: "Ada"})
	ctx = trail.WithTenant(ctx, "acme")

	type Subscription struct {
		ID   string `json:"id"`
		Plan string `json:"plan"`
	}
	before := Subscription{ID: "sub_1", Plan: "free"}
	after := Subscription{ID: "sub_1", Plan: "pro"}
	changes, err := trail.Diff(before, after)
	if err != nil {
		fmt.Println(err)
		return
	}

	tx := store.Begin() // db.BeginTx(ctx, nil) with a real database
	// ... the business write: UPDATE subscriptions SET plan = 'pro' ...
	if _, err := client.RecordTx(ctx, tx, trail.Event{
		Action:      "subscription.update",
		Target:      trail.Target{Type: "subscription", ID: after.ID},
		Description: "Changed subscription plan to pro",
		Changes:     changes,
	}); err != nil {
		tx.Rollback()
		fmt.Println(err)
		return
	}
	if err := tx.Commit(); err != nil {
		fmt.Println(err)
		return
	}

	// Who changed that subscription?
	page, err := store.Query(ctx, trail.Query{Tenant: "acme", TargetType: "subscription", TargetID: "sub_1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, ev := range page.Events {
		fmt.Printf("%s %s by %s (%s) via %s: %s %s → %s\n", ev.Tenant, ev.Action, ev.Actor, ev.Actor.Name, ev.Source,
			ev.Changes[0].Field, ev.Changes[0].Old, ev.Changes[0].New)
	}
	// Output:
	// acme subscription.update by user:42 (Ada) via billing: plan "free" → "pro"
}

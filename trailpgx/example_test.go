package trailpgx_test

import (
	"context"
	"log"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailpgx"
)

// Recording in the caller's transaction: the plan change and its audit event
// commit together or not at all.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:5432/test")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	store, err := trailpgx.New(ctx, pool, nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	client, err := trail.NewClient[pgx.Tx](store, &trail.Config{Source: "billing", Plaintext: true})
	if err != nil {
		log.Fatal(err)
	}

	// Middleware puts these in the request's context.
	ctx = trail.WithTenant(ctx, "acme")
	ctx = trail.WithActor(ctx, trail.Actor{Type: trail.ActorUser, ID: "42"})

	err = trailpgx.WithTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "UPDATE subscriptions SET plan = $1 WHERE id = $2", "pro", "sub_1"); err != nil {
			return err
		}
		_, err := client.RecordTx(ctx, tx, trail.Event{
			Action:      "subscription.update",
			Target:      trail.Target{Type: "subscription", ID: "sub_1"},
			Description: "Changed subscription plan to pro for tenant acme",
			Changes:     []trail.Change{trail.Changed("plan", "free", "pro")},
		})
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
}

// Queue sends the audit insert in the same batch as the business statements.
func ExampleQueue() {
	ctx := context.Background()
	pool, _ := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:5432/test")
	store, _ := trailpgx.New(ctx, pool, nil)
	client, _ := trail.NewClient[pgx.Tx](store, &trail.Config{Plaintext: true})

	err := trailpgx.WithTx(ctx, pool, func(tx pgx.Tx) error {
		batch := &pgx.Batch{}
		batch.Queue("DELETE FROM users WHERE id = $1", "17")
		if _, err := trailpgx.Queue(ctx, client, batch, trail.Event{
			Action: "user.delete", Target: trail.Target{Type: "user", ID: "17"},
		}); err != nil {
			return err
		}
		return tx.SendBatch(ctx, batch).Close()
	})
	if err != nil {
		log.Fatal(err)
	}
}

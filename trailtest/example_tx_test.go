package trailtest_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailtest"
)

// planService is code under test that records in its own transactions. It
// depends on trail.TxRecorder, not on the client: production passes the
// *trail.Client from trailpgx.NewClient, tests a trailtest.TxRecorder.
type planService struct {
	pool  *pgxpool.Pool
	audit trail.TxRecorder[pgx.Tx]
}

var errTooFewSeats = errors.New("the plan has fewer seats than the tenant has users")

// seats of each plan.
var seats = map[string]int{"free": 2, "pro": 50}

// ChangePlan changes a subscription's plan and records it in the same
// transaction. The seat check comes after the event is recorded: when it
// fails, the transaction rolls back and takes the event with it.
func (s *planService) ChangePlan(ctx context.Context, sub, from, to string, users int) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// … UPDATE subscriptions SET plan = $1 WHERE id = $2 …
		_, err := s.audit.RecordTx(ctx, tx, trail.Event{
			Action:      "subscription.update",
			Target:      trail.Target{Type: "subscription", ID: sub},
			Description: "Changed subscription plan to " + to,
			Changes:     []trail.Change{trail.Changed("plan", from, to)},
		})
		if err != nil {
			return err
		}
		if users > seats[to] {
			return fmt.Errorf("plan %s: %w", to, errTooFewSeats)
		}
		return nil
	})
}

// A failed plan change leaves no event: its transaction rolled back. The
// recorder takes the service's real pgx transactions, keeps the event of
// the change that committed and drops the one whose transaction rolled
// back; RolledBack shows that the failed change did record, and lost its
// event with its transaction.
//
// This example needs a PostgreSQL server (TRAIL_TEST_POSTGRES), so it is
// not run by go test; TestExampleTxRecorder runs the same. In a test, pass t
// to NewTxRecorder and assert with trailtest.RequireRecorded and
// trailtest.RequireNotRecorded. It prints:
//
//	change to free: plan free: the plan has fewer seats than the tenant has users
//	change to pro: <nil>
//	kept: subscription.update: Changed subscription plan to pro
//	rolled back: subscription.update: Changed subscription plan to free
func ExampleNewTxRecorder() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("TRAIL_TEST_POSTGRES"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	rec := trailtest.NewTxRecorder(nil, pool) // NewTxRecorder(t, pool) in a test
	svc := &planService{pool: pool, audit: rec}

	ctx = trail.WithTenant(trail.WithActor(ctx, trail.Actor{Type: trail.ActorUser, ID: "42"}), "acme")
	fmt.Println("change to free:", svc.ChangePlan(ctx, "sub_acme", "team", "free", 3))
	fmt.Println("change to pro:", svc.ChangePlan(ctx, "sub_acme", "team", "pro", 3))

	for _, ev := range rec.Events() {
		fmt.Printf("kept: %s: %s\n", ev.Action, ev.Description)
	}
	for _, ev := range rec.RolledBack() {
		fmt.Printf("rolled back: %s: %s\n", ev.Action, ev.Description)
	}
}

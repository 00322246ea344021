package trailpgx_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailstoretest"
)

func TestConformance(t *testing.T) {
	trailstoretest.Run(t, trailstoretest.Harness{NewStore: func(t *testing.T) trail.Store {
		return newStore(t, nil)
	}})
}

func TestConformanceTx(t *testing.T) {
	trailstoretest.RunTx(t, trailstoretest.TxHarness[pgx.Tx]{
		NewStore: func(t *testing.T) trail.TxStore[pgx.Tx] { return newStore(t, nil) },
		Begin: func(ctx context.Context, t *testing.T, s trail.TxStore[pgx.Tx]) pgx.Tx {
			tx, err := testPool(t).Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return tx
		},
		Commit:   func(ctx context.Context, tx pgx.Tx) error { return tx.Commit(ctx) },
		Rollback: func(ctx context.Context, tx pgx.Tx) error { return tx.Rollback(ctx) },
	})
}

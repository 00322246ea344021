package trailtest_test

import (
	"context"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailstoretest"
	"github.com/trailhq/trail/trailtest"
)

func newStore(t *testing.T) *trailtest.Store {
	s := trailtest.NewStore()
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	trailstoretest.Run(t, trailstoretest.Harness{
		NewStore: func(t *testing.T) trail.Store { return newStore(t) },
	})
}

func TestConformanceTx(t *testing.T) {
	trailstoretest.RunTx(t, trailstoretest.TxHarness[*trailtest.Tx]{
		NewStore: func(t *testing.T) trail.TxStore[*trailtest.Tx] { return newStore(t) },
		Begin: func(_ context.Context, _ *testing.T, s trail.TxStore[*trailtest.Tx]) *trailtest.Tx {
			return s.(*trailtest.Store).Begin()
		},
		Commit:   func(_ context.Context, tx *trailtest.Tx) error { return tx.Commit() },
		Rollback: func(_ context.Context, tx *trailtest.Tx) error { return tx.Rollback() },
	})
}

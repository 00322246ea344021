package trailsqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailstoretest"
)

// openStore opens a store in a new file of t's temporary directory.
func openStore(t testing.TB, cfg *trailsqlite.Config) *trailsqlite.Store {
	t.Helper()
	s, err := trailsqlite.Open(context.Background(), filepath.Join(t.TempDir(), "trail.db"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	trailstoretest.Run(t, trailstoretest.Harness{
		NewStore: func(t *testing.T) trail.Store { return openStore(t, nil) },
	})
}

func TestConformanceTx(t *testing.T) {
	trailstoretest.RunTx(t, trailstoretest.TxHarness[*sql.Tx]{
		NewStore: func(t *testing.T) trail.TxStore[*sql.Tx] { return openStore(t, nil) },
		Begin: func(ctx context.Context, t *testing.T, s trail.TxStore[*sql.Tx]) *sql.Tx {
			tx, err := s.(*trailsqlite.Store).DB().BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			return tx
		},
		Commit:   func(_ context.Context, tx *sql.Tx) error { return tx.Commit() },
		Rollback: func(_ context.Context, tx *sql.Tx) error { return tx.Rollback() },
	})
}

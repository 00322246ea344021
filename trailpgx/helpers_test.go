package trailpgx_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/trailpgx"
)

// testPool returns the package's shared pool to the test server, or skips
// (fails in CI) when the server is not there.
func testPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return testenv.PostgresPool(t, 16)
}

// newStore returns a migrated store in a fresh schema of its own, dropped at
// the end of the test.
func newStore(t testing.TB, cfg *trailpgx.Config) *trailpgx.Store {
	t.Helper()
	p := testPool(t)
	var c trailpgx.Config
	if cfg != nil {
		c = *cfg
	}
	if c.Schema == "" {
		c.Schema = testenv.FreshSchema(t, p)
	}
	ctx := context.Background()
	s, err := trailpgx.New(ctx, p, &c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

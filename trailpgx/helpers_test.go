package trailpgx_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/trailpgx"
	"github.com/trailhq/trail/trailseal"
	"github.com/trailhq/trail/trailseal/sealtest"
	"golang.org/x/mod/sumdb/note"
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

// testSealer is a sealer of s under the test key (origin trail.test), and
// the key's verifier.
func testSealer(t testing.TB, s *trailpgx.Store) (*trailseal.Sealer, note.Verifier) {
	t.Helper()
	signer, verifier := sealtest.TestKey(t, "trail.test")
	sl, err := trailseal.NewSealer(s, &trailseal.Config{Signer: signer, Origin: "trail.test"})
	if err != nil {
		t.Fatal(err)
	}
	return sl, verifier
}

package trailpgx_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/trailpgx"
)

var (
	poolOnce sync.Once
	pool     *pgxpool.Pool
	poolErr  error
)

// testPool returns the package's shared pool to the test server, or skips
// (fails in CI) when the server is not there.
func testPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	poolOnce.Do(func() {
		cfg, err := pgxpool.ParseConfig(testenv.PostgresDSN())
		if err != nil {
			poolErr = err
			return
		}
		cfg.MaxConns = 16
		pool, poolErr = pgxpool.NewWithConfig(context.Background(), cfg)
		if poolErr == nil {
			poolErr = pool.Ping(context.Background())
		}
	})
	if poolErr != nil {
		testenv.Unavailable(t, "PostgreSQL", poolErr)
	}
	return pool
}

// schemaName returns a fresh schema name for one test.
func schemaName(t testing.TB) string {
	var b [6]byte
	rand.Read(b[:])
	n := strings.ToLower(t.Name())
	n = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, n)
	if len(n) > 40 {
		n = n[len(n)-40:]
	}
	return "t_" + n + "_" + hex.EncodeToString(b[:])
}

// newStore returns a migrated store in a schema of its own, dropped at the
// end of the test.
func newStore(t testing.TB, cfg *trailpgx.Config) *trailpgx.Store {
	t.Helper()
	p := testPool(t)
	var c trailpgx.Config
	if cfg != nil {
		c = *cfg
	}
	if c.Schema == "" {
		c.Schema = schemaName(t)
	}
	ctx := context.Background()
	s, err := trailpgx.New(ctx, p, &c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := p.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{c.Schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

package trailserver_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/trailpgx"
)

func init() {
	backends = append(backends, backend{"postgres", openPostgres})
}

var (
	pgOnce sync.Once
	pgPool *pgxpool.Pool
	pgDB   *sql.DB
	pgErr  error
)

// openPostgres returns a trailpgx store and a key store in a schema of
// their own on the test server, dropped when the test ends. Without the
// server the test skips (fails in CI).
func openPostgres(t testing.TB) (trail.Store, trailserver.KeyStore) {
	t.Helper()
	pgOnce.Do(func() {
		cfg, err := pgxpool.ParseConfig(testenv.PostgresDSN())
		if err != nil {
			pgErr = err
			return
		}
		cfg.MaxConns = 16
		if pgPool, pgErr = pgxpool.NewWithConfig(context.Background(), cfg); pgErr == nil {
			pgErr = pgPool.Ping(context.Background())
		}
		if pgErr == nil {
			pgDB = stdlib.OpenDBFromPool(pgPool)
		}
	})
	if pgErr != nil {
		testenv.Unavailable(t, "PostgreSQL", pgErr)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "t_server_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	st, err := trailpgx.New(ctx, pgPool, &trailpgx.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := pgPool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	ks, err := trailserver.NewPostgresKeyStore(ctx, pgDB, schema)
	if err != nil {
		t.Fatal(err)
	}
	return st, ks
}

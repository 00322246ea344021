package trailprivacy_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/trailhq/trail/trailprivacy"
	"github.com/trailhq/trail/trailprivacy/keystoretest"
)

func TestMemoryKeyStore(t *testing.T) {
	t.Parallel()
	keystoretest.Run(t, trailprivacy.NewMemoryKeyStore())
}

func TestSQLKeyStorePostgres(t *testing.T) {
	db := trailprivacy.PGSchema(t)
	ctx := context.Background()
	// The test's own schema (the connection's search_path), named: the
	// default of NewSQLKeyStore on PostgreSQL is the shared schema "trail".
	var schema string
	if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	ks, err := trailprivacy.NewSQLKeyStoreIn(db, schema)
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ks.Init(ctx); err != nil {
		t.Fatalf("Init twice: %v", err)
	}
	keystoretest.Run(t, ks)
}

// TestSQLKeyStorePostgresSchema runs the contract on a store whose table is
// qualified with a schema of its own, over a connection whose search_path
// does not name it: the deployment's schema, not the connection, decides.
func TestSQLKeyStorePostgresSchema(t *testing.T) {
	db := trailprivacy.PGSchema(t)
	ctx := context.Background()
	schema := "trailprivacy_q_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	t.Cleanup(func() { db.ExecContext(context.Background(), `DROP SCHEMA IF EXISTS "`+schema+`" CASCADE`) })
	ks, err := trailprivacy.NewSQLKeyStoreIn(db, schema)
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ks.Init(ctx); err != nil {
		t.Fatalf("Init twice: %v", err)
	}
	keystoretest.Run(t, ks)
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = 'trail_subject_keys'`, schema).Scan(&n); err != nil || n != 1 {
		t.Fatalf("table not in schema %s: %d %v", schema, n, err)
	}
	if _, err := trailprivacy.NewSQLKeyStoreIn(db, `a"b`); err == nil {
		t.Fatal("a schema name with a quote was accepted")
	}
}

package trailprivacy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/trailhq/trail/internal/testenv"
)

// pgSchema opens the test PostgreSQL server in a fresh schema of its own.
func pgSchema(t *testing.T) *sql.DB {
	t.Helper()
	testenv.Dial(t, "PostgreSQL", "127.0.0.1:5432")
	ctx := context.Background()
	admin, err := sql.Open("pgx", testenv.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.PingContext(ctx); err != nil {
		testenv.Unavailable(t, "PostgreSQL", err)
	}
	schema := fmt.Sprintf("trailprivacy_%d", time.Now().UnixNano())
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("pgx", testenv.PostgresDSN())
		if err == nil {
			a.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			a.Close()
		}
	})
	db, err := sql.Open("pgx", testenv.PostgresDSN()+"&search_path="+schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestPrivacyPostgres runs the whole layer over the SQL key store on
// PostgreSQL: erase, and a wrong master key at startup.
func TestPrivacyPostgres(t *testing.T) {
	db := pgSchema(t)
	ctx := context.Background()
	var schema string
	if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	ks, err := NewSQLKeyStoreIn(db, schema) // the test's own schema, not the default "trail"
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Init(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := New(ctx, Config{KMS: testKMS(t, 1), Keys: ks})
	if err != nil {
		t.Fatal(err)
	}
	ev := sampleEvent(t)
	if err := p.Transform(ctx, &ev); err != nil {
		t.Fatal(err)
	}
	if err := p.Forget(ctx, "acme", "user:42"); err != nil {
		t.Fatal(err)
	}
	if err := p.Reveal(ctx, &ev); err != nil || ev.Actor.Email != Erased || ev.Target.Name != "Carol Customer" {
		t.Fatalf("reveal after forget on PostgreSQL: %v %+v %+v", err, ev.Actor, ev.Target)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM trail_subject_keys WHERE subject = 'user:42' AND wrapped_key IS NOT NULL`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("key material left for a forgotten subject: %d, %v", n, err)
	}
	if _, err := New(ctx, Config{KMS: testKMS(t, 9), Keys: ks}); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("wrong master key on PostgreSQL = %v", err)
	}
}

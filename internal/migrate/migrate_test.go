package migrate_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/trailhq/trail/internal/migrate"
	"github.com/trailhq/trail/internal/testenv"
)

func TestLoad(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	ms, err := migrate.Load(fstest.MapFS{
		"m/0002_add_index.up.sql": file("CREATE INDEX i ON t (x);"),
		"m/0001_init.up.sql":      file("CREATE TABLE t (x INT);"),
		"m/0001_init.down.sql":    file("DROP TABLE t;"),
		"m/README.md":             file("ignored"),
	}, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Version != 1 || ms[0].Name != "init" || ms[1].String() != "0002_add_index" || !strings.Contains(ms[1].SQL, "INDEX") {
		t.Fatalf("Load = %+v", ms)
	}
	for _, c := range []struct {
		name  string
		files fstest.MapFS
		want  string
	}{
		{"gap", fstest.MapFS{"m/0001_a.up.sql": file("x"), "m/0003_c.up.sql": file("x")}, "0003_c: expected version 2"},
		{"repeat", fstest.MapFS{"m/0001_a.up.sql": file("x"), "m/0001_b.up.sql": file("x")}, "appears twice"},
		{"not from 1", fstest.MapFS{"m/0002_a.up.sql": file("x")}, "expected version 1"},
		{"bad name", fstest.MapFS{"m/1_Init.up.sql": file("x")}, "1_Init.up.sql: name must be"},
		{"zero", fstest.MapFS{"m/0000_a.up.sql": file("x")}, "bad version"},
		{"empty file", fstest.MapFS{"m/0001_a.up.sql": file("  \n")}, "empty"},
		{"none", fstest.MapFS{"m/README": file("x")}, "no migrations"},
		{"no dir", fstest.MapFS{}, "read m"},
	} {
		_, err := migrate.Load(c.files, "m")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to contain %q", c.name, err, c.want)
		}
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := migrate.New([]migrate.Migration{{Version: 2, Name: "x", SQL: "x"}}, nil); err == nil {
		t.Error("New with a gap: no error")
	}
	if _, err := migrate.New(nil, &migrate.Config{Table: "x; DROP TABLE y"}); err == nil {
		t.Error("New with a hostile table name: no error")
	}
}

// pgDB returns a database/sql handle on PostgreSQL whose search_path is a new
// schema of its own, dropped at cleanup.
func pgDB(t *testing.T) *sql.DB {
	t.Helper()
	admin, err := sql.Open("pgx", testenv.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if err := admin.Ping(); err != nil {
		testenv.Unavailable(t, "postgresql", err)
	}
	schema := fmt.Sprintf("migrate_test_%d", rand.Uint64())
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec("DROP SCHEMA " + schema + " CASCADE") })
	sep := "?"
	if strings.Contains(testenv.PostgresDSN(), "?") {
		sep = "&"
	}
	db, err := sql.Open("pgx", testenv.PostgresDSN()+sep+"search_path="+schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var twoMigrations = []migrate.Migration{
	{Version: 1, Name: "init", SQL: "CREATE TABLE t (x INT); INSERT INTO t VALUES (1);"},
	{Version: 2, Name: "more", SQL: "ALTER TABLE t ADD COLUMN y TEXT; CREATE INDEX t_y ON t (y);"},
}

func TestUpOnPostgres(t *testing.T) {
	ctx := context.Background()
	db := migrate.SQLDB(pgDB(t))
	m, err := migrate.New(twoMigrations[:1], nil)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := m.Status(ctx, db); err != nil || v != 0 {
		t.Fatalf("Status of a new database = %d, %v", v, err)
	}
	if n, err := m.Up(ctx, db); err != nil || n != 1 {
		t.Fatalf("Up = %d, %v", n, err)
	}
	m2, _ := migrate.New(twoMigrations, nil)
	if n, err := m2.Up(ctx, db); err != nil || n != 1 {
		t.Fatalf("Up of the second = %d, %v", n, err)
	}
	if n, err := m2.Up(ctx, db); err != nil || n != 0 {
		t.Fatalf("Up again = %d, %v; want nothing to do", n, err)
	}
	// The first binary, knowing one migration, refuses the newer database.
	if _, err := m.Up(ctx, db); !errors.Is(err, migrate.ErrTooNew) || !strings.Contains(err.Error(), "0002_more") {
		t.Fatalf("older migrator: err = %v, want ErrTooNew naming 0002_more", err)
	}
	// A binary whose history differs is refused too.
	other, _ := migrate.New([]migrate.Migration{{Version: 1, Name: "different", SQL: "SELECT 1"}, twoMigrations[1]}, nil)
	if _, err := other.Up(ctx, db); err == nil || !strings.Contains(err.Error(), "not the same schema history") {
		t.Fatalf("different history: err = %v", err)
	}
}

func TestFailedMigrationRollsBack(t *testing.T) {
	ctx := context.Background()
	raw := pgDB(t)
	db := migrate.SQLDB(raw)
	broken := append(twoMigrations[:1:1], migrate.Migration{Version: 2, Name: "broken",
		SQL: "CREATE TABLE half (x INT); ALTER TABLE nowhere ADD COLUMN z INT;"})
	m, _ := migrate.New(broken, nil)
	n, err := m.Up(ctx, db)
	if n != 1 || err == nil || !strings.Contains(err.Error(), "migration 0002_broken failed") {
		t.Fatalf("Up = %d, %v; want 1 applied and an error naming 0002_broken", n, err)
	}
	if v, _ := m.Status(ctx, db); v != 1 {
		t.Errorf("version after the failure = %d, want 1", v)
	}
	var exists bool
	raw.QueryRow("SELECT to_regclass('half') IS NOT NULL").Scan(&exists)
	if exists {
		t.Error("table of the failed migration exists: not rolled back")
	}
}

func TestConcurrentUpOnPostgres(t *testing.T) {
	ctx := context.Background()
	raw := pgDB(t)
	m, _ := migrate.New(twoMigrations, &migrate.Config{Lock: "SELECT pg_advisory_xact_lock(727274)"})
	var wg sync.WaitGroup
	var mu sync.Mutex
	applied := 0
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := m.Up(ctx, migrate.SQLDB(raw))
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			applied += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	var rows int
	raw.QueryRow("SELECT count(*) FROM t").Scan(&rows)
	if applied != 2 || rows != 1 {
		t.Errorf("4 concurrent migrators applied %d migrations and left %d rows; want 2 and 1", applied, rows)
	}
}

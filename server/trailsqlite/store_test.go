package trailsqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/migrate"
	"github.com/trailhq/trail/server/trailsqlite"
)

func newEvent(t testing.TB, tenant, action string) trail.Event {
	t.Helper()
	ev := trail.Event{Tenant: tenant, Actor: trail.Actor{Type: trail.ActorUser, ID: "42"}, Action: action,
		Description: "Changed subscription plan to pro", Changes: []trail.Change{trail.Changed("plan", "free", "pro")}}
	if err := ev.Normalize(); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestOpenRefusesForeignFiles(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		content []byte
	}{
		{"text", []byte("hello, this is a text file and certainly not a database\n")},
		{"short", []byte("SQL")},
		{"json", []byte(`{"events":[]}`)},
		{"sqlite header, garbage body", append([]byte("SQLite format 3\x00"), bytes.Repeat([]byte{0xAB}, 4096)...)},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "data.db")
			if err := os.WriteFile(path, c.content, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := trailsqlite.Open(ctx, path, nil)
			if err == nil {
				s.Close()
				t.Fatalf("Open of a %s file: no error", c.name)
			}
			if !errors.Is(err, trailsqlite.ErrNotTrailDatabase) {
				t.Errorf("error does not match ErrNotTrailDatabase: %v", err)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not a Trail database") {
				t.Errorf("error %q should name the path and say it is not a Trail database", err)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, c.content) {
				t.Errorf("Open changed the file")
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if e.Name() != "data.db" {
					t.Errorf("Open left %s beside the file", e.Name())
				}
			}
		})
	}
	t.Run("directory", func(t *testing.T) {
		if _, err := trailsqlite.Open(ctx, t.TempDir(), nil); err == nil || !strings.Contains(err.Error(), "directory") {
			t.Errorf("Open of a directory: err = %v", err)
		}
	})
	t.Run("memory", func(t *testing.T) {
		if _, err := trailsqlite.Open(ctx, ":memory:", nil); err == nil {
			t.Errorf("Open(:memory:): no error")
		}
	})
	t.Run("empty file is a new database", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "empty.db")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := trailsqlite.Open(ctx, path, nil)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	})
}

func TestReopenKeepsEvents(t *testing.T) {
	ctx := context.Background()
	// A path with characters that mean something in a SQLite URI.
	path := filepath.Join(t.TempDir(), "my trail?v=1#x%41.db")
	s, err := trailsqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := newEvent(t, "acme", "user.delete")
	if _, err := s.Append(ctx, []trail.Event{ev}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the path given: %v", err)
	}
	s, err = trailsqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Get(ctx, ev.ID)
	if err != nil || got.Action != "user.delete" {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	res, err := s.Append(ctx, []trail.Event{ev})
	if err != nil || !res[0].Duplicate {
		t.Fatalf("append after reopen: %+v, %v; want a duplicate", res, err)
	}
	var mode string
	if err := s.DB().QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
}

func TestMigrations(t *testing.T) {
	ctx := context.Background()
	t.Run("skip then migrate", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "t.db")
		s, err := trailsqlite.Open(ctx, path, &trailsqlite.Config{SkipMigrate: true})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		cur, latest, err := s.SchemaVersion(ctx)
		if err != nil || cur != 0 || latest < 1 {
			t.Fatalf("SchemaVersion = %d, %d, %v; want 0, ≥1", cur, latest, err)
		}
		if _, err := s.Append(ctx, []trail.Event{newEvent(t, "acme", "user.create")}); err == nil {
			t.Fatal("Append before migrating: no error")
		}
		for range 2 { // idempotent
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if cur, latest, _ := s.SchemaVersion(ctx); cur != latest {
			t.Fatalf("after Migrate: version %d of %d", cur, latest)
		}
		if _, err := s.Append(ctx, []trail.Event{newEvent(t, "acme", "user.create")}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("newer database refused", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "t.db")
		s, err := trailsqlite.Open(ctx, path, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, latest, _ := s.SchemaVersion(ctx)
		if _, err := s.DB().Exec(fmt.Sprintf("INSERT INTO trail_migrations (version, name, applied_at) VALUES (%d, 'from_the_future', 0)", latest+1)); err != nil {
			t.Fatal(err)
		}
		s.Close()
		_, err = trailsqlite.Open(ctx, path, nil)
		if !errors.Is(err, migrate.ErrTooNew) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "from_the_future") {
			t.Fatalf("Open of a newer database: err = %v; want ErrTooNew naming the path and migration", err)
		}
	})
	t.Run("caller tables in the same file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "t.db")
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("CREATE TABLE subscriptions (id TEXT PRIMARY KEY, plan TEXT)"); err != nil {
			t.Fatal(err)
		}
		db.Close()
		s, err := trailsqlite.Open(ctx, path, nil)
		if err != nil {
			t.Fatalf("Open of an SQLite file with the caller's tables: %v", err)
		}
		s.Close()
	})
}

// TestMigratorOnSQLite runs the shared migrator against real SQLite: a
// failing migration is named, rolled back whole, and leaves the version.
func TestMigratorOnSQLite(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "m.db")+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	good := []migrate.Migration{
		{Version: 1, Name: "one", SQL: "CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1);"},
		{Version: 2, Name: "two", SQL: "CREATE TABLE b (y TEXT);"},
	}
	m, err := migrate.New(good, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := m.Up(ctx, migrate.SQLDB(db)); err != nil || n != 2 {
		t.Fatalf("Up = %d, %v", n, err)
	}
	bad := append(good, migrate.Migration{Version: 3, Name: "broken", SQL: "CREATE TABLE c (z INTEGER); INSERT INTO nowhere VALUES (1);"})
	m, _ = migrate.New(bad, nil)
	_, err = m.Up(ctx, migrate.SQLDB(db))
	if err == nil || !strings.Contains(err.Error(), "0003_broken") {
		t.Fatalf("failing migration: err = %v; want it named", err)
	}
	if v, _ := m.Status(ctx, migrate.SQLDB(db)); v != 2 {
		t.Errorf("version after failure = %d, want 2", v)
	}
	var n int
	db.QueryRow("SELECT count(*) FROM sqlite_master WHERE name = 'c'").Scan(&n)
	if n != 0 {
		t.Errorf("the failed migration's table c exists: not rolled back")
	}
	// Concurrent migrators on one file apply each migration once.
	fresh := filepath.Join(t.TempDir(), "c.db")
	m, _ = migrate.New(good, nil)
	var wg sync.WaitGroup
	total := make([]int, 4)
	errs := make([]error, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := sql.Open("sqlite", "file:"+fresh+"?_txlock=immediate&_pragma=busy_timeout(10000)")
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			total[i], errs[i] = m.Up(ctx, migrate.SQLDB(db))
		}()
	}
	wg.Wait()
	sum := 0
	for i := range 4 {
		if errs[i] != nil {
			t.Fatalf("concurrent Up: %v", errs[i])
		}
		sum += total[i]
	}
	if sum != 2 {
		t.Errorf("concurrent migrators applied %d migrations in all, want 2", sum)
	}
}

func TestAppendRejectsUnnormalized(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, nil)
	good := newEvent(t, "acme", "user.create")
	for name, mut := range map[string]func(*trail.Event){
		"id":             func(ev *trail.Event) { ev.ID = uuid.Nil },
		"occurred_at":    func(ev *trail.Event) { ev.OccurredAt = time.Time{} },
		"action":         func(ev *trail.Event) { ev.Action = "" },
		"actor.type":     func(ev *trail.Event) { ev.Actor.Type = "" },
		"outcome":        func(ev *trail.Event) { ev.Outcome = "" },
		"schema_version": func(ev *trail.Event) { ev.SchemaVersion = 0 },
	} {
		bad := newEvent(t, "acme", "user.create")
		mut(&bad)
		_, err := s.Append(ctx, []trail.Event{good, bad})
		if !errors.Is(err, trail.ErrInvalid) || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "event 1") {
			t.Errorf("%s: err = %v; want ErrInvalid naming event 1 and the field", name, err)
		}
	}
	if _, err := s.Get(ctx, good.ID); !errors.Is(err, trail.ErrNotFound) {
		t.Errorf("a rejected batch wrote its good event")
	}
	if _, err := s.AppendTx(ctx, nil, []trail.Event{good}); err == nil {
		t.Errorf("AppendTx(nil tx): no error")
	}
}

// TestWritersDoNotDeadlock has several stores on one file (as separate
// processes would) run transactions that read and then write. With deferred
// transactions two of them would each hold a read lock and fail to upgrade
// (SQLITE_BUSY at once, whatever the timeout); IMMEDIATE makes them queue.
func TestWritersDoNotDeadlock(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	const writers, rounds = 4, 15
	stores := make([]*trailsqlite.Store, writers)
	for i := range stores {
		s, err := trailsqlite.Open(ctx, path, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	if _, err := stores[0].DB().Exec("CREATE TABLE IF NOT EXISTS counter (n INTEGER)"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[w]
			for range rounds {
				err := func() error {
					tx, err := s.DB().BeginTx(ctx, nil)
					if err != nil {
						return err
					}
					defer tx.Rollback()
					var n int
					if err := tx.QueryRow("SELECT count(*) FROM trail_events").Scan(&n); err != nil {
						return err
					}
					if _, err := tx.Exec("INSERT INTO counter VALUES (?)", n); err != nil {
						return err
					}
					if _, err := s.AppendTx(ctx, tx, []trail.Event{newEvent(t, "acme", "counter.bump")}); err != nil {
						return err
					}
					return tx.Commit()
				}()
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("writer: %v", err)
	}
	var events, counts, distinct int
	stores[0].DB().QueryRow("SELECT count(*) FROM trail_events").Scan(&events)
	stores[0].DB().QueryRow("SELECT count(*), count(DISTINCT n) FROM counter").Scan(&counts, &distinct)
	if events != writers*rounds || counts != writers*rounds || distinct != writers*rounds {
		t.Errorf("events %d, counter rows %d (%d distinct); want %d each: transactions were not serialized",
			events, counts, distinct, writers*rounds)
	}
}

func TestEventsAreAppendOnly(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, nil)
	ev := newEvent(t, "acme", "user.create")
	if _, err := s.Append(ctx, []trail.Event{ev}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().Exec("UPDATE trail_events SET action = 'user.delete'"); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("UPDATE of an event: err = %v, want append-only refusal", err)
	}
	// Deleting (retention's path) keeps the search tables in step.
	if _, err := s.DB().Exec("DELETE FROM trail_events"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"SELECT count(*) FROM trail_event_fields", "SELECT count(*) FROM trail_events_fts WHERE trail_events_fts MATCH 'plan'"} {
		var n int
		if err := s.DB().QueryRow(q).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s = %d, %v after delete; want 0", q, n, err)
		}
	}
}

// TestBatchFailingInsideSQLiteWritesNothing makes the database itself refuse
// the last event of a batch larger than one INSERT statement: the chunks
// already inserted must be rolled back with it.
func TestBatchFailingInsideSQLiteWritesNothing(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, nil)
	if _, err := s.DB().Exec(`CREATE TRIGGER test_boom BEFORE INSERT ON trail_events
		WHEN new.action = 'boom.now' BEGIN SELECT RAISE(ABORT, 'boom'); END`); err != nil {
		t.Fatal(err)
	}
	var batch []trail.Event
	for range 2500 {
		batch = append(batch, newEvent(t, "acme", "user.create"))
	}
	batch = append(batch, newEvent(t, "acme", "boom.now"))
	if _, err := s.Append(ctx, batch); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Append: err = %v, want the trigger's refusal", err)
	}
	var n int
	if err := s.DB().QueryRow("SELECT count(*) FROM trail_events").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d events stored after a failed batch (%v); want 0", n, err)
	}
	// In the caller's transaction: the error comes back, the caller decides.
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendTx(ctx, tx, batch); err == nil {
		t.Fatal("AppendTx: no error")
	}
	tx.Rollback()
	if err := s.DB().QueryRow("SELECT count(*) FROM trail_events").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d events after rollback; want 0", n)
	}
}

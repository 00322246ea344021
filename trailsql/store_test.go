package trailsql_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/trailpgx"
	"github.com/trailhq/trail/trailsql"
	"github.com/trailhq/trail/trailstoretest"
)

var (
	dbOnce sync.Once
	db     *sql.DB
	dbErr  error
)

func testDB(t testing.TB) *sql.DB {
	t.Helper()
	dbOnce.Do(func() {
		db, dbErr = sql.Open("pgx", testenv.PostgresDSN())
		if dbErr == nil {
			db.SetMaxOpenConns(16)
			dbErr = db.PingContext(context.Background())
		}
	})
	if dbErr != nil {
		testenv.Unavailable(t, "PostgreSQL", dbErr)
	}
	return db
}

func newStore(t testing.TB) *trailsql.Store {
	t.Helper()
	d := testDB(t)
	var b [6]byte
	rand.Read(b[:])
	schema := "t_sql_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	s, err := trailsql.New(ctx, d, &trailpgx.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := d.ExecContext(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	trailstoretest.Run(t, trailstoretest.Harness{NewStore: func(t *testing.T) trail.Store { return newStore(t) }})
}

func TestConformanceTx(t *testing.T) {
	trailstoretest.RunTx(t, trailstoretest.TxHarness[*sql.Tx]{
		NewStore: func(t *testing.T) trail.TxStore[*sql.Tx] { return newStore(t) },
		Begin: func(ctx context.Context, t *testing.T, s trail.TxStore[*sql.Tx]) *sql.Tx {
			tx, err := testDB(t).BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			return tx
		},
		Commit:   func(ctx context.Context, tx *sql.Tx) error { return tx.Commit() },
		Rollback: func(ctx context.Context, tx *sql.Tx) error { return tx.Rollback() },
	})
}

func userCtx() context.Context {
	ctx := trail.WithTenant(context.Background(), "acme")
	ctx = trail.WithActor(ctx, trail.Actor{Type: trail.ActorUser, ID: "42"})
	return trail.WithRequest(ctx, trail.Request{ID: "req-9"})
}

// The event exists if and only if the business transaction commits.
func TestRecordTxFate(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	d := testDB(t)
	client, err := trail.NewClient[*sql.Tx](s, &trail.Config{Plaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	tbl := s.Schema() + ".subscriptions"
	if _, err := d.Exec("CREATE TABLE " + tbl + " (id text PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	write := func(ctx context.Context, tx *sql.Tx, id string) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO "+tbl+" VALUES ($1)", id)
		return err
	}
	errNo := errors.New("no")
	cases := []struct {
		name   string
		fn     func(ctx context.Context, tx *sql.Tx, sub string, ev trail.Event, cancel func()) error
		panics bool
		commit bool
	}{
		{"commit", func(ctx context.Context, tx *sql.Tx, sub string, ev trail.Event, _ func()) error {
			if err := write(ctx, tx, sub); err != nil {
				return err
			}
			_, err := client.RecordTx(ctx, tx, ev)
			return err
		}, false, true},
		{"error", func(ctx context.Context, tx *sql.Tx, sub string, ev trail.Event, _ func()) error {
			write(ctx, tx, sub)
			if _, err := client.RecordTx(ctx, tx, ev); err != nil {
				return err
			}
			return errNo
		}, false, false},
		{"panic", func(ctx context.Context, tx *sql.Tx, sub string, ev trail.Event, _ func()) error {
			write(ctx, tx, sub)
			if _, err := client.RecordTx(ctx, tx, ev); err != nil {
				return err
			}
			panic("boom")
		}, true, false},
		{"cancelled context", func(ctx context.Context, tx *sql.Tx, sub string, ev trail.Event, cancel func()) error {
			write(ctx, tx, sub)
			if _, err := client.RecordTx(ctx, tx, ev); err != nil {
				return err
			}
			cancel()
			return nil
		}, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sub := uuid.NewString()
			ev := trail.Event{ID: uuid.Must(uuid.NewV7()), Action: "subscription.update", Target: trail.Target{Type: "subscription", ID: sub}}
			ctx, cancel := context.WithCancel(userCtx())
			defer cancel()
			func() {
				defer func() {
					if r := recover(); (r != nil) != c.panics {
						t.Errorf("panic = %v, want panic %t", r, c.panics)
					}
				}()
				err := trailsql.WithTx(ctx, d, func(tx *sql.Tx) error { return c.fn(ctx, tx, sub, ev, cancel) })
				if (err == nil) != c.commit {
					t.Errorf("WithTx err = %v, want commit %t", err, c.commit)
				}
			}()
			got, err := s.Get(context.Background(), ev.ID)
			if stored := err == nil; stored != c.commit {
				t.Errorf("event stored = %t (%v), want %t", stored, err, c.commit)
			}
			var n int
			d.QueryRow("SELECT count(*) FROM "+tbl+" WHERE id = $1", sub).Scan(&n)
			if (n == 1) != c.commit {
				t.Errorf("business row stored = %t, want %t", n == 1, c.commit)
			}
			if c.commit && (got.Tenant != "acme" || got.Actor.ID != "42" || got.RequestID != "req-9") {
				t.Errorf("event not filled from context: %+v", got)
			}
		})
	}
}

func TestBeginTxSettingsAndPackageRecordTx(t *testing.T) {
	s := newStore(t)
	client, _ := trail.NewClient[*sql.Tx](s, &trail.Config{Source: "billing", Plaintext: true})
	trailsql.SetDefault(client)
	t.Cleanup(func() { trailsql.SetDefault(nil) })
	ctx := userCtx()
	tx, err := trailsql.BeginTx(ctx, testDB(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var actor, tenant, req string
	if err := tx.QueryRowContext(ctx, "SELECT current_setting('trail.actor'), current_setting('trail.tenant'), current_setting('trail.request_id')").Scan(&actor, &tenant, &req); err != nil {
		t.Fatal(err)
	}
	if actor != "user:42" || tenant != "acme" || req != "req-9" {
		t.Errorf("settings = %q %q %q", actor, tenant, req)
	}
	ev := trail.Event{Action: "user.delete", Target: trail.Target{Type: "user", ID: "17"}}
	res, err := trailsql.RecordTx(ctx, tx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(context.Background(), res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Source != "billing" || got.Tenant != "acme" {
		t.Errorf("got %+v", got)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if _, err := trailsql.Open(ctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=3", nil); err == nil || !strings.Contains(err.Error(), "cannot connect to PostgreSQL") {
		t.Errorf("closed port: %v", err)
	}
	if _, err := trailsql.Open(ctx, "postgres://a b:@@/x?%%", nil); err == nil || !strings.Contains(err.Error(), "bad PostgreSQL DSN") {
		t.Errorf("bad DSN: %v", err)
	}
	if _, err := trailsql.New(ctx, nil, nil); err == nil {
		t.Error("nil db: no error")
	}
}

// TestAppendTxIDInAnotherMonth: an event retried in the caller's transaction
// with its time stamped again, in another month, is refused with an error
// that says so and matches trail.ErrIDConflict (as trailpgx's AppendTx), not
// PostgreSQL's bare key violation; nothing is stored.
func TestAppendTxIDInAnotherMonth(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	id, _ := uuid.NewV7()
	ev := trail.Event{ID: id, OccurredAt: now.AddDate(0, -2, 0), RecordedAt: now, Tenant: "acme",
		Actor: trail.Actor{Type: trail.ActorUser, ID: "u1"}, Action: "doc.update", Outcome: trail.OutcomeSuccess,
		SchemaVersion: trail.SchemaVersion}
	if _, err := s.Append(ctx, []trail.Event{ev}); err != nil {
		t.Fatal(err)
	}
	retry := ev
	retry.OccurredAt = now
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.AppendTx(ctx, tx, []trail.Event{retry})
	tx.Rollback()
	var pgErr *pgconn.PgError
	if !errors.Is(err, trail.ErrIDConflict) || !errors.As(err, &pgErr) || pgErr.Code != "23505" || !strings.Contains(err.Error(), "another month") {
		t.Fatalf("AppendTx of a stored ID in another month: %v, want an ID conflict that says so", err)
	}
	page, err := s.Query(ctx, trail.Query{Tenant: "acme"})
	if err != nil || len(page.Events) != 1 || !page.Events[0].OccurredAt.Equal(ev.OccurredAt) {
		t.Fatalf("stored: %d events, %v", len(page.Events), err)
	}
}

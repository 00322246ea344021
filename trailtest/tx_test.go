package trailtest_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/trailtest"
)

// Both the client and the test recorder are TxRecorders, for both drivers:
// code written against the interface takes either.
var (
	_ trail.TxRecorder[pgx.Tx]  = (*trail.Client[pgx.Tx])(nil)
	_ trail.TxRecorder[pgx.Tx]  = (*trailtest.TxRecorder[pgx.Tx])(nil)
	_ trail.TxRecorder[*sql.Tx] = (*trail.Client[*sql.Tx])(nil)
	_ trail.TxRecorder[*sql.Tx] = (*trailtest.TxRecorder[*sql.Tx])(nil)
)

// The tests on PostgreSQL run one at a time: they hold several transactions
// of the binary's one pool open and then ask through that pool, which
// parallel tests could exhaust and deadlock.

// txDriver is one driver's transactions, for tests that run on both.
type txDriver[TTx any] struct {
	pool  *pgxpool.Pool
	rec   func(t *testing.T) *trailtest.TxRecorder[TTx]
	begin func(t *testing.T) TTx
	// exec runs a statement in tx.
	exec     func(tx TTx, query string) error
	commit   func(tx TTx) error
	rollback func(tx TTx) error
}

func pgxDriver(t *testing.T) txDriver[pgx.Tx] {
	pool := testenv.PostgresPool(t, 8)
	return txDriver[pgx.Tx]{
		pool: pool,
		rec:  func(t *testing.T) *trailtest.TxRecorder[pgx.Tx] { return trailtest.NewTxRecorder(t, pool) },
		begin: func(t *testing.T) pgx.Tx {
			tx, err := pool.Begin(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { tx.Rollback(context.Background()) })
			return tx
		},
		exec: func(tx pgx.Tx, q string) error {
			_, err := tx.Exec(context.Background(), q)
			return err
		},
		commit:   func(tx pgx.Tx) error { return tx.Commit(context.Background()) },
		rollback: func(tx pgx.Tx) error { return tx.Rollback(context.Background()) },
	}
}

func sqlDriver(t *testing.T) txDriver[*sql.Tx] {
	pool := testenv.PostgresPool(t, 8)
	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() { db.Close() })
	return txDriver[*sql.Tx]{
		pool: pool,
		rec:  func(t *testing.T) *trailtest.TxRecorder[*sql.Tx] { return trailtest.NewSQLTxRecorder(t, db) },
		begin: func(t *testing.T) *sql.Tx {
			tx, err := db.BeginTx(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { tx.Rollback() })
			return tx
		},
		exec: func(tx *sql.Tx, q string) error {
			_, err := tx.Exec(q)
			return err
		},
		commit:   func(tx *sql.Tx) error { return tx.Commit() },
		rollback: func(tx *sql.Tx) error { return tx.Rollback() },
	}
}

// onBothDrivers runs fn as the subtests pgx and sql.
func onBothDrivers(t *testing.T, pgxFn func(*testing.T, txDriver[pgx.Tx]), sqlFn func(*testing.T, txDriver[*sql.Tx])) {
	t.Run("pgx", func(t *testing.T) { pgxFn(t, pgxDriver(t)) })
	t.Run("sql", func(t *testing.T) { sqlFn(t, sqlDriver(t)) })
}

var acmeAdmin = trail.WithTenant(trail.WithActor(context.Background(), trail.Actor{Type: trail.ActorUser, ID: "42"}), "acme")

func txEvent(action string) trail.Event {
	return trail.Event{Action: action, Target: trail.Target{Type: "subscription", ID: "sub_acme"}}
}

// must fails t on err.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func record[TTx any](t *testing.T, rec *trailtest.TxRecorder[TTx], tx TTx, action string) trail.Result {
	t.Helper()
	res, err := rec.RecordTx(acmeAdmin, tx, txEvent(action))
	if err != nil {
		t.Fatalf("RecordTx(%s): %v", action, err)
	}
	return res
}

// actions returns the actions of events, in order.
func actions(evs []trail.Event) string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Action)
	}
	return strings.Join(out, " ")
}

func TestTxRecorderKeepsCommittedDropsRolledBack(t *testing.T) {
	onBothDrivers(t, testCommitRollback[pgx.Tx], testCommitRollback[*sql.Tx])
}

func testCommitRollback[TTx any](t *testing.T, d txDriver[TTx]) {
	rec := d.rec(t)

	committed := d.begin(t)
	res := record(t, rec, committed, "plan.committed")
	if res.Duplicate || res.ID == uuid.Nil || res.RecordedAt.IsZero() || res.RecordedAt.Nanosecond()%1000 != 0 || res.RecordedAt.Location() != time.UTC {
		t.Errorf("result %+v: want an ID and RecordedAt in UTC microseconds", res)
	}
	rolledBack := d.begin(t)
	record(t, rec, rolledBack, "plan.rolledback")
	open := d.begin(t)
	record(t, rec, open, "plan.open")

	// Before the transactions end nothing is visible.
	if evs := rec.Events(); len(evs) != 0 {
		t.Fatalf("before commit: events %q, want none", actions(evs))
	}
	if n := rec.Pending(); n != 3 {
		t.Errorf("Pending = %d, want 3", n)
	}

	must(t, d.commit(committed))
	must(t, d.rollback(rolledBack))
	evs := rec.Events()
	if actions(evs) != "plan.committed" {
		t.Fatalf("events %q, want plan.committed", actions(evs))
	}
	ev := evs[0]
	if ev.ID != res.ID || !ev.RecordedAt.Equal(res.RecordedAt) || ev.Tenant != "acme" || ev.Actor.String() != "user:42" || ev.Outcome != trail.OutcomeSuccess {
		t.Errorf("kept event %+v, want it filled from the context, with the result's ID and time", ev)
	}
	if got := actions(rec.RolledBack()); got != "plan.rolledback" {
		t.Errorf("RolledBack %q, want plan.rolledback", got)
	}
	if n := rec.Pending(); n != 1 {
		t.Errorf("Pending = %d, want 1 (the open transaction)", n)
	}
	trailtest.RequireRecorded(t, rec, trailtest.Match{Tenant: "acme", Action: "plan.committed", Actor: "user:42"})
	trailtest.RequireNotRecorded(t, rec, trailtest.Match{Action: "plan.rolledback"})

	// The assertions fail on what was rolled back, and say so.
	f := runTB(func(tb testing.TB) { trailtest.RequireRecorded(tb, rec, trailtest.Match{Action: "plan.rolledback"}) })
	if !f.Failed() || !strings.Contains(f.message(), "rolled back with their transactions (1)") || !strings.Contains(f.message(), "action=plan.rolledback") {
		t.Errorf("RequireRecorded of a rolled back event: failed %v, message:\n%s", f.Failed(), f.message())
	}

	must(t, d.commit(open))
	trailtest.RequireCount(t, rec, trailtest.Match{Tenant: "acme"}, 2)
	if n := rec.Pending(); n != 0 {
		t.Errorf("Pending = %d after every transaction ended", n)
	}
	// Queries see what the stores would hold.
	p, err := rec.Store().Query(context.Background(), trail.Query{Tenant: "acme", Action: "plan.*"})
	if err != nil || len(p.Events) != 2 {
		t.Errorf("Store().Query: %d events, %v; want 2", len(p.Events), err)
	}

	rec.Reset()
	if len(rec.Events())+len(rec.RolledBack())+rec.Pending() != 0 {
		t.Errorf("Reset left events behind")
	}
}

// Savepoints: an event recorded in a savepoint that is rolled back to is
// dropped though the transaction commits; one in a released savepoint is
// kept with the transaction, and dropped with it.
func TestTxRecorderSavepoints(t *testing.T) {
	onBothDrivers(t, testSavepoints[pgx.Tx], testSavepoints[*sql.Tx])
}

func testSavepoints[TTx any](t *testing.T, d txDriver[TTx]) {
	rec := d.rec(t)
	tx := d.begin(t)
	record(t, rec, tx, "outer.before")
	must(t, d.exec(tx, "SAVEPOINT a"))
	record(t, rec, tx, "savepoint.rolledback")
	must(t, d.exec(tx, "SAVEPOINT a_inner"))
	record(t, rec, tx, "inner.released.in.rolledback")
	must(t, d.exec(tx, "RELEASE SAVEPOINT a_inner"))
	must(t, d.exec(tx, "ROLLBACK TO SAVEPOINT a"))
	must(t, d.exec(tx, "SAVEPOINT b"))
	record(t, rec, tx, "savepoint.released")
	must(t, d.exec(tx, "RELEASE SAVEPOINT b"))
	record(t, rec, tx, "outer.after")
	must(t, d.commit(tx))
	if got, want := actions(rec.Events()), "outer.before savepoint.released outer.after"; got != want {
		t.Errorf("kept %q, want %q", got, want)
	}
	if got, want := actions(rec.RolledBack()), "savepoint.rolledback inner.released.in.rolledback"; got != want {
		t.Errorf("rolled back %q, want %q", got, want)
	}

	// A released savepoint's event goes with its transaction's rollback.
	rec.Reset()
	tx = d.begin(t)
	must(t, d.exec(tx, "SAVEPOINT c"))
	record(t, rec, tx, "released.then.rolledback")
	must(t, d.exec(tx, "RELEASE SAVEPOINT c"))
	must(t, d.rollback(tx))
	if evs := rec.Events(); len(evs) != 0 {
		t.Errorf("kept %q after the transaction rolled back", actions(evs))
	}
}

// pgx's nested transactions are savepoints: the same rules.
func TestTxRecorderPgxNestedTx(t *testing.T) {
	d := pgxDriver(t)
	rec := d.rec(t)
	ctx := context.Background()
	tx := d.begin(t)
	record(t, rec, tx, "outer.write")
	nested, err := tx.Begin(ctx)
	must(t, err)
	record(t, rec, nested, "nested.rolledback")
	must(t, nested.Rollback(ctx))
	nested, err = tx.Begin(ctx)
	must(t, err)
	record(t, rec, nested, "nested.committed")
	must(t, nested.Commit(ctx))
	must(t, tx.Commit(ctx))
	if got := actions(rec.Events()); got != "outer.write nested.committed" {
		t.Errorf("kept %q, want outer.write nested.committed", got)
	}
	if got := actions(rec.RolledBack()); got != "nested.rolledback" {
		t.Errorf("rolled back %q, want nested.rolledback", got)
	}
}

// A recorded ID that is kept, or recorded earlier in the same transaction,
// is a duplicate; one whose first recording was rolled back is not.
func TestTxRecorderDuplicates(t *testing.T) {
	onBothDrivers(t, testDuplicates[pgx.Tx], testDuplicates[*sql.Tx])
}

func testDuplicates[TTx any](t *testing.T, d txDriver[TTx]) {
	rec := d.rec(t)
	ev := txEvent("plan.update")
	ev.ID = uuid.New()
	recordID := func(tx TTx) trail.Result {
		t.Helper()
		res, err := rec.RecordTx(acmeAdmin, tx, ev)
		must(t, err)
		if res.ID != ev.ID {
			t.Fatalf("result ID %s, want %s", res.ID, ev.ID)
		}
		return res
	}

	tx := d.begin(t)
	must(t, d.exec(tx, "SAVEPOINT a"))
	if recordID(tx).Duplicate {
		t.Error("first recording is a duplicate")
	}
	must(t, d.exec(tx, "ROLLBACK TO SAVEPOINT a"))
	if recordID(tx).Duplicate {
		t.Error("recording again after the first was rolled back to a savepoint is a duplicate")
	}
	if !recordID(tx).Duplicate {
		t.Error("second recording in the same transaction is not a duplicate")
	}
	res, err := rec.RecordManyTx(acmeAdmin, tx, []trail.Event{txEvent("a.b"), txEvent("a.c")})
	must(t, err)
	if res[0].Duplicate || res[1].Duplicate {
		t.Errorf("RecordManyTx of new events: %+v", res)
	}
	same := txEvent("x.y")
	same.ID = uuid.New()
	res, err = rec.RecordManyTx(acmeAdmin, tx, []trail.Event{same, same})
	must(t, err)
	if res[0].Duplicate || !res[1].Duplicate {
		t.Errorf("RecordManyTx of one ID twice: %+v, want the second a duplicate", res)
	}
	must(t, d.commit(tx))

	// Kept: a later transaction's recording is a duplicate.
	tx = d.begin(t)
	if !recordID(tx).Duplicate {
		t.Error("recording a kept ID is not a duplicate")
	}
	must(t, d.commit(tx))
	trailtest.RequireCount(t, rec, trailtest.Match{Action: "plan.update"}, 1)
	trailtest.RequireCount(t, rec, trailtest.Match{}, 4)

	// Record (no transaction) keeps at once; the same ID in a transaction
	// afterwards is a duplicate.
	direct := txEvent("direct.write")
	direct.ID = uuid.New()
	if _, err := rec.Record(acmeAdmin, direct); err != nil {
		t.Fatal(err)
	}
	tx = d.begin(t)
	if res, err := rec.RecordTx(acmeAdmin, tx, direct); err != nil || !res.Duplicate {
		t.Errorf("RecordTx of an ID Record kept: %+v, %v", res, err)
	}
}

// The tenant guards and validation fail RecordTx as they fail a client's,
// before the transaction is touched: it stays usable, and commits.
func TestTxRecorderRejects(t *testing.T) {
	onBothDrivers(t, testRejects[pgx.Tx], testRejects[*sql.Tx])
}

func testRejects[TTx any](t *testing.T, d txDriver[TTx]) {
	rec := d.rec(t)
	actor := trail.WithActor(context.Background(), trail.Actor{Type: trail.ActorUser, ID: "42"})
	tx := d.begin(t)
	for _, c := range []struct {
		name string
		ctx  context.Context
		ev   trail.Event
		want error
	}{
		{"no tenant", actor, txEvent("plan.update"), trail.ErrNoTenant},
		{"tenant mismatch", trail.WithTenant(actor, "acme"), trail.Event{Action: "plan.update", Tenant: "globex"}, trail.ErrTenantMismatch},
		{"invalid action", trail.WithTenant(actor, "acme"), trail.Event{Action: "Plan Update"}, trail.ErrInvalid},
	} {
		_, err := rec.RecordTx(c.ctx, tx, c.ev)
		if !errors.Is(err, c.want) || !errors.Is(err, trail.ErrInvalid) {
			t.Errorf("%s: err = %v, want %v (and trail.ErrInvalid)", c.name, err, c.want)
		}
	}
	// The transaction is still usable (TestTxRecorderInvalidEventTouchesNothing
	// shows that nothing reached it).
	must(t, d.exec(tx, "SELECT 1"))
	// A platform event needs no tenant.
	if _, err := rec.RecordTx(trail.WithPlatform(actor), tx, txEvent("platform.maintenance")); err != nil {
		t.Errorf("platform event: %v", err)
	}
	must(t, d.commit(tx))
	if got := actions(rec.Events()); got != "platform.maintenance" {
		t.Errorf("kept %q, want platform.maintenance", got)
	}
	if n := len(rec.Rejected()); n != 3 {
		t.Errorf("Rejected: %d errors, want 3", n)
	}
	f := runTB(func(tb testing.TB) { trailtest.RequireRecorded(tb, rec, trailtest.Match{Action: "plan.update"}) })
	if !strings.Contains(f.message(), "rejected as invalid (3)") || !strings.Contains(f.message(), "event has no tenant") {
		t.Errorf("failure message does not list the rejections:\n%s", f.message())
	}

	// A nil transaction.
	var nilTx TTx
	if _, err := rec.RecordTx(acmeAdmin, nilTx, txEvent("plan.update")); err == nil || !strings.Contains(err.Error(), "nil transaction") {
		t.Errorf("nil transaction: %v", err)
	}
}

// An invalid event leaves the transaction as it was: no temporary table.
func TestTxRecorderInvalidEventTouchesNothing(t *testing.T) {
	d := pgxDriver(t)
	rec := d.rec(t)
	ctx := context.Background()
	conn, err := d.pool.Acquire(ctx)
	must(t, err)
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	must(t, err)
	defer tx.Rollback(ctx)
	if _, err := rec.RecordTx(context.Background(), tx, txEvent("plan.update")); !errors.Is(err, trail.ErrNoTenant) {
		t.Fatalf("err = %v, want ErrNoTenant", err)
	}
	var exists bool
	must(t, tx.QueryRow(ctx, "SELECT to_regclass('pg_temp.trailtest_tx_events') IS NOT NULL").Scan(&exists))
	if exists {
		t.Error("a rejected event created the temporary table")
	}
	record(t, rec, tx, "plan.update")
	must(t, tx.QueryRow(ctx, "SELECT to_regclass('pg_temp.trailtest_tx_events') IS NOT NULL").Scan(&exists))
	if !exists {
		t.Error("no temporary table after RecordTx: the check above proves nothing")
	}
	must(t, tx.Commit(ctx))
	// The table went with the transaction: the session has none.
	must(t, conn.QueryRow(ctx, "SELECT to_regclass('pg_temp.trailtest_tx_events') IS NOT NULL").Scan(&exists))
	if exists {
		t.Error("the temporary table outlived its transaction")
	}
}

// Transactions one after another on one connection: the temporary table is
// dropped and made again, and statements the driver prepared still work.
func TestTxRecorderReusesConnection(t *testing.T) {
	ctx := context.Background()
	t.Run("sql", func(t *testing.T) {
		db := stdlib.OpenDBFromPool(testenv.PostgresPool(t, 8))
		defer db.Close()
		rec := trailtest.NewSQLTxRecorder(t, db)
		conn, err := db.Conn(ctx)
		must(t, err)
		defer conn.Close()
		for i := range 3 {
			tx, err := conn.BeginTx(ctx, nil)
			must(t, err)
			record(t, rec, tx, "loop.step")
			if i == 1 {
				must(t, tx.Rollback())
				continue
			}
			must(t, tx.Commit())
		}
		trailtest.RequireCount(t, rec, trailtest.Match{Action: "loop.step"}, 2)
	})
	t.Run("pgx", func(t *testing.T) {
		d := pgxDriver(t)
		rec := d.rec(t)
		conn, err := d.pool.Acquire(ctx)
		must(t, err)
		defer conn.Release()
		for i := range 3 {
			tx, err := conn.Begin(ctx)
			must(t, err)
			record(t, rec, tx, "loop.step")
			if i == 1 {
				must(t, tx.Rollback(ctx))
				continue
			}
			must(t, tx.Commit(ctx))
		}
		trailtest.RequireCount(t, rec, trailtest.Match{Action: "loop.step"}, 2)
	})
}

// A transaction on another database than the recorder's is refused: its
// fate could not be asked.
func TestTxRecorderOtherDatabase(t *testing.T) {
	ctx := context.Background()
	pool := testenv.PostgresPool(t, 8)
	rec := trailtest.NewTxRecorder(t, pool)
	cfg, err := pgx.ParseConfig(testenv.PostgresDSN())
	must(t, err)
	var current string
	must(t, pool.QueryRow(ctx, "SELECT current_database()").Scan(&current))
	cfg.Database = "postgres"
	if current == "postgres" {
		cfg.Database = "template1"
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Skipf("cannot connect to database %s of the test server, needed to test this: %v", cfg.Database, err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	must(t, err)
	defer tx.Rollback(ctx)
	_, err = rec.RecordTx(acmeAdmin, tx, txEvent("plan.update"))
	if err == nil || !strings.Contains(err.Error(), "is on database "+cfg.Database) || !strings.Contains(err.Error(), "not on the recorder's "+current) {
		t.Errorf("RecordTx on database %s: %v", cfg.Database, err)
	}
	if n := rec.Pending(); n != 0 {
		t.Errorf("Pending = %d after a refused RecordTx", n)
	}
}

// A database/sql database or transaction that is not PostgreSQL is refused.
func TestTxRecorderNotPostgres(t *testing.T) {
	notPG := sql.OpenDB(notPostgres{})
	defer notPG.Close()
	f := runTB(func(tb testing.TB) { trailtest.NewSQLTxRecorder(tb, notPG) })
	if !f.Failed() || !strings.Contains(f.message(), "must be PostgreSQL 13 or later") {
		t.Errorf("NewSQLTxRecorder on a database that is not PostgreSQL: failed %v:\n%s", f.Failed(), f.message())
	}

	rec := sqlDriver(t).rec(t)
	tx, err := notPG.Begin()
	must(t, err)
	defer tx.Rollback()
	_, err = rec.RecordTx(acmeAdmin, tx, txEvent("plan.update"))
	if err == nil || !strings.Contains(err.Error(), "must be a PostgreSQL transaction") {
		t.Errorf("RecordTx in a transaction that is not PostgreSQL's: %v", err)
	}
}

// notPostgres is a database/sql driver that knows no SQL.
type notPostgres struct{}

func (notPostgres) Connect(context.Context) (driver.Conn, error) { return notPostgres{}, nil }
func (notPostgres) Driver() driver.Driver                        { return notPostgres{} }
func (notPostgres) Open(string) (driver.Conn, error)             { return notPostgres{}, nil }
func (notPostgres) Prepare(q string) (driver.Stmt, error) {
	return nil, errors.New("notpostgres: syntax error")
}
func (notPostgres) Close() error              { return nil }
func (notPostgres) Begin() (driver.Tx, error) { return notPostgres{}, nil }
func (notPostgres) Commit() error             { return nil }
func (notPostgres) Rollback() error           { return nil }

// ExampleNewTxRecorder, run: the failed change's event is rolled back with
// its transaction, the successful one's kept.
func TestExampleTxRecorder(t *testing.T) {
	pool := testenv.PostgresPool(t, 8)
	rec := trailtest.NewTxRecorder(t, pool)
	svc := &planService{pool: pool, audit: rec}
	if err := svc.ChangePlan(acmeAdmin, "sub_acme", "team", "free", 3); !errors.Is(err, errTooFewSeats) {
		t.Fatalf("change to free: %v, want errTooFewSeats", err)
	}
	trailtest.RequireNotRecorded(t, rec, trailtest.Match{Action: "subscription.update"})
	if rb := rec.RolledBack(); len(rb) != 1 || rb[0].Description != "Changed subscription plan to free" {
		t.Fatalf("rolled back %q: want the failed change's event, recorded then dropped", actions(rb))
	}
	must(t, svc.ChangePlan(acmeAdmin, "sub_acme", "team", "pro", 3))
	ev := trailtest.RequireRecorded(t, rec, trailtest.Match{Tenant: "acme", Actor: "user:42", Action: "subscription.update", Target: "subscription:sub_acme", Changed: "plan"})
	if ev.Description != "Changed subscription plan to pro" {
		t.Errorf("kept %q", ev.Description)
	}
	trailtest.RequireCount(t, rec, trailtest.Match{}, 1)
}

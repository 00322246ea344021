package trailtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailhq/trail"
)

// TxRecorder is a trail.TxRecorder for tests of code that records in its
// own PostgreSQL transactions: it takes the real pgx.Tx (NewTxRecorder) or
// *sql.Tx (NewSQLTxRecorder) and keeps an event only when the transaction
// that recorded it commits, so that a test can prove that a failed
// operation, whose transaction rolls back, leaves no event behind.
//
// RecordTx prepares the event exactly as a trail.Client does (filled from
// the context with the tenant guards, normalized, secrets redacted,
// validated: an invalid event fails with the same error, before the
// transaction is touched), then notes, inside the caller's transaction,
// which transaction that is. The event itself stays in the recorder's
// memory, not in the database. Events, the assertions (RequireRecorded and
// friends) and Store then ask PostgreSQL, through the pool or database the
// recorder was made with, what became of each transaction:
//
//   - committed: the event is kept, as a real store would keep it;
//   - rolled back (or its connection lost): the event is dropped, and
//     listed by RolledBack and by failing assertions;
//   - still in progress: the event is not visible yet, as it would not be
//     to another connection; Pending counts such events. Finish the
//     transaction before asserting.
//
// Savepoints are honoured: an event recorded inside a savepoint (a pgx
// nested transaction, or SAVEPOINT in SQL) that is rolled back to is
// dropped even when the outer transaction commits, and one recorded in a
// released savepoint is kept when the outer transaction commits, as rows
// written there would be. To tell them apart RecordTx writes the event's ID
// into a temporary table of the transaction's session (created ON COMMIT
// DROP, gone when the transaction ends) and remembers the ID of the
// (sub)transaction that wrote it. So RecordTx needs a transaction that may
// create a temporary table: like a real client's insert, it fails in a
// read-only transaction.
//
// The transaction must belong to the database the recorder was made with
// (any connection or pool to it): RecordTx fails otherwise, and for a
// transaction that is not PostgreSQL's at all. PostgreSQL 13 or later is
// required (pg_current_xact_id, pg_xact_status).
//
// Recording an ID that is already kept, or already recorded earlier in the
// same transaction and not rolled back, returns Result.Duplicate, as the
// real stores do. When two transactions still in progress record the same
// ID (PostgreSQL would make the second wait), both are noted and the one
// found committed first is kept.
//
// Events asks PostgreSQL through the recorder's pool: with a pool of one
// connection that an open transaction holds, it waits for that
// transaction. A TxRecorder is safe for concurrent use.
type TxRecorder[TTx any] struct {
	tb     testing.TB
	store  *Store
	client *trail.Client[*Tx]
	db     txDriver[TTx]
	server string // the database and server the recorder's pool reaches

	mu         sync.Mutex
	pending    []pendingEvent // RecordTx order
	rolledBack []trail.Event
	rejected   []error
}

// pendingEvent is an event whose transaction was in progress when last
// asked about.
type pendingEvent struct {
	xid uint64 // full ID of the (sub)transaction that recorded it
	ev  trail.Event
}

// txDriver is what a TxRecorder needs of a driver.
type txDriver[TTx any] struct {
	// isNil reports a nil transaction.
	isNil func(tx TTx) bool
	// execTx runs one statement without arguments in tx.
	execTx func(ctx context.Context, tx TTx, query string) error
	// rowTx runs a one-row query with args in tx and scans it into dest.
	rowTx func(ctx context.Context, tx TTx, query string, args []any, dest ...any) error
	// row runs a one-row query on the recorder's database.
	row func(ctx context.Context, query string, args []any, dest ...any) error
}

var (
	_ trail.TxRecorder[pgx.Tx]  = (*TxRecorder[pgx.Tx])(nil)
	_ trail.TxRecorder[*sql.Tx] = (*TxRecorder[*sql.Tx])(nil)
	_ trail.Recorder            = (*TxRecorder[pgx.Tx])(nil)
)

// NewTxRecorder returns an empty recorder for pgx transactions on the
// database pool connects to. It checks that the database is PostgreSQL 13
// or later, failing tb (or panicking when tb is nil) otherwise. The
// recorder's memory is released when tb's test ends.
func NewTxRecorder(tb testing.TB, pool *pgxpool.Pool) *TxRecorder[pgx.Tx] {
	return NewTxRecorderConfig(tb, pool, nil)
}

// NewTxRecorderConfig is NewTxRecorder with the client configured by cfg,
// as NewRecorderConfig's is (Source, a fixed clock, the privacy layer's
// Transform).
func NewTxRecorderConfig(tb testing.TB, pool *pgxpool.Pool, cfg *trail.Config) *TxRecorder[pgx.Tx] {
	if tb != nil {
		tb.Helper()
	}
	if pool == nil {
		fatal(tb, errors.New("trailtest: NewTxRecorder: pool is nil"))
		return nil
	}
	// The simple protocol: no statement is prepared on the caller's
	// connections, whose temporary table comes and goes.
	simple := pgx.QueryExecModeSimpleProtocol
	return newTxRecorder(tb, "NewTxRecorder", cfg, txDriver[pgx.Tx]{
		isNil: func(tx pgx.Tx) bool { return tx == nil },
		execTx: func(ctx context.Context, tx pgx.Tx, query string) error {
			_, err := tx.Exec(ctx, query, simple)
			return err
		},
		rowTx: func(ctx context.Context, tx pgx.Tx, query string, args []any, dest ...any) error {
			return tx.QueryRow(ctx, query, append([]any{simple}, args...)...).Scan(dest...)
		},
		row: func(ctx context.Context, query string, args []any, dest ...any) error {
			return pool.QueryRow(ctx, query, append([]any{simple}, args...)...).Scan(dest...)
		},
	})
}

// NewSQLTxRecorder returns an empty recorder for database/sql transactions
// on db, which must be a PostgreSQL 13 or later database (opened with pgx's
// stdlib driver, lib/pq, …). It checks that, failing tb (or panicking when
// tb is nil) otherwise. The recorder's memory is released when tb's test
// ends.
func NewSQLTxRecorder(tb testing.TB, db *sql.DB) *TxRecorder[*sql.Tx] {
	return NewSQLTxRecorderConfig(tb, db, nil)
}

// NewSQLTxRecorderConfig is NewSQLTxRecorder with the client configured by
// cfg, as NewRecorderConfig's is.
func NewSQLTxRecorderConfig(tb testing.TB, db *sql.DB, cfg *trail.Config) *TxRecorder[*sql.Tx] {
	if tb != nil {
		tb.Helper()
	}
	if db == nil {
		fatal(tb, errors.New("trailtest: NewSQLTxRecorder: db is nil"))
		return nil
	}
	return newTxRecorder(tb, "NewSQLTxRecorder", cfg, txDriver[*sql.Tx]{
		isNil: func(tx *sql.Tx) bool { return tx == nil },
		execTx: func(ctx context.Context, tx *sql.Tx, query string) error {
			_, err := tx.ExecContext(ctx, query)
			return err
		},
		rowTx: func(ctx context.Context, tx *sql.Tx, query string, args []any, dest ...any) error {
			return tx.QueryRowContext(ctx, query, args...).Scan(dest...)
		},
		row: func(ctx context.Context, query string, args []any, dest ...any) error {
			return db.QueryRowContext(ctx, query, args...).Scan(dest...)
		},
	})
}

// serverExpr identifies the database and the server (by its start time):
// a transaction whose answer differs is on another database.
const serverExpr = `current_database() || ' (server started at ' || (extract(epoch FROM pg_postmaster_start_time()) * 1000000)::bigint::text || ')'`

const serverSQL = `SELECT ` + serverExpr + `, current_setting('server_version_num')::int`

func newTxRecorder[TTx any](tb testing.TB, name string, cfg *trail.Config, db txDriver[TTx]) *TxRecorder[TTx] {
	if tb != nil {
		tb.Helper()
	}
	var server string
	var version int
	if err := db.row(context.Background(), serverSQL, nil, &server, &version); err != nil {
		fatal(tb, fmt.Errorf("trailtest: %s: the database must be PostgreSQL 13 or later: %w", name, err))
		return nil
	}
	if version < 130000 {
		fatal(tb, fmt.Errorf("trailtest: %s: PostgreSQL %d is too old: TxRecorder needs 13 or later (pg_current_xact_id, pg_xact_status)", name, version))
		return nil
	}
	rec := NewRecorderConfig(tb, cfg) // the same client and store as a Recorder's
	return &TxRecorder[TTx]{tb: tb, store: rec.store, client: rec.client, db: db, server: server}
}

// fatal fails tb with err, or panics when tb is nil.
func fatal(tb testing.TB, err error) {
	if tb == nil {
		panic(err)
	}
	tb.Helper()
	tb.Fatalf("%v", err)
}

// tempTableSQL creates, once per transaction, the temporary table that
// holds the IDs of the events the transaction recorded. Its rows vanish
// with a savepoint rolled back to; the table is dropped when the
// transaction ends. No NOTICE when it exists already.
const tempTableSQL = `DO $trailtest$ BEGIN
	IF to_regclass('pg_temp.trailtest_tx_events') IS NULL THEN
		CREATE TEMPORARY TABLE trailtest_tx_events (id uuid PRIMARY KEY) ON COMMIT DROP;
	END IF;
END $trailtest$`

// recordSQL inserts the events' IDs ($1, comma-separated) into the
// transaction's table and returns those that were new, the (sub)transaction
// that wrote them (xmin), the top-level transaction and where it runs.
const recordSQL = `WITH ins AS (
	INSERT INTO pg_temp.trailtest_tx_events (id) SELECT unnest(string_to_array($1, ','))::uuid
	ON CONFLICT DO NOTHING RETURNING id, xmin)
SELECT coalesce((SELECT string_agg(id::text, ',') FROM ins), ''),
	coalesce((SELECT min(xmin::text) FROM ins), ''),
	pg_current_xact_id()::text,
	` + serverExpr

// statusSQL returns the status of each transaction in $1 (comma-separated
// full IDs) as "id=status,…".
const statusSQL = `SELECT coalesce(string_agg(x || '=' || coalesce(pg_xact_status(x::xid8), 'unknown'), ','), '')
	FROM unnest(string_to_array($1, ',')) AS x`

// Record stores one event at once, as a committed write of its own (as
// trail.Client.Record does): for code that also records outside
// transactions.
func (r *TxRecorder[TTx]) Record(ctx context.Context, ev trail.Event) (trail.Result, error) {
	res, err := r.client.Record(ctx, ev)
	r.reject(err)
	return res, err
}

// RecordTx records ev in tx, as trail.Client.RecordTx does: the event is
// kept if and only if tx commits (and, in a savepoint, that savepoint is not
// rolled back to).
func (r *TxRecorder[TTx]) RecordTx(ctx context.Context, tx TTx, ev trail.Event) (trail.Result, error) {
	res, err := r.RecordManyTx(ctx, tx, []trail.Event{ev})
	if err != nil {
		return trail.Result{}, err
	}
	return res[0], nil
}

// RecordManyTx records events in tx, as trail.Client.RecordManyTx does: a
// bad event fails the call, naming its index, and records nothing.
func (r *TxRecorder[TTx]) RecordManyTx(ctx context.Context, tx TTx, events []trail.Event) ([]trail.Result, error) {
	res, err := r.recordManyTx(ctx, tx, events)
	r.reject(err)
	return res, err
}

func (r *TxRecorder[TTx]) recordManyTx(ctx context.Context, tx TTx, events []trail.Event) ([]trail.Result, error) {
	if len(events) == 0 {
		return nil, errors.New("trail: no events to record")
	}
	// Prepared first, as the client does: an invalid event leaves the
	// transaction untouched.
	prepared := make([]trail.Event, len(events))
	for i, ev := range events {
		p, err := r.client.Prepare(ctx, ev)
		if err != nil {
			if len(events) > 1 {
				return nil, fmt.Errorf("event %d: %w", i, err)
			}
			return nil, err
		}
		prepared[i] = p
	}
	if r.db.isNil(tx) {
		return nil, errors.New("trailtest: RecordTx: nil transaction")
	}
	ids := make([]string, len(prepared))
	for i := range prepared {
		ids[i] = prepared[i].ID.String()
	}
	var inserted, xmin, top, server string
	err := r.db.execTx(ctx, tx, tempTableSQL)
	if err == nil {
		err = r.db.rowTx(ctx, tx, recordSQL, []any{strings.Join(ids, ",")}, &inserted, &xmin, &top, &server)
	}
	if err != nil {
		return nil, fmt.Errorf("trailtest: RecordTx: noting the transaction (it must be a PostgreSQL transaction on the recorder's database): %w", err)
	}
	if server != r.server {
		return nil, fmt.Errorf("trailtest: RecordTx: the transaction is on database %s, not on the recorder's %s: its fate could not be known", server, r.server)
	}
	var xid uint64
	if xmin != "" {
		if xid, err = fullXID(top, xmin); err != nil {
			return nil, fmt.Errorf("trailtest: RecordTx: %w", err)
		}
	}
	isNew := map[string]bool{}
	for _, id := range strings.Split(inserted, ",") {
		isNew[id] = true
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	// An ID noted by another transaction may have been kept since: settle
	// those first, asking on the caller's transaction (the recorder's pool
	// may have no connection to spare while tx is open).
	if slices.ContainsFunc(r.pending, func(p pendingEvent) bool { return slices.Contains(ids, p.ev.ID.String()) }) {
		if err := r.resolveLocked(func(list string, out *string) error {
			return r.db.rowTx(ctx, tx, statusSQL, []any{list}, out)
		}); err != nil {
			return nil, fmt.Errorf("trailtest: RecordTx: %w", err)
		}
	}
	res := make([]trail.Result, len(prepared))
	for i, ev := range prepared {
		res[i].ID = ev.ID
		if !isNew[ids[i]] || r.kept(ev.ID) {
			res[i].Duplicate = true
			continue
		}
		delete(isNew, ids[i]) // the same ID again in events is a duplicate
		// What the stores keep: microseconds, UTC.
		res[i].RecordedAt = time.UnixMicro(ev.RecordedAt.UnixMicro()).UTC()
		r.pending = append(r.pending, pendingEvent{xid: xid, ev: ev})
	}
	return res, nil
}

// kept reports whether the recorder keeps an event with id.
func (r *TxRecorder[TTx]) kept(id uuid.UUID) bool {
	_, err := r.store.Get(context.Background(), id)
	return err == nil
}

// fullXID returns the full (epoch-qualified) ID of the 32-bit transaction
// ID xmin, assigned no earlier than the top-level transaction top (a full
// ID): xmin is top itself or one of its subtransactions.
func fullXID(top, xmin string) (uint64, error) {
	t, err := strconv.ParseUint(top, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("transaction ID %q: %w", top, err)
	}
	x, err := strconv.ParseUint(xmin, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("transaction ID %q: %w", xmin, err)
	}
	full := t&^0xffffffff | x
	if x < t&0xffffffff { // the 32-bit counter wrapped since top: next epoch
		full += 1 << 32
	}
	return full, nil
}

// resolveLocked asks, with status, what became of the transactions of the
// pending events: committed ones are kept, rolled back ones dropped.
func (r *TxRecorder[TTx]) resolveLocked(status func(list string, out *string) error) error {
	if len(r.pending) == 0 {
		return nil
	}
	var xids []string
	for _, p := range r.pending {
		x := strconv.FormatUint(p.xid, 10)
		if !slices.Contains(xids, x) {
			xids = append(xids, x)
		}
	}
	var out string
	if err := status(strings.Join(xids, ","), &out); err != nil {
		return fmt.Errorf("asking PostgreSQL what became of transactions %s: %w", strings.Join(xids, ", "), err)
	}
	fate := map[uint64]string{}
	for _, kv := range strings.Split(out, ",") {
		k, v, _ := strings.Cut(kv, "=")
		x, err := strconv.ParseUint(k, 10, 64)
		if err == nil {
			fate[x] = v
		}
	}
	var still []pendingEvent
	for _, p := range r.pending {
		switch fate[p.xid] {
		case "committed":
			// A duplicate ID kept meanwhile is dropped, as ON CONFLICT DO
			// NOTHING would.
			if _, err := r.store.Append(context.Background(), []trail.Event{p.ev}); err != nil {
				return err
			}
		case "aborted":
			r.rolledBack = append(r.rolledBack, p.ev)
		case "in progress":
			still = append(still, p)
		default:
			return fmt.Errorf("PostgreSQL no longer knows what became of transaction %d (status %q)", p.xid, fate[p.xid])
		}
	}
	r.pending = still
	return nil
}

// Resolve asks PostgreSQL what became of the transactions that recorded
// events, through the recorder's pool or database: events of committed
// transactions are kept, those of rolled back ones dropped; those of
// transactions still in progress stay pending. Events, Store, RolledBack,
// Pending and the assertions call it, and fail the recorder's test (panic
// when it was made without one) when PostgreSQL cannot be asked; call it
// directly to handle the error yourself.
func (r *TxRecorder[TTx]) Resolve(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.resolveLocked(func(list string, out *string) error {
		return r.db.row(ctx, statusSQL, []any{list}, out)
	})
	if err != nil {
		return fmt.Errorf("trailtest: TxRecorder: %w", err)
	}
	return nil
}

// resolve is Resolve that fails the test on error.
func (r *TxRecorder[TTx]) resolve() {
	if err := r.Resolve(context.Background()); err != nil {
		if r.tb != nil {
			r.tb.Helper()
		}
		fatal(r.tb, err)
	}
}

func (r *TxRecorder[TTx]) reject(err error) {
	if err != nil {
		r.mu.Lock()
		r.rejected = append(r.rejected, err)
		r.mu.Unlock()
	}
}

// Events returns the kept events, oldest first: those recorded by
// transactions that committed (after Resolve), and by Record. An event
// whose transaction is still in progress is not among them.
func (r *TxRecorder[TTx]) Events() []trail.Event {
	r.resolve()
	return r.store.Events()
}

// Filter returns the kept events that m matches, oldest first. An invalid m
// matches nothing; the Require functions report it.
func (r *TxRecorder[TTx]) Filter(m Match) []trail.Event { return Filter(r.Events(), m) }

// Store returns the in-memory store of the kept events, for queries, after
// Resolve.
func (r *TxRecorder[TTx]) Store() *Store {
	r.resolve()
	return r.store
}

// RolledBack returns the events dropped because the transaction (or
// savepoint) that recorded them rolled back, oldest first. A test of a
// failing operation can check with it that the event was recorded, then
// dropped, rather than never recorded.
func (r *TxRecorder[TTx]) RolledBack() []trail.Event {
	r.resolve()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]trail.Event, len(r.rolledBack))
	for i, ev := range r.rolledBack {
		out[i] = copyEvent(ev)
	}
	return out
}

// Pending returns the number of events whose transaction is still in
// progress: neither kept nor dropped yet.
func (r *TxRecorder[TTx]) Pending() int {
	r.resolve()
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

// Rejected returns the errors of the Record and RecordTx calls that failed,
// oldest first; failing assertions list them.
func (r *TxRecorder[TTx]) Rejected() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.rejected)
}

// Reset forgets every event, kept, pending or rolled back, and every
// rejection.
func (r *TxRecorder[TTx]) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.store.Reset()
	r.pending, r.rolledBack, r.rejected = nil, nil, nil
}

// listRolledBack lists the events src dropped with their transactions,
// when it keeps them, for failure messages.
func listRolledBack(src Source) string {
	r, ok := src.(interface{ RolledBack() []trail.Event })
	if !ok {
		return ""
	}
	evs := r.RolledBack()
	if len(evs) == 0 {
		return ""
	}
	return "\n" + listEvents("rolled back with their transactions", evs)
}

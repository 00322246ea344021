package trailsql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailpgx"
)

// Store is the PostgreSQL store over a *sql.DB. Everything but AppendTx is
// trailpgx.Store's, run on the pgx connection beneath database/sql.
type Store struct {
	*trailpgx.Store
	db *sql.DB
}

var _ trail.TxStore[*sql.Tx] = (*Store)(nil)

// ErrNotPgx is returned when the *sql.DB does not use pgx's stdlib driver.
var ErrNotPgx = errors.New("trailsql: the *sql.DB must use pgx's driver (import github.com/jackc/pgx/v5/stdlib; sql.Open(\"pgx\", dsn))")

// New returns a store over db, which must use the driver of
// github.com/jackc/pgx/v5/stdlib. It checks that the server answers; call
// Migrate before the first write. A bare store records nothing by itself:
// NewClient builds the client (with the privacy layer) over it in one call.
func New(ctx context.Context, db *sql.DB, cfg *trailpgx.Config) (*Store, error) {
	if db == nil {
		return nil, errors.New("trailsql: New: db is nil")
	}
	acquire := func(ctx context.Context, fn func(*pgx.Conn) error) error {
		c, err := db.Conn(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Raw(func(dc any) error {
			sc, ok := dc.(*stdlib.Conn)
			if !ok {
				return ErrNotPgx
			}
			return fn(sc.Conn())
		})
	}
	ps, err := trailpgx.NewWithAcquirer(ctx, acquire, cfg)
	if err != nil {
		return nil, err
	}
	return &Store{Store: ps, db: db}, nil
}

// Open opens a *sql.DB on dsn with pgx's driver and returns a store over it
// that closes it on Close.
func Open(ctx context.Context, dsn string, cfg *trailpgx.Config) (*Store, error) {
	if _, err := pgx.ParseConfig(dsn); err != nil {
		return nil, fmt.Errorf("trailsql: bad PostgreSQL DSN: %w", err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("trailsql: %w", err)
	}
	s, err := New(ctx, db, cfg)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// DB returns the *sql.DB the store uses.
func (s *Store) DB() *sql.DB { return s.db }

// AppendTx stores events inside tx, the caller's transaction: they exist if
// and only if tx commits. Whatever the batch size it is one statement, one
// round trip on tx's connection. A month the store has not seen gets its
// partition first, on another connection (never inside tx).
func (s *Store) AppendTx(ctx context.Context, tx *sql.Tx, events []trail.Event) ([]trail.Result, error) {
	if tx == nil {
		return nil, errors.New("trailsql: AppendTx: tx is nil")
	}
	q, args, finish, err := s.InsertSQL(events)
	if err != nil {
		return nil, err
	}
	if err := s.EnsurePartitions(ctx, events); err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("trailsql: append: %w", trailpgx.TxAppendError(err))
	}
	defer rows.Close()
	var ids []uuid.UUID
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("trailsql: append: %w", err)
		}
		u, err := uuid.Parse(id)
		if err != nil {
			return nil, fmt.Errorf("trailsql: append: %w", err)
		}
		ids = append(ids, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trailsql: append: %w", trailpgx.TxAppendError(err))
	}
	results := finish(ids)
	err = trailpgx.CheckDuplicates(events, results, func(held []uuid.UUID) (map[uuid.UUID]trail.Event, error) {
		strs := make([]string, len(held))
		for i, id := range held {
			strs[i] = id.String()
		}
		rows, err := tx.QueryContext(ctx, s.HeldSQL(), strs)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out := make(map[uuid.UUID]trail.Event, len(held))
		for rows.Next() {
			var id string
			ev, err := trailpgx.ScanHeld(func(dest ...any) error {
				dest[0] = &id
				return rows.Scan(dest...)
			})
			if err != nil {
				return nil, err
			}
			if ev.ID, err = uuid.Parse(id); err != nil {
				return nil, err
			}
			out[ev.ID] = ev
		}
		return out, rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("trailsql: append: %w", err)
	}
	return results, nil
}

// Close closes the *sql.DB.
func (s *Store) Close() error { return s.db.Close() }

var defaultClient atomic.Pointer[trail.Client[*sql.Tx]]

// SetDefault makes c the client of the package-level RecordTx.
func SetDefault(c *trail.Client[*sql.Tx]) { defaultClient.Store(c) }

// RecordTx records ev in tx with the default client (SetDefault, else the
// first made by NewClient), filling it from ctx. The event exists if and
// only if tx commits.
func RecordTx(ctx context.Context, tx *sql.Tx, ev trail.Event) (trail.Result, error) {
	c := defaultClient.Load()
	if c == nil {
		return trail.Result{}, errors.New("trailsql: RecordTx: no client yet: call trailsql.NewClient once at start-up (or SetDefault)")
	}
	return c.RecordTx(ctx, tx, ev)
}

// BeginTx begins a transaction on db and sets trail.actor, trail.tenant and
// trail.request_id from ctx for the transaction (set_config(…, true)), as
// trailpgx.BeginTx does. database/sql sends BEGIN on its own, so this costs
// one more round trip than trailpgx.BeginTx.
func BeginTx(ctx context.Context, db *sql.DB, opts *sql.TxOptions) (*sql.Tx, error) {
	set, err := trailpgx.SettingsSQL(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("trailsql: begin: %w", err)
	}
	if _, err := tx.ExecContext(ctx, set); err != nil {
		tx.Rollback()
		return nil, fmt.Errorf("trailsql: begin: set context: %w", err)
	}
	return tx, nil
}

// WithTx runs fn in a transaction begun by BeginTx: it commits when fn
// returns nil and rolls back when fn returns an error or panics (the panic
// then continues).
func WithTx(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := BeginTx(ctx, db, nil)
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("trailsql: rollback: %w", rbErr))
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("trailsql: commit: %w", err)
	}
	return nil
}

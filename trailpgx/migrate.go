package trailpgx

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/trailhq/trail/internal/migrate"
)

// The schema's history: embedded, versioned SQL files NNNN_name.up.sql, run
// by the shared migrator (internal/migrate) that the SQLite store uses too.
// The files hold placeholders that render replaces, so that one history
// serves any schema and role names.
//
//go:embed migrations/*.up.sql
var migrationFS embed.FS

func (s *Store) render(sql string) string {
	return strings.NewReplacer(
		"@schema_lit@", quoteLiteral(s.cfg.Schema),
		"@schema@", s.schema,
		"@reader_lit@", quoteLiteral(s.cfg.ReaderRole),
		"@writer_lit@", quoteLiteral(s.cfg.WriterRole),
		"@reader@", pgx.Identifier{s.cfg.ReaderRole}.Sanitize(),
		"@writer@", pgx.Identifier{s.cfg.WriterRole}.Sanitize(),
	).Replace(sql)
}

func (s *Store) migrator() (*migrate.Migrator, error) {
	ms, err := migrate.Load(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	for i := range ms {
		ms[i].SQL = s.render(ms[i].SQL)
	}
	table := s.cfg.Schema + ".trail_migrations"
	return migrate.New(ms, &migrate.Config{Table: table, Lock: "LOCK TABLE " + table + " IN EXCLUSIVE MODE", Now: s.cfg.Now})
}

// SchemaVersion returns the version the store's schema is at (0 when the
// database has no Trail schema under that name) and the latest this binary
// knows. It creates and changes nothing: read-only commands use it to
// refuse a database that was never migrated instead of migrating it.
func (s *Store) SchemaVersion(ctx context.Context) (current, latest int, err error) {
	m, err := s.migrator()
	if err != nil {
		return 0, 0, fmt.Errorf("trailpgx: %w", err)
	}
	err = s.with(ctx, func(c *pgx.Conn) error {
		var present bool
		if err := c.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", s.schema+".trail_migrations").Scan(&present); err != nil || !present {
			return err
		}
		current, err = m.Status(ctx, migrateDB{c})
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("trailpgx: schema version: %w", err)
	}
	return current, m.Latest(), nil
}

// Migrate brings the store's schema to the newest version, then makes sure
// partitions exist for the previous month, this month and Config.MonthsAhead
// months ahead. Each migration runs in its own transaction with the
// migrations table locked, so concurrent Migrate calls (several replicas
// starting at once) apply each version exactly once; running Migrate again
// changes nothing. The connecting role must be able to create the schema
// (or own it) and, the first time on a cluster, the reader and writer roles.
func (s *Store) Migrate(ctx context.Context) error {
	m, err := s.migrator()
	if err != nil {
		return fmt.Errorf("trailpgx: %w", err)
	}
	err = s.with(ctx, func(c *pgx.Conn) error {
		// CREATE … IF NOT EXISTS can still race with itself; retry once.
		for attempt := 0; ; attempt++ {
			_, err := c.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+s.schema+"; CREATE TABLE IF NOT EXISTS "+s.schema+
				".trail_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)")
			if err == nil {
				break
			}
			var pgErr *pgconn.PgError
			if attempt == 0 && errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "42P06" || pgErr.Code == "42P07") {
				continue
			}
			return fmt.Errorf("trailpgx: migrate: create schema %s: %w", s.cfg.Schema, err)
		}
		_, err := m.Up(ctx, migrateDB{c})
		return err
	})
	if err != nil {
		return fmt.Errorf("trailpgx: %w", err)
	}
	s.parts.reset()
	now := s.cfg.Now().UTC()
	months := []int{monthIndex(now) - 1}
	for i := 0; i <= s.cfg.MonthsAhead; i++ {
		months = append(months, monthIndex(now)+i)
	}
	return s.ensureMonths(ctx, months)
}

// Version returns the schema version the database is at (0 when never
// migrated) and the newest this build knows.
func (s *Store) Version(ctx context.Context) (current, latest int, err error) {
	m, err := s.migrator()
	if err != nil {
		return 0, 0, err
	}
	err = s.with(ctx, func(c *pgx.Conn) error {
		var exists bool
		if err := c.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", s.cfg.Schema+".trail_migrations").Scan(&exists); err != nil || !exists {
			return err
		}
		current, err = m.Status(ctx, migrateDB{c})
		return err
	})
	return current, m.Latest(), err
}

// migrateDB adapts a pgx connection to the shared migrator.
type migrateDB struct{ c *pgx.Conn }

func (d migrateDB) Begin(ctx context.Context) (migrate.Tx, error) {
	tx, err := d.c.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return migrateTx{tx}, nil
}

type migrateTx struct{ tx pgx.Tx }

// Exec has no arguments, so pgx sends the simple protocol: a whole file runs
// as one message.
func (t migrateTx) Exec(ctx context.Context, sql string) error {
	_, err := t.tx.Exec(ctx, sql)
	return err
}

func (t migrateTx) QueryInts(ctx context.Context, sql string) ([]int64, error) {
	rows, err := t.tx.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

func (t migrateTx) QueryStrings(ctx context.Context, sql string) ([]string, error) {
	rows, err := t.tx.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func (t migrateTx) Commit(ctx context.Context) error   { return t.tx.Commit(ctx) }
func (t migrateTx) Rollback(ctx context.Context) error { return t.tx.Rollback(ctx) }

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

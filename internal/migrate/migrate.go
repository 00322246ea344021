package migrate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Migration is one versioned schema change.
type Migration struct {
	Version int    // 1, 2, 3… with no gaps
	Name    string // "init", from 0001_init.up.sql
	SQL     string // the whole file; may hold several statements
}

// String returns "0001_init", the form errors use.
func (m Migration) String() string { return fmt.Sprintf("%04d_%s", m.Version, m.Name) }

var fileRE = regexp.MustCompile(`^([0-9]{4,})_([a-z0-9_]+)\.up\.sql$`)

// Load reads the migrations in directory dir of fsys: files named
// NNNN_name.up.sql. Versions must start at 1 and have no gaps or repeats, so
// that a typo in a file name is an error at startup rather than a skipped
// migration. Other files (README, .down.sql) are ignored.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("migrate: read %s: %w", dir, err)
	}
	var ms []Migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".up.sql") {
			continue
		}
		m := fileRE.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migrate: %s: name must be NNNN_name.up.sql (lower-case name)", e.Name())
		}
		v, err := strconv.Atoi(m[1])
		if err != nil || v < 1 {
			return nil, fmt.Errorf("migrate: %s: bad version", e.Name())
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		if strings.TrimSpace(string(b)) == "" {
			return nil, fmt.Errorf("migrate: %s is empty", e.Name())
		}
		ms = append(ms, Migration{Version: v, Name: m[2], SQL: string(b)})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range ms {
		if m.Version != i+1 {
			if i > 0 && ms[i-1].Version == m.Version {
				return nil, fmt.Errorf("migrate: version %d appears twice (%s, %s)", m.Version, ms[i-1], m)
			}
			return nil, fmt.Errorf("migrate: %s: expected version %d (versions start at 1 with no gaps)", m, i+1)
		}
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("migrate: no migrations in %s", dir)
	}
	return ms, nil
}

// DB is the database the migrator drives: it only needs to begin a
// transaction. The SQLite store adapts *sql.DB, the PostgreSQL store a pgx pool.
type DB interface {
	Begin(ctx context.Context) (Tx, error)
}

// Tx is one transaction of a DB.
type Tx interface {
	// Exec runs sql, which may hold several statements and has no parameters.
	Exec(ctx context.Context, sql string) error
	// QueryInts runs a query returning one integer column and returns its rows.
	QueryInts(ctx context.Context, sql string) ([]int64, error)
	// QueryStrings runs a query returning one text column and returns its rows.
	QueryStrings(ctx context.Context, sql string) ([]string, error)
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// Config tunes a Migrator. The zero value works.
type Config struct {
	// Table is the version table. Default "trail_migrations". It may be
	// schema-qualified on PostgreSQL ("audit.trail_migrations").
	Table string
	// Lock, if set, runs first in every migration transaction, before the
	// version table is created or read, so that concurrent migrators take
	// turns; it must not need that table. On PostgreSQL a transaction-scoped
	// lock such as "SELECT pg_advisory_xact_lock(…)" fits; SQLite needs none
	// because the store begins its transactions IMMEDIATE.
	Lock string
	// Now stamps applied_at. Default time.Now.
	Now func() time.Time
}

// ErrTooNew is matched by the error for a database migrated by a newer
// binary: running older code against a newer schema could corrupt it.
var ErrTooNew = errors.New("database schema is newer than this binary")

// Migrator applies a fixed list of migrations.
type Migrator struct {
	ms  []Migration
	cfg Config
}

var tableRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$`)

// New returns a Migrator for ms (as returned by Load).
func New(ms []Migration, cfg *Config) (*Migrator, error) {
	m := &Migrator{ms: ms}
	if cfg != nil {
		m.cfg = *cfg
	}
	if m.cfg.Table == "" {
		m.cfg.Table = "trail_migrations"
	}
	if !tableRE.MatchString(m.cfg.Table) {
		return nil, fmt.Errorf("migrate: bad table name %q", m.cfg.Table)
	}
	if m.cfg.Now == nil {
		m.cfg.Now = time.Now
	}
	for i, mg := range ms {
		if mg.Version != i+1 {
			return nil, fmt.Errorf("migrate: migration %d has version %d; versions start at 1 with no gaps", i, mg.Version)
		}
	}
	return m, nil
}

// Latest is the highest version this migrator knows.
func (m *Migrator) Latest() int { return len(m.ms) }

// Status reports the version the database is at (0 for a database never
// migrated). It creates nothing.
func (m *Migrator) Status(ctx context.Context, db DB) (int, error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback(ctx)
	if err := tx.Exec(ctx, m.createTable()); err != nil {
		return 0, fmt.Errorf("migrate: version table: %w", err)
	}
	v, _, err := m.current(ctx, tx)
	return v, err
}

// Up applies, in order, each migration the database has not had yet, each in
// its own transaction together with its row in the version table, and returns
// how many it applied. A failure names the migration and leaves the database
// at the previous version. A database at a version this binary does not know
// is refused with an error matching ErrTooNew.
func (m *Migrator) Up(ctx context.Context, db DB) (applied int, err error) {
	for {
		done, err := m.step(ctx, db)
		if err != nil {
			return applied, err
		}
		if done {
			return applied, nil
		}
		applied++
	}
}

// step applies the next migration, or reports done when there is none.
func (m *Migrator) step(ctx context.Context, db DB) (done bool, err error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("migrate: begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback(ctx)
		}
	}()
	if m.cfg.Lock != "" {
		if err := tx.Exec(ctx, m.cfg.Lock); err != nil {
			return false, fmt.Errorf("migrate: lock: %w", err)
		}
	}
	if err := tx.Exec(ctx, m.createTable()); err != nil {
		return false, fmt.Errorf("migrate: create %s: %w", m.cfg.Table, err)
	}
	cur, names, err := m.current(ctx, tx)
	if err != nil {
		return false, err
	}
	for i, name := range names {
		if i < len(m.ms) && name != m.ms[i].Name {
			return false, fmt.Errorf("migrate: database has migration %04d_%s where this binary has %s: not the same schema history", i+1, name, m.ms[i])
		}
	}
	if cur == len(m.ms) {
		return true, tx.Rollback(ctx)
	}
	next := m.ms[cur]
	if err := tx.Exec(ctx, next.SQL); err != nil {
		return false, fmt.Errorf("migrate: migration %s failed: %w", next, err)
	}
	ins := fmt.Sprintf("INSERT INTO %s (version, name, applied_at) VALUES (%d, '%s', %d)",
		m.cfg.Table, next.Version, next.Name, m.cfg.Now().UnixMicro())
	if err := tx.Exec(ctx, ins); err != nil {
		return false, fmt.Errorf("migrate: migration %s: record version: %w", next, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("migrate: migration %s: commit: %w", next, err)
	}
	return false, nil
}

func (m *Migrator) createTable() string {
	return "CREATE TABLE IF NOT EXISTS " + m.cfg.Table +
		" (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
}

// current returns the database's version and the names of its applied
// migrations in version order, refusing a history with gaps or one newer than
// this binary.
func (m *Migrator) current(ctx context.Context, tx Tx) (int, []string, error) {
	vs, err := tx.QueryInts(ctx, "SELECT version FROM "+m.cfg.Table+" ORDER BY version")
	if err != nil {
		return 0, nil, fmt.Errorf("migrate: read %s: %w", m.cfg.Table, err)
	}
	names, err := tx.QueryStrings(ctx, "SELECT name FROM "+m.cfg.Table+" ORDER BY version")
	if err != nil {
		return 0, nil, fmt.Errorf("migrate: read %s: %w", m.cfg.Table, err)
	}
	if len(names) != len(vs) {
		return 0, nil, fmt.Errorf("migrate: %s changed while being read", m.cfg.Table)
	}
	for i, v := range vs {
		if v != int64(i+1) {
			return 0, nil, fmt.Errorf("migrate: %s has version %d where %d was expected: the schema history is damaged", m.cfg.Table, v, i+1)
		}
	}
	if len(vs) > len(m.ms) {
		return 0, nil, fmt.Errorf("migrate: %w: database is at version %d (%04d_%s), this binary knows up to %d; upgrade Trail",
			ErrTooNew, len(vs), len(vs), names[len(names)-1], len(m.ms))
	}
	return len(vs), names, nil
}

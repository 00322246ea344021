package trailcli

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailpgx"
	"github.com/trailhq/trail/trailprivacy"
)

// OpenStore opens the embedded store at --db. Commands that only read pass
// create=false: a missing file is then an error rather than a new empty
// database left behind by a typo. Opening brings the schema up to date.
func (e *Env) OpenStore(create bool) (*trailsqlite.Store, error) {
	path := e.Globals.DB
	if path == "" {
		return nil, Usagef("--db: empty path")
	}
	if !create {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no Trail database at %s: create one with \"trail migrate\", or try \"trail demo\"", path)
		}
	}
	s, err := trailsqlite.Open(e.Ctx, path, nil)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

// NewClient returns a client recording into store as the CLI: events that
// name no source get source "cli".
func (e *Env) NewClient(store trail.TxStore[*sql.Tx]) (*trail.Client[*sql.Tx], error) {
	cfg := &trail.Config{Source: "cli", Now: e.Now}
	if st, ok := store.(*trailsqlite.Store); ok {
		p, err := e.SQLitePrivacy(st) // events are stored protected (privacy.go)
		if err != nil {
			return nil, err
		}
		cfg.Transform = p
	}
	return trail.NewClient(store, cfg)
}

// eventBackend is the store `trail record`, `query` and `history` work on,
// with its privacy layer: events are Transformed before they are stored and
// Revealed after they are read, on either store.
type eventBackend struct {
	store trail.Store
	p     *trailprivacy.Privacy
	// prepare fills, normalizes, validates and transforms an event as the
	// CLI's client (source "cli"); it writes no event, only a new subject's
	// key (under trail.RunBatch with p, none until the batch ends).
	prepare func(ctx context.Context, ev trail.Event) (trail.Event, error)
	close   func()
}

// openPostgres opens the PostgreSQL store at dsn, brings its schema up to
// date, and opens a database/sql handle on the same database for the key
// tables. On error nothing stays open.
func (e *Env) openPostgres(dsn string) (*trailpgx.Store, *sql.DB, error) {
	return e.openPostgresFor(dsn, true)
}

// openPostgresFor is openPostgres; unless create is set, a database with no
// Trail schema is refused, as a missing SQLite file is (OpenStore), instead
// of being given one by a command that only reads.
func (e *Env) openPostgresFor(dsn string, create bool) (*trailpgx.Store, *sql.DB, error) {
	how := pgExisting
	if create {
		how = pgCreate
	}
	st, err := e.openPgStore(dsn, how)
	if err != nil {
		return nil, nil, err
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		st.Close()
		return nil, nil, fmt.Errorf("open PostgreSQL for keys: %w", err)
	}
	return st, db, nil
}

// pgSchema says what opening the PostgreSQL store does to its schema.
type pgSchema int

const (
	pgCreate   pgSchema = iota // create it or bring it up to date: commands that set up or write
	pgExisting                 // bring an existing one up to date; refuse a database without one
	pgReadOnly                 // change nothing; refuse a database without one
)

// openPgStore opens the PostgreSQL store at dsn and treats its schema as how
// says. A database with no Trail schema is refused, unless pgCreate, in one
// line pointing at `trail migrate` (rather than PostgreSQL's "relation does
// not exist", or a schema created by a command that only reads). On error
// nothing stays open.
func (e *Env) openPgStore(dsn string, how pgSchema) (*trailpgx.Store, error) {
	st, err := trailpgx.Open(e.Ctx, dsn, nil)
	if err != nil {
		return nil, err
	}
	if how != pgCreate {
		var v int
		if v, _, err = st.SchemaVersion(e.Ctx); err == nil && v == 0 {
			err = errors.New(`no Trail schema in that PostgreSQL database: create it with "trail migrate --postgres DSN"`)
		}
	}
	if err == nil && how != pgReadOnly {
		err = st.Migrate(e.Ctx)
	}
	if err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// openEvents opens PostgreSQL when postgres (--postgres, TRAIL_POSTGRES) is
// set, else the SQLite file of --db (the file, or the PostgreSQL schema,
// created only when create is true). An existing schema is brought up to
// date in both cases.
func (e *Env) openEvents(postgres string, create bool) (*eventBackend, error) {
	cfg := &trail.Config{Source: "cli", Now: e.Now}
	if postgres == "" {
		st, err := e.OpenStore(create)
		if err != nil {
			return nil, err
		}
		p, err := e.SQLitePrivacy(st)
		if err != nil {
			st.Close()
			return nil, err
		}
		cfg.Transform = p
		c, err := trail.NewClient[*sql.Tx](st, cfg)
		if err != nil {
			st.Close()
			return nil, err
		}
		return &eventBackend{store: st, p: p, prepare: c.Prepare, close: func() { st.Close() }}, nil
	}
	st, db, err := e.openPostgresFor(postgres, create) // db: the privacy layer's key table
	if err != nil {
		return nil, err
	}
	p, _, err := e.openPrivacy(db, st.Schema(), "", false)
	if err != nil {
		db.Close()
		st.Close()
		return nil, err
	}
	cfg.Transform = p
	c, err := trail.NewClient[pgx.Tx](st, cfg)
	if err != nil {
		db.Close()
		st.Close()
		return nil, err
	}
	return &eventBackend{store: st, p: p, prepare: c.Prepare, close: func() { db.Close(); st.Close() }}, nil
}

package trailcli

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailsqlite"
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

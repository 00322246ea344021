package trailsql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailpgx"
)

// NewClient is the one call that sets Trail up over a *sql.DB opened with
// pgx's driver: it opens the store, brings its schema up to date, opens the
// privacy layer with the subject keys in the store's schema (default
// "trail"), and returns a client that records with RecordTx in the caller's
// *sql.Tx and reads events back revealed (Client.Query, Get, History). The
// defaults are those of trailpgx.NewClient: secrets redacted, personal
// fields encrypted under TRAIL_MASTER_KEY, and with no master key an error
// that says how to set one or how to opt out (cfg.Privacy.Plaintext).
//
// The first client made becomes the default of the package-level RecordTx.
// Client.Close closes the store, and with it db (as Store.Close does).
func NewClient(ctx context.Context, db *sql.DB, cfg *trailpgx.ClientConfig) (*trail.Client[*sql.Tx], error) {
	var c trailpgx.ClientConfig
	if cfg != nil {
		c = *cfg
	}
	if db == nil {
		return nil, errors.New("trailsql: NewClient: db is nil")
	}
	store, err := New(ctx, db, &c.Store)
	if err != nil {
		return nil, err
	}
	// The privacy layer first: a missing or wrong master key fails here,
	// before the migration has written anything.
	p, _, err := c.Privacy.Open(ctx, db, store.Schema(), "")
	if err != nil {
		return nil, fmt.Errorf("trailsql: privacy: %w", err)
	}
	if !c.SkipMigrate {
		if err := store.Migrate(ctx); err != nil {
			return nil, err
		}
	}
	// Learn the partitions, and create this month's and the next ones', now:
	// RecordTx otherwise does it on the first event, on a second connection
	// (never inside the caller's transaction), which a pool of one
	// connection (db.SetMaxOpenConns(1)) cannot give while that transaction
	// holds it.
	if err := store.EnsurePartitions(ctx, []trail.Event{{OccurredAt: time.Now()}}); err != nil && !c.SkipMigrate {
		return nil, err
	}
	client, err := trail.NewClient[*sql.Tx](store, &trail.Config{Source: c.Source, Now: c.Now, Trace: c.Trace, Transform: p})
	if err != nil {
		return nil, err
	}
	defaultClient.CompareAndSwap(nil, client)
	return client, nil
}

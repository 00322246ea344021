package trailpgx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailprivacy"
)

// ClientConfig configures NewClient. A nil *ClientConfig means every
// default, and the defaults are safe: the schema "trail", secrets redacted
// by the default deny-list, personal fields encrypted under the master key
// from TRAIL_MASTER_KEY.
type ClientConfig struct {
	// Store configures the store (schema, roles, partitions). Default: the
	// zero Config, schema "trail".
	Store Config
	// Source is written into events that name none, e.g. the service's
	// name. Default: empty.
	Source string
	// Privacy configures redaction and encryption: the master key (default
	// TRAIL_MASTER_KEY, else Privacy.MasterKeyFile or Privacy.KMS), a
	// policy, or the explicit opt-out Privacy.Plaintext. The subject keys
	// live in the store's own schema. Default: the zero Setup.
	Privacy trailprivacy.Setup
	// SkipMigrate leaves the schema as it is, for services whose database
	// role may not run DDL: run `trail migrate` (or Store.Migrate) at
	// deploy time instead. Default: false, NewClient migrates.
	SkipMigrate bool
	// Now is the client's clock. Default: time.Now.
	Now func() time.Time
	// Trace returns the trace and span IDs active in a context
	// (trail.Config.Trace), e.g. trailotel.Trace. Default: none.
	Trace func(ctx context.Context) (traceID, spanID string)
}

// NewClient is the one call that sets Trail up on PostgreSQL: it opens the
// store over pool, brings its schema up to date, opens the privacy layer
// with the subject keys in the store's schema, and returns a client that
// records with RecordTx in the caller's pgx transactions and reads events
// back revealed (Client.Query, Get, History). Every event it writes is
// queued for the sealer (`trail serve` or `trail seal`), which gives it its
// place in the tenant's tamper-evident log.
//
// With no master key configured it fails with an error that says how to set
// one, or how to opt out (ClientConfig.Privacy.Plaintext), before anything
// is written to the database.
// The first client made becomes the default of the package-level RecordTx.
// The pool stays the caller's: Client.Close releases only what NewClient
// opened.
func NewClient(ctx context.Context, pool *pgxpool.Pool, cfg *ClientConfig) (*trail.Client[pgx.Tx], error) {
	var c ClientConfig
	if cfg != nil {
		c = *cfg
	}
	if pool == nil {
		return nil, errors.New("trailpgx: NewClient: pool is nil")
	}
	store, err := New(ctx, pool, &c.Store)
	if err != nil {
		return nil, err
	}
	// The privacy layer first: a missing or wrong master key fails here,
	// before the migration has written anything.
	db := stdlib.OpenDBFromPool(pool) // the key store speaks database/sql
	client, err := newPrivateClient(ctx, store, db, c)
	if err != nil {
		db.Close()
		return nil, err
	}
	if !c.SkipMigrate {
		if err := store.Migrate(ctx); err != nil {
			client.Close()
			return nil, err
		}
	}
	defaultClient.CompareAndSwap(nil, client)
	return client, nil
}

// dbCloser is the part of *sql.DB a setup keeps for the key store.
type dbCloser interface {
	trailprivacy.DBTX
	Close() error
}

// newPrivateClient opens the privacy layer over db in store's schema and
// returns the client; db is closed by the client's Close.
func newPrivateClient(ctx context.Context, store *Store, db dbCloser, c ClientConfig) (*trail.Client[pgx.Tx], error) {
	p, _, err := c.Privacy.Open(ctx, db, store.Schema(), "")
	if err != nil {
		return nil, fmt.Errorf("trailpgx: privacy: %w", err)
	}
	return trail.NewClient[pgx.Tx](store, &trail.Config{Source: c.Source, Now: c.Now, Trace: c.Trace, Transform: p, Close: db.Close})
}

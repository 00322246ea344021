package trailsqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailprivacy"
)

// ClientConfig configures NewClient. A nil *ClientConfig means every
// default, and the defaults are safe: secrets redacted by the default
// deny-list, personal fields encrypted under a master key that is created
// beside the database on first use (<path>.master.key, mode 0600: back it
// up) unless TRAIL_MASTER_KEY or a key file names one.
type ClientConfig struct {
	// Store configures the store. Default: the zero Config.
	Store Config
	// Source is written into events that name none, e.g. the service's
	// name. Default: empty.
	Source string
	// Privacy configures redaction and encryption: a policy, the master key
	// (default TRAIL_MASTER_KEY, else Privacy.MasterKeyFile or Privacy.KMS,
	// else the key file beside the database, created if absent), or the
	// explicit opt-out Privacy.Plaintext. Default: the zero Setup.
	Privacy trailprivacy.Setup
	// Notice, when set, receives one-line notices meant for the operator,
	// e.g. that a master key file was created and must be backed up.
	// Default: none.
	Notice func(string)
	// Now is the client's clock. Default: time.Now.
	Now func() time.Time
	// Trace returns the trace and span IDs active in a context
	// (trail.Config.Trace), e.g. trailotel.Trace. Default: none.
	Trace func(ctx context.Context) (traceID, spanID string)
}

// Client is a trail.Client over the embedded store, with the database handle
// the service's own tables share.
type Client struct {
	*trail.Client[*sql.Tx]
	store *Store
}

// DB returns the database handle: the service's own tables live in the same
// file, and RecordTx writes in the transactions begun on it.
func (c *Client) DB() *sql.DB { return c.store.DB() }

// NewClient is the one call that sets Trail up on an embedded SQLite file:
// it opens (creating if needed) and migrates the database at path, opens the
// privacy layer with the subject keys in the same file, and returns a client
// that records in the caller's transactions (RecordTx on a *sql.Tx begun on
// Client.DB) or on its own (Record), and reads events back revealed
// (Query, Get, History). Every event it writes is queued for the sealer
// (`trail serve` or `trail seal` on the same file). Close closes the
// database.
func NewClient(ctx context.Context, path string, cfg *ClientConfig) (*Client, error) {
	var c ClientConfig
	if cfg != nil {
		c = *cfg
	}
	store, err := Open(ctx, path, &c.Store)
	if err != nil {
		return nil, err
	}
	p, notice, err := c.Privacy.Open(ctx, store.DB(), "", store.Path()+".master.key")
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("trailsqlite: privacy: %w", err)
	}
	if notice != "" && c.Notice != nil {
		c.Notice(notice)
	}
	client, err := trail.NewClient[*sql.Tx](store, &trail.Config{Source: c.Source, Now: c.Now, Trace: c.Trace, Transform: p})
	if err != nil {
		store.Close()
		return nil, err
	}
	return &Client{Client: client, store: store}, nil
}

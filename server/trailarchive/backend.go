package trailarchive

import (
	"context"
	"errors"

	"github.com/trailhq/trail/trailseal"
)

// Backend is what retention needs from a store: its sealed log (to find the
// events and their leaves), its policy tables, and the purge. The SQLite
// store is NewSQLite; PostgreSQL's is NewPostgres.
type Backend interface {
	// Log is the store's sealed log.
	Log() trailseal.Store
	// Set reads the policies and holds in force.
	Set(ctx context.Context) (*Set, error)
	// SetPolicy stores p (replacing the rule of the same tenant and action)
	// after Set.CheckSet, in one transaction.
	SetPolicy(ctx context.Context, p Policy) error
	// DeletePolicy removes the rule of tenant and action; false if none.
	DeletePolicy(ctx context.Context, tenant, action string) (bool, error)
	// PutHold places or replaces a hold (after Hold.Validate). Under
	// OnlyStrengthen(ctx), a replace must strengthen the hold in force
	// (Hold.CheckStrengthens): else it fails with a *WeakenError, leaves
	// the hold as it was, and records the refusal.
	PutHold(ctx context.Context, h Hold) error
	// ReleaseHold removes a hold; false if none.
	ReleaseHold(ctx context.Context, tenant, subject string) (bool, error)
	// Purge removes the sealed events of log at the given leaves in one
	// transaction, and records their seqs as purged (with archive, the
	// manifest key, or "" for a delete), unless a hold read in that same
	// transaction covers one of them: then it fails with ErrHeld and
	// removes nothing. Leaves whose event is already gone are skipped.
	Purge(ctx context.Context, log string, leaves []trailseal.SealedEvent, archive string) (int64, error)
	// Purged returns the seqs of log that retention removed, each range with
	// the manifest key of the archive batch holding its events ("" when they
	// were deleted), in any order. Verification uses it to check that every
	// archived range is still in the archive.
	Purged(ctx context.Context, log string) ([]PurgedRange, error)
}

// PurgedRange is a run of seqs [From, To) of one log removed by retention,
// and the manifest key of the batch that archived them ("" for a delete).
type PurgedRange struct {
	From    int64  `json:"from"`
	To      int64  `json:"to"`
	Archive string `json:"archive,omitempty"`
}

// ErrHeld is returned by Purge when a legal hold covers an event.
var ErrHeld = errors.New("trailarchive: a legal hold covers these events")

// BulkPurger is a Backend that purges a whole run at once, grouped its own
// way: PostgreSQL's monthly partitions hold every tenant, so it groups the
// events by partition, and drops a partition whose every row goes instead of
// deleting the rows. When the Backend is one, Run first archives (writes
// and reads back) every archive batch, then calls PurgeBatches once.
type BulkPurger interface {
	// PurgeBatches purges the events of batches (those of an archive batch
	// recorded with its Key) in transactions that each re-read the holds
	// as Purge does, failing with ErrHeld and removing nothing of that
	// transaction when one covers an event. It stops at the first error and
	// returns the events removed so far (what earlier transactions purged
	// stays purged). progress, when not nil, is called after each
	// transaction with the number of the batches' events handled so far.
	PurgeBatches(ctx context.Context, batches []*Batch, progress func(handled int64)) (int64, error)
}

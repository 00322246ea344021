package trailseal

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"golang.org/x/mod/sumdb/tlog"
)

// PlatformLog is the log of platform events (events with an empty tenant).
// Tenants must start with a letter or digit, so no tenant can be named
// "_platform".
const PlatformLog = "_platform"

// LogName returns the name of the log that holds tenant's events: the tenant
// itself, or PlatformLog for platform events.
func LogName(tenant string) string {
	if tenant == "" {
		return PlatformLog
	}
	return tenant
}

// TenantOf is the inverse of LogName.
func TenantOf(log string) string {
	if log == PlatformLog {
		return ""
	}
	return log
}

// Errors callers branch on.
var (
	// ErrFenced is returned by Store.Seal and Store.SaveCheckpoint when the
	// lease epoch the caller holds is no longer current: another sealer took
	// over, and nothing was written.
	ErrFenced = errors.New("trailseal: lease epoch is no longer current (fenced)")
	// ErrNotLeader is returned by Sealer.Step when another sealer holds the lease.
	ErrNotLeader = errors.New("trailseal: another sealer holds the lease")
	// ErrConflict is returned by Store.Seal when a log's size is not the one the
	// batch extends: the batch was computed against a stale tree.
	ErrConflict = errors.New("trailseal: log size changed under the sealer")
	// ErrNotSealed is returned for an event that is stored but not sealed yet.
	ErrNotSealed = errors.New("trailseal: event is not sealed yet")
	// ErrUnknownEvent is returned for an event ID that is not stored at all.
	// It wraps trail.ErrNotFound.
	ErrUnknownEvent = &wrapped{msg: "trailseal: unknown event", err: trail.ErrNotFound}
	// ErrNoCheckpoint is returned when a log has no checkpoint (yet).
	ErrNoCheckpoint = errors.New("trailseal: no checkpoint")
	// ErrBadCheckpoint is wrapped by every error about a checkpoint that is
	// malformed, truncated, from another log or signed by an unknown key.
	ErrBadCheckpoint = errors.New("trailseal: bad checkpoint")
	// ErrBadProof is wrapped by every error about a malformed or failing proof.
	ErrBadProof = errors.New("trailseal: bad proof")
)

type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }

// Store is what a Trail store implements so that its events can be sealed,
// proved and verified. All methods are safe for concurrent use. Each store
// keeps, besides its append-only events:
//
//   - pending(event_id, tenant, recorded_at): one row per unsealed event,
//     written by Append in the same transaction as the event;
//   - leaves(log, seq, event_id UNIQUE, hash), PRIMARY KEY (log, seq);
//   - hashes(log, idx, hash), PRIMARY KEY (log, idx): the tree's stored
//     hashes in tlog's layout (tlog.StoredHashIndex);
//   - logs(log, size): each log's tree size;
//   - checkpoints(log, size, root, note, created_at);
//   - leases(name, holder, epoch, expires_at).
//
// Package sealtest is the suite every implementation must pass.
type Store interface {
	// Lease acquires or renews the lease called name for holder, for ttl,
	// on the store's clock. When the lease is free or expired, holder gets it
	// with epoch+1 (the first epoch is 1); when holder already holds it, the
	// expiry is extended and the epoch kept; when another holder holds an
	// unexpired lease, ok is false. A ttl <= 0 releases the lease if holder
	// holds it (ok is then false), so that a successor need not wait.
	Lease(ctx context.Context, name, holder string, ttl time.Duration) (epoch int64, ok bool, err error)
	// Pending returns up to limit unsealed events, oldest first (the order
	// they entered the pending queue), exactly as stored. A pending row whose
	// event row is gone is skipped.
	Pending(ctx context.Context, limit int) ([]trail.Event, error)
	// Seal writes batch in one transaction: its leaves, stored hashes and new
	// log sizes, and removes its events from the pending queue. It fails with
	// ErrFenced, writing nothing, unless fence is the current epoch of the
	// lease it names, and with ErrConflict unless every log's size is the
	// batch's OldSize.
	Seal(ctx context.Context, fence Fence, batch SealBatch) error
	// TreeSize returns the number of leaves of log (0 for an unknown log).
	TreeSize(ctx context.Context, log string) (int64, error)
	// ReadHashes returns log's stored hashes at indexes, in order; an index
	// not stored is an error. Verify asks for contiguous ranges of about
	// 2×BatchSize indexes (a BETWEEN query serves them); proofs and the
	// sealer ask for a few scattered ones.
	ReadHashes(ctx context.Context, log string, indexes []int64) ([]tlog.Hash, error)
	// Leaves returns log's leaves with seq in [from, to), by seq, each with
	// the stored event it names (nil when that event is gone). Missing seqs
	// are simply absent.
	Leaves(ctx context.Context, log string, from, to int64) ([]SealedEvent, error)
	// LeafOf returns the leaf of event id. It fails with ErrNotSealed when the
	// event is stored but not sealed, and with ErrUnknownEvent when it is not
	// stored.
	LeafOf(ctx context.Context, id uuid.UUID) (Leaf, error)
	// Unsealed returns the IDs of log's stored events that have neither a
	// leaf nor a pending row: rows that entered the table some other way
	// than a store's Append. Verify reports them as inserted. It must read
	// one consistent snapshot (one statement), or an event being sealed
	// concurrently could be seen with neither.
	Unsealed(ctx context.Context, log string) ([]uuid.UUID, error)
	// SaveCheckpoint appends a signed checkpoint to log's history, fenced
	// like Seal.
	SaveCheckpoint(ctx context.Context, fence Fence, cp Checkpoint) error
	// Checkpoints returns log's checkpoint history, oldest first.
	Checkpoints(ctx context.Context, log string) ([]Checkpoint, error)
	// LatestCheckpoint returns log's newest checkpoint, or ErrNoCheckpoint.
	LatestCheckpoint(ctx context.Context, log string) (Checkpoint, error)
	// Logs returns the names of all logs that have leaves or checkpoints,
	// sorted.
	Logs(ctx context.Context) ([]string, error)
}

// LogState is one log's size and newest checkpoint: what a sealer needs to
// know about every log when it becomes leader.
type LogState struct {
	Log            string
	Size           int64
	CheckpointSize int64     // 0 when the log has no checkpoint
	CheckpointTime time.Time // zero when the log has no checkpoint
}

// LogStater is optionally implemented by a Store that can report every log's
// state in one query. A sealer that becomes leader reads every log's state;
// without LogStater that takes 1 + 2 × logs calls.
type LogStater interface {
	LogStates(ctx context.Context) ([]LogState, error)
}

// Fence names the lease epoch a write is made under.
type Fence struct {
	Lease string // lease name, e.g. DefaultLeaseName
	Epoch int64
}

// Leaf is one sealed event's position in its log.
type Leaf struct {
	Log     string    `json:"log"`
	Seq     int64     `json:"seq"`
	EventID uuid.UUID `json:"event_id"`
	// Hash is tlog.RecordHash of the event's canonical bytes as stored.
	Hash tlog.Hash `json:"hash"`
	// OccurredAt is the event's occurred_at, set by the sealer: a store
	// may keep it beside the leaf to find the event (PostgreSQL's month
	// partition). It is a locator only, in no proof: the hash commits to
	// the event's time.
	OccurredAt time.Time `json:"-"`
}

// SealedEvent is a leaf with the event it names, as read back from the store.
type SealedEvent struct {
	Leaf
	Event *trail.Event // nil when the event row no longer exists
}

// StoredHash is one of a log's stored tree hashes (tlog's layout).
type StoredHash struct {
	Log   string
	Index int64
	Hash  tlog.Hash
}

// LogSize moves a log from OldSize to NewSize leaves.
type LogSize struct {
	Log              string
	OldSize, NewSize int64
}

// SealBatch is what one sealing transaction writes.
type SealBatch struct {
	Leaves []Leaf
	Hashes []StoredHash
	Sizes  []LogSize
	// Done are the events whose pending rows are removed: those of Leaves.
	Done []uuid.UUID
}

// Checkpoint is one signed statement of a log's size and root hash.
type Checkpoint struct {
	Log  string    `json:"log"`
	Size int64     `json:"size"`
	Root tlog.Hash `json:"root"`
	// Note is the signed note (text, blank line, signature lines), exactly
	// as signed: what third parties verify with note.Open.
	Note string `json:"note"`
	// Time is when the checkpoint was made (not signed).
	Time time.Time `json:"time"`
}

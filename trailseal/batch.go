package trailseal

import (
	"context"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"golang.org/x/mod/sumdb/tlog"
)

// LogRange is the half-open range [From, To) of one log's leaf seqs, or of
// its stored hash indexes (tlog.StoredHashIndex), depending on the call.
type LogRange struct {
	Log      string
	From, To int64
}

// BatchReader is optionally implemented by a Store that can read many logs
// in one query per call. Verify uses it for logs of at most
// Verifier.BatchSize leaves, read together in groups: with thousands of
// tenants of a few events each, one round trip per log and call, not the
// events, is what a verification costs. It also reads every log's size with
// TreeSizes, and a large log's stored hashes batch by batch with HashesOf
// (one range, in order).
// Each method is the multi-log form of the Store method it names, with the
// same semantics for every log; a log the store does not know is simply
// absent from the answer.
type BatchReader interface {
	// CheckpointsOf is Checkpoints for each of logs.
	CheckpointsOf(ctx context.Context, logs []string) (map[string][]Checkpoint, error)
	// TreeSizes is TreeSize for each of logs (absent: 0).
	TreeSizes(ctx context.Context, logs []string) (map[string]int64, error)
	// LeavesOf is Leaves for each range (Log, [From, To)): out[i] holds the
	// leaves of ranges[i], by seq.
	LeavesOf(ctx context.Context, ranges []LogRange) ([][]SealedEvent, error)
	// HashesOf returns, for each range (Log, stored hash indexes [From,
	// To)), the stored hashes of the range in index order: out[i][k] is the
	// hash at index ranges[i].From+k. A range with any hash not stored gets
	// nil (Verify then asks ReadHashes, whose error it reports).
	HashesOf(ctx context.Context, ranges []LogRange) ([][]tlog.Hash, error)
	// UnsealedOf is Unsealed for each of logs, in one statement (one
	// consistent snapshot).
	UnsealedOf(ctx context.Context, logs []string) (map[string][]uuid.UUID, error)
}

// BatchCheckpointSaver is optionally implemented by a Store that saves many
// checkpoints in one transaction. A sealer signs a checkpoint for every log
// that is due in a step; with thousands of tenants growing at once, one
// transaction each (a commit, an fsync) is what made it fall behind ingest.
type BatchCheckpointSaver interface {
	// SaveCheckpoints is SaveCheckpoint for each of cps, all in one
	// transaction: it fails with ErrFenced, saving none, unless fence is the
	// lease's current epoch.
	SaveCheckpoints(ctx context.Context, fence Fence, cps []Checkpoint) error
}

// BatchPurgeRecorder is the multi-log form of PurgeRecorder, optionally
// implemented next to it.
type BatchPurgeRecorder interface {
	// PurgedRangesOf is PurgedRanges for each of logs.
	PurgedRangesOf(ctx context.Context, logs []string) (map[string][]SeqRange, error)
}

// PendingSkipper is optionally implemented by a Store that can read the
// pending queue past events it is told to skip. The sealer then reads its
// next batch while the current one commits (until then the current one's
// events are still pending): under sustained ingest a step runs back to
// back with the next, and on PostgreSQL the queue read was a quarter to a
// third of each step, so the lag, which a step's length bounds, shrinks by
// as much.
type PendingSkipper interface {
	// PendingExcept is Pending without the events whose IDs are in skip:
	// up to limit of the other unsealed events, oldest first.
	PendingExcept(ctx context.Context, limit int, skip []uuid.UUID) ([]trail.Event, error)
}

package trailseal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ErrNotCheckpointed is returned for a proof of an event that is sealed but
// not yet covered by the checkpoint asked for (the next checkpoint will).
var ErrNotCheckpointed = errors.New("trailseal: event is sealed but not covered by the checkpoint yet")

// maxProofHashes bounds the hashes of a proof read from JSON: a tree of 2^63
// records needs at most 2*63 of them.
const maxProofHashes = 128

// InclusionProof proves that an event is record Index of its log at the
// checkpoint Checkpoint. Its JSON form is what the API and `trail prove`
// return; with Canonical set it is self-contained: anyone holding the
// log's public key checks it with tlog.CheckRecord and note.Open alone.
type InclusionProof struct {
	Log      string           `json:"log"`
	EventID  uuid.UUID        `json:"event_id"`
	Index    int64            `json:"index"`
	LeafHash tlog.Hash        `json:"leaf_hash"`
	TreeSize int64            `json:"tree_size"`
	RootHash tlog.Hash        `json:"root_hash"`
	Proof    tlog.RecordProof `json:"proof"`
	// Checkpoint is the signed note of the checkpoint, verbatim.
	Checkpoint string `json:"checkpoint"`
	// Canonical is the event's canonical bytes as stored (base64 in JSON),
	// from which the leaf hash is recomputed.
	Canonical []byte `json:"canonical,omitempty"`
}

// ConsistencyProof proves that the log at NewCheckpoint extends the log at
// OldCheckpoint: nothing sealed before was changed or removed.
type ConsistencyProof struct {
	Log           string         `json:"log"`
	OldSize       int64          `json:"old_size"`
	OldRoot       tlog.Hash      `json:"old_root"`
	NewSize       int64          `json:"new_size"`
	NewRoot       tlog.Hash      `json:"new_root"`
	Proof         tlog.TreeProof `json:"proof"`
	OldCheckpoint string         `json:"old_checkpoint"`
	NewCheckpoint string         `json:"new_checkpoint"`
}

func badProof(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadProof, fmt.Sprintf(format, args...))
}

// storeHashes adapts a store's hashes of one log to tlog.HashReader.
func storeHashes(ctx context.Context, s Store, log string) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return s.ReadHashes(ctx, log, idx) })
}

// ProveInclusion returns the inclusion proof of event id against cp, or
// against its log's latest checkpoint when cp is nil. An unsealed event
// fails with ErrNotSealed, an unknown one with ErrUnknownEvent, one sealed
// after cp with ErrNotCheckpointed, and a checkpoint of another log with
// ErrBadCheckpoint.
func ProveInclusion(ctx context.Context, s Store, id uuid.UUID, cp *Checkpoint) (InclusionProof, error) {
	leaf, err := s.LeafOf(ctx, id)
	if err != nil {
		return InclusionProof{}, fmt.Errorf("prove event %s: %w", id, err)
	}
	if cp == nil {
		latest, err := s.LatestCheckpoint(ctx, leaf.Log)
		if errors.Is(err, ErrNoCheckpoint) {
			return InclusionProof{}, fmt.Errorf("prove event %s: %w", id, ErrNotCheckpointed)
		}
		if err != nil {
			return InclusionProof{}, err
		}
		cp = &latest
	}
	if cp.Log != leaf.Log {
		return InclusionProof{}, badCheckpoint("wrong_log", "checkpoint of log %q, event %s is in %q", clip(cp.Log), id, leaf.Log)
	}
	if leaf.Seq >= cp.Size {
		return InclusionProof{}, fmt.Errorf("prove event %s (seq %d) against checkpoint of size %d: %w", id, leaf.Seq, cp.Size, ErrNotCheckpointed)
	}
	proof, err := tlog.ProveRecord(cp.Size, leaf.Seq, storeHashes(ctx, s, leaf.Log))
	if err != nil {
		return InclusionProof{}, fmt.Errorf("prove event %s: %w", id, err)
	}
	p := InclusionProof{
		Log: leaf.Log, EventID: id, Index: leaf.Seq, LeafHash: leaf.Hash,
		TreeSize: cp.Size, RootHash: cp.Root, Proof: proof, Checkpoint: cp.Note,
	}
	ses, err := s.Leaves(ctx, leaf.Log, leaf.Seq, leaf.Seq+1)
	if err != nil {
		return InclusionProof{}, err
	}
	if len(ses) == 1 && ses[0].Event != nil {
		if p.Canonical, err = CanonicalBytes(ses[0].Event); err != nil {
			return InclusionProof{}, err
		}
	}
	return p, nil
}

// FindCheckpoint returns log's kept checkpoint of the given size.
func FindCheckpoint(ctx context.Context, s Store, log string, size int64) (Checkpoint, error) {
	cps, err := s.Checkpoints(ctx, log)
	if err != nil {
		return Checkpoint{}, err
	}
	for i := len(cps) - 1; i >= 0; i-- {
		if cps[i].Size == size {
			return cps[i], nil
		}
	}
	return Checkpoint{}, fmt.Errorf("%w of size %d in log %q", ErrNoCheckpoint, size, log)
}

// ProveConsistency returns the proof that newCP extends oldCP (same log,
// oldCP.Size <= newCP.Size).
func ProveConsistency(ctx context.Context, s Store, oldCP, newCP Checkpoint) (ConsistencyProof, error) {
	if oldCP.Log != newCP.Log {
		return ConsistencyProof{}, badCheckpoint("wrong_log", "checkpoints of logs %q and %q", clip(oldCP.Log), clip(newCP.Log))
	}
	if oldCP.Size > newCP.Size {
		return ConsistencyProof{}, fmt.Errorf("trailseal: old checkpoint (size %d) is larger than new (size %d)", oldCP.Size, newCP.Size)
	}
	proof, err := tlog.ProveTree(newCP.Size, oldCP.Size, storeHashes(ctx, s, newCP.Log))
	if err != nil {
		return ConsistencyProof{}, fmt.Errorf("trailseal: prove consistency %d..%d of %q: %w", oldCP.Size, newCP.Size, newCP.Log, err)
	}
	return ConsistencyProof{
		Log: newCP.Log, OldSize: oldCP.Size, OldRoot: oldCP.Root, NewSize: newCP.Size, NewRoot: newCP.Root,
		Proof: proof, OldCheckpoint: oldCP.Note, NewCheckpoint: newCP.Note,
	}, nil
}

// openFor opens a proof's checkpoint and checks it states size and root.
func openFor(signed string, verifiers note.Verifiers, origin, log string, size int64, root tlog.Hash) error {
	body, err := OpenCheckpoint([]byte(signed), verifiers, CheckpointOrigin(origin, log))
	if err != nil {
		return err
	}
	if body.Size != size || body.Root != root {
		return badProof("checkpoint states size %d root %s, proof claims size %d root %s", body.Size, body.Root, size, root)
	}
	return nil
}

// Verify checks p completely: the checkpoint's signature against verifiers
// and its origin against origin and p.Log, that it states p's size and
// root, the leaf hash against Canonical (when present), and the Merkle path.
// Only a nil error means verified.
func (p *InclusionProof) Verify(verifiers note.Verifiers, origin string) error {
	if err := p.validate(); err != nil {
		return err
	}
	if err := openFor(p.Checkpoint, verifiers, origin, p.Log, p.TreeSize, p.RootHash); err != nil {
		return err
	}
	if p.Canonical != nil && tlog.RecordHash(p.Canonical) != p.LeafHash {
		return badProof("canonical bytes hash to %s, not the leaf hash %s", tlog.RecordHash(p.Canonical), p.LeafHash)
	}
	if err := tlog.CheckRecord(p.Proof, p.TreeSize, p.RootHash, p.Index, p.LeafHash); err != nil {
		return badProof("record %d is not in the tree of size %d: %v", p.Index, p.TreeSize, err)
	}
	return nil
}

func (p *InclusionProof) validate() error {
	switch {
	case p.Log == "":
		return badProof("no log")
	case p.TreeSize <= 0:
		return badProof("tree_size %d", p.TreeSize)
	case p.Index < 0 || p.Index >= p.TreeSize:
		return badProof("index %d outside a tree of size %d", p.Index, p.TreeSize)
	case len(p.Proof) > maxProofHashes:
		return badProof("%d proof hashes", len(p.Proof))
	case p.Checkpoint == "":
		return badProof("no checkpoint")
	}
	return nil
}

// Verify checks p completely: both checkpoints' signatures and origins,
// that they state p's sizes and roots, and the consistency proof.
func (p *ConsistencyProof) Verify(verifiers note.Verifiers, origin string) error {
	if err := p.validate(); err != nil {
		return err
	}
	if err := openFor(p.OldCheckpoint, verifiers, origin, p.Log, p.OldSize, p.OldRoot); err != nil {
		return fmt.Errorf("old checkpoint: %w", err)
	}
	if err := openFor(p.NewCheckpoint, verifiers, origin, p.Log, p.NewSize, p.NewRoot); err != nil {
		return fmt.Errorf("new checkpoint: %w", err)
	}
	if err := tlog.CheckTree(p.Proof, p.NewSize, p.NewRoot, p.OldSize, p.OldRoot); err != nil {
		return badProof("tree of size %d does not extend tree of size %d: %v", p.NewSize, p.OldSize, err)
	}
	return nil
}

func (p *ConsistencyProof) validate() error {
	switch {
	case p.Log == "":
		return badProof("no log")
	case p.OldSize <= 0 || p.NewSize < p.OldSize:
		return badProof("sizes %d..%d", p.OldSize, p.NewSize)
	case len(p.Proof) > maxProofHashes:
		return badProof("%d proof hashes", len(p.Proof))
	case p.OldCheckpoint == "" || p.NewCheckpoint == "":
		return badProof("missing checkpoint")
	}
	return nil
}

func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return badProof("JSON: %v", err)
	}
	if dec.More() {
		return badProof("JSON: trailing data")
	}
	return nil
}

// ParseInclusionProof parses and sanity-checks the JSON form of an
// inclusion proof. It does not verify it: call Verify.
func ParseInclusionProof(data []byte) (InclusionProof, error) {
	var p InclusionProof
	if err := decodeStrict(data, &p); err != nil {
		return InclusionProof{}, err
	}
	if err := p.validate(); err != nil {
		return InclusionProof{}, err
	}
	return p, nil
}

// ParseConsistencyProof parses and sanity-checks the JSON form of a
// consistency proof. It does not verify it: call Verify.
func ParseConsistencyProof(data []byte) (ConsistencyProof, error) {
	var p ConsistencyProof
	if err := decodeStrict(data, &p); err != nil {
		return ConsistencyProof{}, err
	}
	if err := p.validate(); err != nil {
		return ConsistencyProof{}, err
	}
	return p, nil
}

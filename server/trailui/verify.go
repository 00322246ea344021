package trailui

import (
	"fmt"
	"time"

	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The detail page's integrity states.
const (
	// stateVerified: every check passed.
	stateVerified = "verified"
	// stateMismatch: a check failed; verdict.Check names which.
	stateMismatch = "mismatch"
	// statePending: nothing to check against yet (not sealed, or sealed
	// and no checkpoint covers it), or the server does not seal at all.
	statePending = "pending"
)

// The checks of a mismatch, in the order they are made.
const (
	// checkLeaf: the event as stored must hash to its leaf, in its
	// tenant's log.
	checkLeaf = "leaf"
	// checkProof: the inclusion proof must be readable and be of that leaf.
	checkProof = "proof"
	// checkSignature: the checkpoint must be signed by the deployment's
	// key, for the event's log, at the proof's size.
	checkSignature = "signature"
	// checkInclusion: the leaf must be in the tree whose root the
	// checkpoint signs.
	checkInclusion = "inclusion"
)

// verdict is the detail page's integrity badge and what it rests on.
type verdict struct {
	State string
	// Check is the check that failed (stateMismatch only); Title and
	// Reason say it in words.
	Check  string
	Title  string
	Reason string
	// Log and Seq place the leaf once sealed.
	Sealed bool
	Log    string
	Seq    int64
	// TreeSize and Root are the checkpoint's signed size and root; Time is
	// when it was made.
	TreeSize int64
	Root     string
	Time     time.Time
	// Key is the public key the checkpoint verified with.
	Key string
	// Proof: an inclusion proof exists and can be downloaded.
	Proof bool
}

// verify checks e: the event as stored hashes to its leaf; the leaf is in
// its tenant's log; the proof is of that leaf; the checkpoint's signature
// verifies with the deployment's key for that log at the proof's size; and
// the proof leads from the recomputed leaf hash to the signed root. It is
// verified only when all pass. The root comes from the signed note, never
// from the proof's convenience fields.
func verify(e *Evidence) verdict {
	if !e.Enabled {
		return verdict{State: statePending, Reason: "This server does not seal its log: no checkpoint covers this event."}
	}
	if e.Leaf == nil {
		if e.Unreadable != "" {
			return mismatch(verdict{}, checkProof, "Its leaf could not be read", e.Unreadable)
		}
		return verdict{State: statePending, Reason: "Stored, not sealed yet: the sealer adds it to its tenant's log shortly."}
	}
	leaf := e.Leaf
	v := verdict{Sealed: true, Log: leaf.Log, Seq: leaf.Seq, Proof: e.Proof != nil}
	if want := trailseal.LogName(e.Stored.Tenant); leaf.Log != want || leaf.EventID != e.Stored.ID {
		return mismatch(v, checkLeaf, "Its leaf is not this event's",
			fmt.Sprintf("The leaf found for event %s names event %s in log %q; the event belongs to log %q.", e.Stored.ID, leaf.EventID, leaf.Log, want))
	}
	canonical, err := trailseal.CanonicalBytes(&e.Stored)
	if err != nil {
		return mismatch(v, checkLeaf, "The event as stored cannot be encoded", err.Error())
	}
	hash := tlog.RecordHash(canonical)
	if hash != leaf.Hash {
		return mismatch(v, checkLeaf, "The event as stored does not hash to its leaf",
			fmt.Sprintf("The stored event hashes to %s, but it was sealed as record %d of log %q with leaf hash %s: it was changed after it was sealed.", hash, leaf.Seq, leaf.Log, leaf.Hash))
	}
	if e.Unreadable != "" {
		return mismatch(v, checkProof, "Its inclusion proof could not be built", e.Unreadable)
	}
	p := e.Proof
	if p == nil {
		v.Reason = fmt.Sprintf("Sealed as record %d of log %q, and its leaf matches the event as stored; no signed checkpoint covers it yet (the next one will).", leaf.Seq, leaf.Log)
		v.State = statePending
		return v
	}
	if p.Log != leaf.Log || p.Index != leaf.Seq || p.EventID != e.Stored.ID || p.LeafHash != leaf.Hash {
		return mismatch(v, checkProof, "The inclusion proof is not of this leaf",
			fmt.Sprintf("The proof is for event %s, record %d of log %q, leaf hash %s.", p.EventID, p.Index, p.Log, p.LeafHash))
	}
	verifier, err := note.NewVerifier(e.PublicKey)
	if err != nil {
		return mismatch(v, checkSignature, "The checkpoint's signature cannot be checked",
			fmt.Sprintf("The server's checkpoint public key %q is not a verifier key: %v.", e.PublicKey, err))
	}
	origin := trailseal.CheckpointOrigin(e.Origin, leaf.Log)
	body, err := trailseal.OpenCheckpoint([]byte(p.Checkpoint), note.VerifierList(verifier), origin)
	if err != nil {
		return mismatch(v, checkSignature, "The checkpoint's signature does not verify",
			fmt.Sprintf("The latest checkpoint of log %q does not verify with the key %s for %q: %v.", leaf.Log, e.PublicKey, origin, err))
	}
	if body.Size != p.TreeSize {
		return mismatch(v, checkSignature, "The checkpoint does not sign the proof's tree",
			fmt.Sprintf("The checkpoint signs a tree of size %d; the proof is for size %d.", body.Size, p.TreeSize))
	}
	v.TreeSize, v.Root, v.Time, v.Key = body.Size, body.Root.String(), e.CheckpointTime, e.PublicKey
	if err := tlog.CheckRecord(p.Proof, body.Size, body.Root, leaf.Seq, hash); err != nil {
		return mismatch(v, checkInclusion, "The leaf is not in the signed tree",
			fmt.Sprintf("Record %d with leaf hash %s does not lead to the root %s that the checkpoint of size %d signs: %v.", leaf.Seq, hash, body.Root, body.Size, err))
	}
	v.State = stateVerified
	return v
}

func mismatch(v verdict, check, title, reason string) verdict {
	v.State, v.Check, v.Title, v.Reason = stateMismatch, check, title, reason
	return v
}

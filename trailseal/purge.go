package trailseal

import (
	"context"
	"slices"
)

// SeqRange is the half-open range [From, To) of a log's sequence numbers.
type SeqRange struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// PurgeRecorder is optionally implemented by a Store whose retention removes
// sealed events. Retention removes events, never leaves or stored hashes, so
// the tree and every checkpoint still verify over a purged range; but a
// sealed event that is gone is then either purged (expected) or deleted by
// someone else (missing). The store tells them apart by recording, in the
// same transaction as each purge, the seqs of the sealed events it removed.
//
// Verify reports a leaf whose event is gone as purged (counted in
// LogReport.Purged, not a problem) when its seq is in one of the ranges, and
// as missing otherwise. The record is only as trustworthy as the database's
// own append-only guards: someone able to write it could hide a deletion as
// a purge (never a modification, an insertion or a rewritten tree). An
// archive's signed manifest (retention) is the stronger statement.
type PurgeRecorder interface {
	// PurgedRanges returns the seqs of log whose events retention removed,
	// in any order, possibly overlapping.
	PurgedRanges(ctx context.Context, log string) ([]SeqRange, error)
}

// seqSet answers membership in a set of SeqRanges.
type seqSet []SeqRange

func newSeqSet(rs []SeqRange) seqSet {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b SeqRange) int {
		switch {
		case a.From < b.From:
			return -1
		case a.From > b.From:
			return 1
		}
		return 0
	})
	// Merge overlapping and adjacent ranges so that lookups are one search.
	out := s[:0]
	for _, r := range s {
		if r.To <= r.From {
			continue
		}
		if n := len(out); n > 0 && r.From <= out[n-1].To {
			out[n-1].To = max(out[n-1].To, r.To)
			continue
		}
		out = append(out, r)
	}
	return out
}

func (s seqSet) contains(seq int64) bool {
	i, _ := slices.BinarySearchFunc(s, seq, func(r SeqRange, seq int64) int {
		switch {
		case r.To <= seq:
			return -1
		case r.From > seq:
			return 1
		}
		return 0
	})
	return i < len(s) && s[i].From <= seq && seq < s[i].To
}

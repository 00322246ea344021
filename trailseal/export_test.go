package trailseal

import "github.com/trailhq/trail"

// LeafHashesParallel hashes evs as the sealer does (validating, stored: the
// verifier's encoder), on every core, and returns the canonical bytes
// hashed: for the in-memory ratio benchmark.
func LeafHashesParallel(evs []trail.Event, stored bool) int64 {
	enc := appendCanonical
	if stored {
		enc = appendStoredCanonical
	}
	var n int64
	for _, l := range parallelLeafHashesWith(len(evs), func(i int) *trail.Event { return &evs[i] }, enc) {
		if l.err != nil {
			panic(l.err)
		}
		n += int64(l.n)
	}
	return n
}

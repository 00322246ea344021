// Package hashrange gathers the stored hashes of many log ranges read in
// one query, for the stores' trailseal.BatchReader.HashesOf: a range comes
// back whole, or not at all, so the verifier reads it again through
// ReadHashes rather than trust a partial or damaged one.
package hashrange

import (
	"fmt"

	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/tlog"
)

// Collector gathers the hashes of ranges from rows (range, index, hash).
type Collector struct {
	ranges []trailseal.LogRange
	out    [][]tlog.Hash
	bad    []bool
}

// New returns a Collector for ranges.
func New(ranges []trailseal.LogRange) *Collector {
	c := &Collector{ranges: ranges, out: make([][]tlog.Hash, len(ranges)), bad: make([]bool, len(ranges))}
	for i, r := range ranges {
		c.out[i] = make([]tlog.Hash, 0, max(r.To-r.From, 0))
	}
	return c
}

// Add takes the hash h of leaf idx of ranges[k]. Rows must come in order of
// k, then idx; a hash out of order or of the wrong size spoils its range.
// A k out of range is an error.
func (c *Collector) Add(k, idx int64, h []byte) error {
	if k < 0 || int(k) >= len(c.ranges) {
		return fmt.Errorf("bad range key %d", k)
	}
	// In order and complete, or the range is left to ReadHashes.
	if len(h) != tlog.HashSize || idx != c.ranges[k].From+int64(len(c.out[k])) {
		c.bad[k] = true
		return nil
	}
	c.out[k] = append(c.out[k], tlog.Hash(h))
	return nil
}

// Hashes returns the hashes of each range, in the order of the ranges; nil
// for a range that did not come back whole and in order.
func (c *Collector) Hashes() [][]tlog.Hash {
	for k, r := range c.ranges {
		if c.bad[k] || int64(len(c.out[k])) != r.To-r.From {
			c.out[k] = nil
		}
	}
	return c.out
}

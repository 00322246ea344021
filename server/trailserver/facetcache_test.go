package trailserver

import (
	"errors"
	"testing"
	"time"
)

// The UI's picker values are read once per scope within facetTTL, read
// again after it, never kept after a failed read, and kept per scope.
func TestFacetCache(t *testing.T) {
	var c facetCache
	reads := 0
	read := func(tenant string) func() (FacetsResponse, error) {
		return func() (FacetsResponse, error) {
			reads++
			return FacetsResponse{Tenants: []string{tenant}}, nil
		}
	}
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for i, step := range []struct {
		scope string
		at    time.Duration
		reads int
	}{
		{"acme", 0, 1},
		{"acme", facetTTL - time.Second, 1}, // kept
		{"globex", time.Second, 2},          // another scope, its own read
		{"acme", facetTTL, 3},               // stale: read again
	} {
		fs, err := c.get(step.scope, now.Add(step.at), read(step.scope))
		if err != nil || reads != step.reads || fs.Tenants[0] != step.scope {
			t.Fatalf("step %d: %v %+v, %d reads, want %d", i, err, fs, reads, step.reads)
		}
	}
	boom := errors.New("store down")
	if _, err := c.get("initech", now, func() (FacetsResponse, error) { return FacetsResponse{}, boom }); !errors.Is(err, boom) {
		t.Fatalf("failed read: %v", err)
	}
	if _, err := c.get("initech", now, read("initech")); err != nil || reads != 4 {
		t.Fatalf("after a failed read: %v, %d reads, want a fresh read", err, reads)
	}
}

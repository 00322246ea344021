package trailseal

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// TestExtendKeepsTheEdge grows a tree leaf by leaf from the edge alone (a
// store with no hash in it: any read fails) and checks, at every size, that
// the stored hashes are tlog's, that the edge holds exactly the hashes
// edgeIndexes names, and that the root from the edge is tlog's.
func TestExtendKeepsTheEdge(t *testing.T) {
	ctx := context.Background()
	s := &Sealer{store: NewMemLog()} // has no hash of log "x": reading one fails
	st := &logState{edge: map[int64]tlog.Hash{}}
	var stored []tlog.Hash
	all := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	for n := range int64(1100) {
		leaf := []byte(fmt.Sprintf("leaf %d", n))
		want, err := tlog.StoredHashes(n, leaf, all)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.extend(ctx, "x", st, n, tlog.RecordHash(leaf))
		if err != nil {
			t.Fatalf("extend to %d leaves: %v", n+1, err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("leaf %d: stored hashes differ from tlog.StoredHashes", n)
		}
		stored = append(stored, want...)
		keys := slices.Sorted(maps.Keys(st.edge))
		idx := edgeIndexes(n + 1)
		slices.Sort(idx)
		if !slices.Equal(keys, idx) {
			t.Fatalf("%d leaves: edge holds %v, want %v", n+1, keys, idx)
		}
		for _, x := range idx {
			if st.edge[x] != stored[x] {
				t.Fatalf("%d leaves: edge hash %d is not the stored one", n+1, x)
			}
		}
		root, err := tlog.TreeHash(n+1, edgeReader{ctx, s.store, "x", st})
		if err != nil {
			t.Fatal(err)
		}
		if wantRoot, _ := tlog.TreeHash(n+1, all); root != wantRoot {
			t.Fatalf("%d leaves: root from the edge %s, tlog's %s", n+1, root, wantRoot)
		}
	}
}

// TestEdgeReaderFallsBack: what the edge lacks is read from the store and
// kept; a hash the store lacks too is the store's error.
func TestEdgeReaderFallsBack(t *testing.T) {
	ctx := context.Background()
	m := NewMemLog()
	m.hashes["x"] = map[int64]tlog.Hash{0: {1}, 1: {2}}
	st := &logState{}
	r := edgeReader{ctx, m, "x", st}
	got, err := r.ReadHashes([]int64{1, 0})
	if err != nil || got[0] != (tlog.Hash{2}) || got[1] != (tlog.Hash{1}) {
		t.Fatalf("ReadHashes = %v, %v", got, err)
	}
	if len(st.edge) != 2 {
		t.Fatalf("the hashes read were not kept: %v", st.edge)
	}
	if _, err := r.ReadHashes([]int64{0, 5}); err == nil {
		t.Fatal("a hash stored nowhere was read")
	}
}

// TestNextWait: Run's wait after a step.
func TestNextWait(t *testing.T) {
	cfg := Config{PollInterval: 200 * time.Millisecond, BatchSize: 100}
	for _, c := range []struct {
		sealed int
		took   time.Duration
		want   time.Duration
	}{
		{0, time.Millisecond, 200 * time.Millisecond},      // idle: poll
		{0, time.Second, 200 * time.Millisecond},           // idle after a slow empty step: still poll
		{100, time.Millisecond, 0},                         // full batch: more is waiting
		{5, 50 * time.Millisecond, 150 * time.Millisecond}, // a trickle: one step per interval
		{5, 200 * time.Millisecond, 0},                     // the step took the interval: at once
		{99, 3 * time.Second, 0},                           // a backlog built up during a long step
	} {
		if got := nextWait(cfg, Stats{Sealed: c.sealed}, c.took); got != c.want {
			t.Errorf("sealed %d in %s: wait %s, want %s", c.sealed, c.took, got, c.want)
		}
	}
}

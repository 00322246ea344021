package hashrange

import (
	"testing"

	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/tlog"
)

func TestCollector(t *testing.T) {
	t.Parallel()
	h := func(b byte) []byte { var x tlog.Hash; x[0] = b; return x[:] }
	ranges := []trailseal.LogRange{{Log: "a", From: 0, To: 2}, {Log: "b", From: 5, To: 7}, {Log: "c", From: 1, To: 3}, {Log: "d", From: 0, To: 0}, {Log: "e", From: 0, To: 1}}
	type row struct {
		k, idx int64
		h      []byte
	}
	c := New(ranges)
	for _, r := range []row{
		{0, 0, h(1)}, {0, 1, h(2)}, // whole
		{1, 5, h(3)},                   // b: missing its last hash
		{2, 1, h(4)}, {2, 2, h(5)[:5]}, // c: a damaged hash
		{4, 1, h(6)}, // e: out of order
	} {
		if err := c.Add(r.k, r.idx, r.h); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Add(5, 0, h(7)); err == nil {
		t.Fatal("a range key out of range was taken")
	}
	got := c.Hashes()
	if len(got) != len(ranges) || len(got[0]) != 2 || got[0][0][0] != 1 || got[0][1][0] != 2 {
		t.Fatalf("whole range: %v", got)
	}
	for k, what := range map[int]string{1: "incomplete", 2: "damaged", 4: "out of order"} {
		if got[k] != nil {
			t.Errorf("%s range %s: %v, want nil (left to ReadHashes)", what, ranges[k].Log, got[k])
		}
	}
	if got[3] == nil || len(got[3]) != 0 {
		t.Errorf("empty range: %v, want empty, not nil", got[3])
	}
}

package trailseal

import (
	"context"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"
)

func TestPlanUnits(t *testing.T) {
	t.Parallel()
	g := func(logs ...string) unit { return unit{logs: logs, group: true} }
	one := func(log string) unit { return unit{logs: []string{log}} }
	cases := []struct {
		name    string
		sizes   []int64
		batched bool
		want    []unit
	}{
		{"no batch reader: one unit per log", []int64{1, 2, 3}, false, []unit{one("a"), one("b"), one("c")}},
		{"all small: one group", []int64{1, 2, 3}, true, []unit{g("a", "b", "c")}},
		{"groups fill up to batch", []int64{4, 4, 4}, true, []unit{g("a", "b"), g("c")}},
		{"a large log breaks the run", []int64{2, 11, 2}, true, []unit{g("a"), one("b"), g("c")}},
		{"exactly batch is small", []int64{10, 0, 0}, true, []unit{g("a", "b", "c")}},
		{"empty logs still group", []int64{0, 0}, true, []unit{g("a", "b")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			logs := []string{"a", "b", "c"}[:len(c.sizes)]
			got := planUnits(logs, c.sizes, 10, c.batched)
			for i := range got {
				got[i].sizes = nil
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("planUnits(%v) = %+v, want %+v", c.sizes, got, c.want)
			}
		})
	}
	// maxGroupLogs bounds a group of empty logs.
	logs := make([]string, maxGroupLogs+1)
	for i := range logs {
		logs[i] = fmt.Sprint(i)
	}
	if us := planUnits(logs, make([]int64, len(logs)), 10, true); len(us) != 2 || len(us[0].logs) != maxGroupLogs {
		t.Fatalf("%d logs planned as %d units", len(logs), len(us))
	}
}

// TestOrdered: results arrive in index order whatever order the work
// finishes in, with at most workers+1 running at once.
func TestOrdered(t *testing.T) {
	t.Parallel()
	var running, peak atomic.Int32
	slots := ordered(context.Background(), 20, 3, func(_ context.Context, i int) int {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(time.Duration(20-i) * 100 * time.Microsecond) // later ones finish first
		running.Add(-1)
		return i
	})
	next := 0
	for c := range slots {
		if got := <-c; got != next {
			t.Fatalf("result %d arrived at position %d", got, next)
		}
		next++
	}
	if next != 20 || peak.Load() > 4 {
		t.Fatalf("%d results, peak %d running (want 20, at most 4)", next, peak.Load())
	}
}

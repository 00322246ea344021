package trailcli

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// manyEventLines is n JSON Lines events, with a pretty-printed (multi-line)
// one every tenth.
func manyEventLines(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		if i%10 == 9 {
			fmt.Fprintf(&b, "{\n  \"actor\": {\"type\": \"user\", \"id\": \"u%d\"},\n  \"action\": \"a.b\"\n}\n", i)
			continue
		}
		fmt.Fprintf(&b, "{\"actor\":{\"type\":\"user\",\"id\":\"u%d\"},\"action\":\"a.b\"}\n", i)
	}
	return b.Bytes()
}

// TestReadEventsLines: each event is named by the line it starts on, and
// an error far into the input names its line, with multi-line objects
// before it (the count is kept from event to event, not redone).
func TestReadEventsLines(t *testing.T) {
	in := manyEventLines(1000) // 900 one-line events, 100 of four lines
	evs, where, err := readEvents(bytes.NewReader(in))
	if err != nil || len(evs) != 1000 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
	// Event i starts after i%10==9 events of 4 lines before it.
	for _, i := range []int{0, 9, 10, 999} {
		want := fmt.Sprintf("line %d", 1+i+3*(i/10))
		if where[i] != want {
			t.Errorf("event %d: %q, want %q", i, where[i], want)
		}
	}
	bad := append(append([]byte{}, in...), []byte("{\"action\":\"a.b\",\"nope\":1}\n")...)
	_, _, err = readEvents(bytes.NewReader(bad))
	if want := fmt.Sprintf("line %d:", 1+1000+300); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one naming %q", err, want)
	}
}

// BenchmarkReadEvents reads 10k and 100k lines: the time per event must not
// grow with the input (it did: every event's line was counted from the
// start).
func BenchmarkReadEvents(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		in := manyEventLines(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				if _, _, err := readEvents(bytes.NewReader(in)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
		})
	}
}

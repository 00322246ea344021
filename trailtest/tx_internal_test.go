package trailtest

import "testing"

// fullXID puts a subtransaction's 32-bit ID into its top-level
// transaction's epoch, or the next one when the counter wrapped between
// them.
func TestFullXID(t *testing.T) {
	t.Parallel()
	const epoch = 7 << 32
	for _, c := range []struct {
		top, xmin string
		want      uint64
	}{
		{"12060", "12060", 12060},                         // the top-level transaction itself
		{"12060", "12061", 12061},                         // a subtransaction
		{"30064771072", "5", epoch + 5},                   // epoch 7, top 0: 5 is later
		{"34359738360", "4294967295", epoch + 4294967295}, // epoch 7, top 0xfffffff8, sub 0xffffffff
		{"34359738360", "3", 8<<32 + 3},                   // the counter wrapped: epoch 8
	} {
		got, err := fullXID(c.top, c.xmin)
		if err != nil || got != c.want {
			t.Errorf("fullXID(%s, %s) = %d, %v; want %d", c.top, c.xmin, got, err, c.want)
		}
	}
	for _, bad := range [][2]string{{"x", "1"}, {"1", "4294967296"}, {"1", ""}} {
		if _, err := fullXID(bad[0], bad[1]); err == nil {
			t.Errorf("fullXID(%q, %q) succeeded", bad[0], bad[1])
		}
	}
}

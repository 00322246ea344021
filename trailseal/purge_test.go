package trailseal

import "testing"

func TestSeqSet(t *testing.T) {
	s := newSeqSet([]SeqRange{{10, 12}, {0, 3}, {3, 5}, {11, 15}, {20, 20}, {30, 25}})
	if len(s) != 2 || s[0] != (SeqRange{0, 5}) || s[1] != (SeqRange{10, 15}) {
		t.Fatalf("merged %v, want [{0 5} {10 15}]", s)
	}
	for seq, want := range map[int64]bool{-1: false, 0: true, 4: true, 5: false, 9: false, 10: true, 14: true, 15: false, 20: false, 27: false} {
		if got := s.contains(seq); got != want {
			t.Errorf("contains(%d) = %v, want %v", seq, got, want)
		}
	}
	if newSeqSet(nil).contains(0) {
		t.Error("an empty set contains 0")
	}
}

package trailpgx_test

import (
	"context"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
	"github.com/trailhq/trail/trailseal/sealtest"
	"golang.org/x/mod/sumdb/note"
)

// TestVerifyEditedOccurredAt: an event whose occurred_at a superuser edited
// — within its month, or into another month's partition — is reported as
// modified at its seq, not as missing (issue 14: the verify read path looks
// the event up where its leaf's occurred_at says, and lost the row).
func TestVerifyEditedOccurredAt(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, nil)
	var evs []trail.Event
	for i := range 6 {
		evs = append(evs, sealtest.Event(t, "acme", i))
	}
	if _, err := s.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	skey, vkey, _ := trailseal.GenerateSigningKey("trail.test")
	signer, _, _ := trailseal.ParseSigningKey(skey)
	sl, err := trailseal.NewSealer(s, &trailseal.Config{Signer: signer, Origin: "trail.test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sl.SealAll(ctx); err != nil {
		t.Fatal(err)
	}
	sl.Release(ctx)
	v, _ := trailseal.ParseVerifierKey(vkey)
	ver := &trailseal.Verifier{Store: s, Verifiers: note.VerifierList(v), Origin: "trail.test"}
	if rep, err := ver.Verify(ctx, nil); err != nil || !rep.OK() {
		t.Fatalf("before: %v %+v", err, rep)
	}
	tm := newTamperer(t, s)
	leafOf := func(i int) int64 {
		l, err := s.LeafOf(ctx, evs[i].ID)
		if err != nil {
			t.Fatal(err)
		}
		return l.Seq
	}
	edits := map[int]time.Duration{1: time.Second, 4: -45 * 24 * time.Hour} // same month; another partition
	for i, d := range edits {
		moved := evs[i]
		moved.OccurredAt = moved.OccurredAt.Add(d)
		if err := s.EnsurePartitions(ctx, []trail.Event{moved}); err != nil {
			t.Fatal(err)
		}
		if err := tm.exec(ctx, `UPDATE `+tm.table("events")+` SET occurred_at = occurred_at + $1::interval WHERE id = $2`, d.String(), evs[i].ID); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := ver.Verify(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]trailseal.Kind{}
	for _, p := range rep.Problems {
		got[p.Seq] = p.Kind
	}
	for i := range edits {
		if k := got[leafOf(i)]; k != trailseal.KindModified {
			t.Errorf("event %d with an edited occurred_at: %q, want modified (problems %+v)", i, k, rep.Problems)
		}
	}
	if len(rep.Problems) != len(edits) {
		t.Errorf("problems: %+v", rep.Problems)
	}
}

package trailsqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailsqlite"
)

// TailHead and TailAfter follow the commit order of every handle on the
// file, one page at a time.
func TestTailAfter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "trail.db")
	a, err := trailsqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := trailsqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	head, id, err := a.TailHead(ctx)
	if err != nil || head != 0 || id != uuid.Nil {
		t.Fatalf("empty store: head %d %s %v", head, id, err)
	}
	var want []uuid.UUID
	for i := range 5 {
		st := a
		if i%2 == 1 {
			st = b // the other handle, as another process
		}
		ev := newEvent(t, "acme", "user.update")
		if _, err := st.Append(ctx, []trail.Event{ev}); err != nil {
			t.Fatal(err)
		}
		want = append(want, ev.ID)
	}
	// A duplicate adds nothing to the feed.
	dup := newEvent(t, "acme", "user.update")
	dup.ID = want[0]
	if res, err := b.Append(ctx, []trail.Event{dup}); err != nil || !res[0].Duplicate {
		t.Fatalf("duplicate: %+v %v", res, err)
	}
	var got []uuid.UUID
	pos := int64(0)
	for {
		evs, last, err := a.TailAfter(ctx, pos, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			if last != pos {
				t.Fatalf("empty page moved the position %d to %d", pos, last)
			}
			break
		}
		if last <= pos {
			t.Fatalf("position went from %d to %d", pos, last)
		}
		for _, ev := range evs {
			got = append(got, ev.ID)
		}
		pos = last
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d: %s, want %s (commit order)", i, got[i], want[i])
		}
	}
	head, id, err = b.TailHead(ctx)
	if err != nil || head != pos || id != want[len(want)-1] {
		t.Fatalf("head %d %s %v, want %d %s", head, id, err, pos, want[len(want)-1])
	}
}

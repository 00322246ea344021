package trailpgx_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

// TailRecorded returns the events recorded at or after since that seen does
// not know, in (recorded_at, id) order, whatever their occurred_at.
func TestTailRecorded(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	mk := func(rec, occ time.Time) trail.Event {
		ev := trail.Event{ID: uuid.Must(uuid.NewV7()), OccurredAt: occ, RecordedAt: rec, Tenant: "acme",
			Actor: trail.Actor{Type: trail.ActorUser, ID: "u"}, Action: "user.update"}
		if err := ev.Normalize(); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	old := mk(now.Add(-time.Minute), now)
	late := mk(now.Add(-2*time.Second), now.Add(-40*24*time.Hour)) // another month's partition
	a := mk(now.Add(-time.Second), now)
	b := mk(now, now.Add(-time.Hour))
	if _, err := s.Append(ctx, []trail.Event{b, old, a, late}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		since time.Time
		known []uuid.UUID
		want  []uuid.UUID
	}{
		{"window", now.Add(-10 * time.Second), nil, []uuid.UUID{late.ID, a.ID, b.ID}},
		{"inclusive since", a.RecordedAt, nil, []uuid.UUID{a.ID, b.ID}},
		{"seen skipped", now.Add(-10 * time.Second), []uuid.UUID{a.ID}, []uuid.UUID{late.ID, b.ID}},
		{"all seen", now.Add(-time.Hour), []uuid.UUID{old.ID, late.ID, a.ID, b.ID}, nil},
	} {
		var asked []uuid.UUID
		evs, err := s.TailRecorded(ctx, c.since, func(id uuid.UUID, rec time.Time) bool {
			asked = append(asked, id)
			for _, k := range c.known {
				if k == id {
					return true
				}
			}
			return false
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != len(c.want) {
			t.Fatalf("%s: got %d events, want %d", c.name, len(evs), len(c.want))
		}
		for i := range evs {
			if evs[i].ID != c.want[i] {
				t.Errorf("%s: event %d is %s, want %s", c.name, i, evs[i].ID, c.want[i])
			}
		}
		if len(asked) < len(c.want) {
			t.Errorf("%s: seen asked about %d IDs", c.name, len(asked))
		}
	}
}

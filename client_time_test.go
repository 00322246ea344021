package trail_test

import (
	"context"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailtest"
)

func TestPrepareStampsBothTimesFromOneClockReading(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 4, 5, 6, 7, 891234000, time.UTC)
	c, err := trail.NewClient(trailtest.NewStore(), &trail.Config{Plaintext: true, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := c.Prepare(context.Background(), trail.Event{
		Tenant: "acme",
		Action: "user.delete",
		Actor:  trail.Actor{Type: trail.ActorUser, ID: "42"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !ev.OccurredAt.Equal(at) || !ev.RecordedAt.Equal(at) {
		t.Fatalf("occurred_at %v, recorded_at %v; want both %v", ev.OccurredAt, ev.RecordedAt, at)
	}
	// A caller's own OccurredAt is kept.
	past := at.Add(-time.Hour)
	ev, err = c.Prepare(context.Background(), trail.Event{
		OccurredAt: past,
		Tenant:     "acme",
		Action:     "user.delete",
		Actor:      trail.Actor{Type: trail.ActorUser, ID: "42"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !ev.OccurredAt.Equal(past) || !ev.RecordedAt.Equal(at) {
		t.Fatalf("occurred_at %v, recorded_at %v; want %v and %v", ev.OccurredAt, ev.RecordedAt, past, at)
	}
}

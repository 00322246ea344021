package trail_test

import (
	"context"
	"errors"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailtest"
)

// raceOnce is a BatchTransformer whose first batch loses a race: it
// changes nothing but the description, which names the attempt that
// prepared the event.
type raceOnce struct {
	batches, finishes int
}

type attemptKey struct{}

func (r *raceOnce) Transform(ctx context.Context, ev *trail.Event) error {
	if ev.Description != "" {
		return errors.New("transformed twice: the retry did not start from the events as given")
	}
	if n, ok := ctx.Value(attemptKey{}).(int); ok {
		ev.Description = []string{"first", "second", "third"}[n]
	}
	return nil
}

func (r *raceOnce) Batch(ctx context.Context) (context.Context, func(context.Context) error) {
	n := r.batches
	r.batches++
	return context.WithValue(ctx, attemptKey{}, n), func(context.Context) error {
		r.finishes++
		if n == 0 {
			return trail.ErrRetryBatch
		}
		return nil
	}
}

// TestRecordManyRetriesALostBatch: RecordMany transforms a batch under one
// Batch, finishes it before storing, and prepares the events again, from
// the events as given, when finish reports a lost race.
func TestRecordManyRetriesALostBatch(t *testing.T) {
	ctx := trail.WithTenant(context.Background(), "acme")
	tr := &raceOnce{}
	c, err := trail.NewClient(trailtest.NewStore(), &trail.Config{Transform: tr})
	if err != nil {
		t.Fatal(err)
	}
	evs := []trail.Event{
		{Actor: trail.Actor{Type: trail.ActorUser, ID: "1"}, Action: "user.login"},
		{Actor: trail.Actor{Type: trail.ActorUser, ID: "2"}, Action: "user.login"},
	}
	res, err := c.RecordMany(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	if tr.batches != 2 || tr.finishes != 2 {
		t.Fatalf("%d batches, %d finishes; want 2 and 2 (one lost race, one retry)", tr.batches, tr.finishes)
	}
	for i, r := range res {
		ev, err := c.Store().Get(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Description != "second" {
			t.Errorf("event %d stored as prepared by the %q batch, want the second", i, ev.Description)
		}
	}
	if evs[0].Description != "" {
		t.Errorf("RecordMany modified the caller's events")
	}
	// One event is prepared without a batch.
	tr.batches = 0
	if _, err := c.Record(ctx, evs[0]); err != nil {
		t.Fatal(err)
	}
	if tr.batches != 0 {
		t.Errorf("Record of one event opened %d batches, want none", tr.batches)
	}
}

package trailserver_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/trailprivacy"
)

// racingBatch is the privacy layer with a rival writer: just before its
// first batch finishes, the rival stores a key for one of the batch's new
// people, as another server would that got an event of that person first.
type racingBatch struct {
	*trailprivacy.Privacy
	rival   func()
	batches int
}

func (r *racingBatch) Batch(ctx context.Context) (context.Context, func(context.Context) error) {
	r.batches++
	first := r.batches == 1
	bctx, finish := r.Privacy.Batch(ctx)
	return bctx, func(ctx context.Context) error {
		if first {
			r.rival()
		}
		return finish(ctx)
	}
}

// TestIngestBatchLostKeyRace: a batch whose new person's key another
// writer stored first is transformed again from the decoded events, so
// every event stored opens with its person's live key.
func TestIngestBatchLostKeyRace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		var rb *racingBatch
		f := newFixture(t, b, func(c *trailserver.Config) {
			p, _ := privacyFor(t, c.Store)
			rival, _ := privacyFor(t, c.Store) // same keys, its own cache
			rb = &racingBatch{Privacy: p, rival: func() {
				ev := trail.Event{Tenant: "acme", Action: "user.login",
					Actor: trail.Actor{Type: trail.ActorUser, ID: "77", Email: "seventy-seven@example.com"}}
				if err := ev.Normalize(); err != nil {
					t.Error(err)
				}
				if err := rival.Transform(context.Background(), &ev); err != nil {
					t.Error(err)
				}
			}}
			c.Transform, c.Reveal = rb, p
		})
		body := []byte(`{"events":[
			{"tenant":"acme","actor":{"type":"user","id":"77","email":"seventy-seven@example.com"},"action":"user.login"},
			{"tenant":"acme","actor":{"type":"user","id":"78","email":"seventy-eight@example.com"},"action":"user.login"}]}`)
		if r := f.do("POST", "/v1/events", "ingestA", body); r.status/100 != 2 {
			t.Fatalf("ingest: %d %s", r.status, clip(r.body))
		}
		if rb.batches != 2 {
			t.Errorf("%d batches, want 2 (the lost one and its retry)", rb.batches)
		}
		r := f.do("GET", "/v1/events?tenant=acme&action=user.login", "readerA", nil)
		if r.status != 200 {
			t.Fatalf("read: %d %s", r.status, clip(r.body))
		}
		for _, email := range []string{"seventy-seven@example.com", "seventy-eight@example.com"} {
			if !bytes.Contains(r.body, []byte(`"`+email+`"`)) {
				t.Errorf("%s does not open after the retried batch: %s", email, clip(r.body))
			}
		}
	})
}

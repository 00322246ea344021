package trailnats_test

import (
	"context"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailnats"
)

// TestSinkKeepsLookup: an event's search pseudonyms (trail.Lookup, not in
// its JSON) travel from the publisher to the sink in a header and are
// stored, so that the edge's events are found by the actor's encrypted
// e-mail too.
func TestSinkKeepsLookup(t *testing.T) {
	st, _, _ := pgStore(t)
	s := startNode(t)
	_, js := connect(t, s.ClientURL())
	cfg := trailnats.Config{Partitions: 1}
	setup(t, js, cfg)
	pub := trailnats.NewPublisher(js, cfg)
	ev := newEvent(t, "t0", 1)
	ev.Lookup = trail.Lookup{ActorName: trail.Digest{1, 2, 3}, ActorEmail: trail.Digest{4, 5, 6}}
	plain := newEvent(t, "t0", 2) // no digests: no header, stored with none
	if _, err := pub.Publish(context.Background(), []trail.Event{ev, plain}); err != nil {
		t.Fatal(err)
	}
	sinks := runSinks(t, js, newOrderStore(st), trailnats.SinkConfig{Config: cfg, Batch: 10}, 1)
	deadline := time.Now().Add(30 * time.Second) // a bound on failure, not a wait: we wait on the sink's count
	for sinks[0].Stats().Stored < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("sink stored %+v", sinks[0].Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, q := range []trail.Query{{Tenant: "t0", ActorEmailDigest: ev.Lookup.ActorEmail}, {Tenant: "t0", ActorNameDigest: ev.Lookup.ActorName}} {
		page, err := st.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) != 1 || page.Events[0].ID != ev.ID {
			t.Fatalf("query by digest found %d events, want the published one", len(page.Events))
		}
	}
}

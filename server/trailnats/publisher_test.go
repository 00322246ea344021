package trailnats_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailnats"
)

// TestPublishRetryPartlyStored: a request longer than one atomic batch is
// stored whole and in order; a retry holding it again plus new events (the
// atomic batch is refused for its duplicates) reports the old ones as
// Duplicate and stores only the new ones, after them and in order.
func TestPublishRetryPartlyStored(t *testing.T) {
	s := startNode(t)
	_, js := connect(t, s.ClientURL())
	cfg := trailnats.Config{Partitions: 4}
	setup(t, js, cfg)
	pub := trailnats.NewPublisher(js, cfg)
	ctx := context.Background()

	n := trailnats.MaxAtomicBatch + 500
	var evs []trail.Event
	for i := range n + 20 {
		evs = append(evs, newEvent(t, []string{"acme", "globex"}[i%2], i))
	}
	res, err := pub.Publish(ctx, evs[:n])
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Duplicate || r.ID != evs[i].ID {
			t.Fatalf("first publish, result %d: %+v", i, r)
		}
	}
	res, err = pub.Publish(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.ID != evs[i].ID || r.Duplicate != (i < n) {
			t.Fatalf("retry, result %d: %+v, want Duplicate %v", i, r, i < n)
		}
	}

	st, err := js.Stream(ctx, trailnats.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]uuid.UUID{}
	for _, ev := range evs {
		want[ev.Tenant] = append(want[ev.Tenant], ev.ID)
	}
	got := map[string][]uuid.UUID{}
	for seq := uint64(1); ; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			break
		}
		var ev trail.Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		got[ev.Tenant] = append(got[ev.Tenant], ev.ID)
	}
	for tenant, ids := range want {
		if len(got[tenant]) != len(ids) {
			t.Fatalf("%s: %d events on the stream, want %d", tenant, len(got[tenant]), len(ids))
		}
		for i := range ids {
			if got[tenant][i] != ids[i] {
				t.Fatalf("%s: stream position %d holds another event than published", tenant, i)
			}
		}
	}
}

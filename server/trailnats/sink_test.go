package trailnats_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailnats"
)

// runSinks starts n in-process sinks on js until the test ends.
func runSinks(t testing.TB, js jetstream.JetStream, st *orderStore, cfg trailnats.SinkConfig, n int) []*trailnats.Sink {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	sinks := make([]*trailnats.Sink, n)
	for i := range sinks {
		sinks[i] = trailnats.NewSink(js, st, cfg)
		wg.Go(func() {
			if err := sinks[i].Run(ctx); err != nil {
				t.Errorf("sink %d: %v", i, err)
			}
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return sinks
}

// TestTwoSinksKeepOrder: two sinks share one stream of 8 tenants; every
// acknowledged event is stored once, each tenant's in publish order, and a
// re-publish of everything stores nothing new.
func TestTwoSinksKeepOrder(t *testing.T) {
	st, pool, schema := pgStore(t)
	s := startNode(t)
	_, js := connect(t, s.ClientURL())
	cfg := trailnats.Config{Partitions: 4}
	setup(t, js, cfg)
	pub := trailnats.NewPublisher(js, cfg)
	os := newOrderStore(st)
	sinks := runSinks(t, js, os, trailnats.SinkConfig{Config: cfg, Batch: 50}, 2)
	l := newLoad()
	if err := l.run(context.Background(), pub, tenants(8), 300, 20, nil); err != nil {
		t.Fatal(err)
	}
	ids := waitStored(t, l, pool, schema, 60*time.Second)
	l.check(t, ids)
	l.checkOrder(t, os)
	for i, s := range sinks {
		t.Logf("sink %d: %+v", i, s.Stats())
	}
}

// TestSinkConflictSetAside: an ID reused for another event that reaches the
// sink is refused by the store and put on the conflict subject; its
// batch-mates are stored.
func TestSinkConflictSetAside(t *testing.T) {
	st, pool, schema := pgStore(t)
	s := startNode(t)
	_, js := connect(t, s.ClientURL())
	cfg := trailnats.Config{Partitions: 2}
	setup(t, js, cfg)
	pub := trailnats.NewPublisher(js, cfg)
	l := newLoad()
	if err := l.run(context.Background(), pub, tenants(1), 3, 3, nil); err != nil {
		t.Fatal(err)
	}
	var first []uuid.UUID
	for id := range l.acked {
		first = append(first, id)
	}
	// The same ID as another event, as it comes once JetStream's duplicate
	// window no longer holds the first (within it, Publish refuses it: see
	// TestEdgeRefusesIDReuse), then a fresh one.
	ev := newEvent(t, "t0", 99)
	ev.ID = first[0]
	data, err := json.Marshal(&ev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(context.Background(), trailnats.DefaultSubject+"."+strconv.Itoa(trailnats.Partition("t0", cfg.Partitions)), data); err != nil {
		t.Fatal(err)
	}
	fresh := newEvent(t, "t0", 100)
	if _, err := pub.Publish(context.Background(), []trail.Event{fresh}); err != nil {
		t.Fatal(err)
	}
	l.acked[fresh.ID], l.sent[fresh.ID] = true, true
	sinks := runSinks(t, js, newOrderStore(st), trailnats.SinkConfig{Config: cfg, Batch: 10}, 1)
	ids := waitStored(t, l, pool, schema, 30*time.Second)
	l.check(t, ids)
	cons, err := js.OrderedConsumer(context.Background(), trailnats.DefaultStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{trailnats.ConflictSubject(cfg, trailnats.Partition("t0", cfg.Partitions))}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatalf("nothing on the conflict subject: %v", err)
	}
	if r := m.Headers().Get("Trail-Reason"); !strings.Contains(r, "already in use") {
		t.Fatalf("Trail-Reason %q", r)
	}
	if got := sinks[0].Stats().Conflicts; got != 1 {
		t.Fatalf("conflicts %d, want 1", got)
	}
}

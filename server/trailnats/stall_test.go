package trailnats_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailnats"
)

// stallStore blocks its first Append until release is closed.
type stallStore struct {
	*orderStore
	once     sync.Once
	entered  chan struct{}
	release  chan struct{}
	appended func()
}

func (s *stallStore) Append(ctx context.Context, evs []trail.Event) ([]trail.Result, error) {
	first := false
	s.once.Do(func() { first = true })
	if first {
		close(s.entered)
		<-s.release
	}
	return s.orderStore.Append(ctx, evs)
}

// TestSinkStalledKeepsPartition: sink A holds a partial batch (10 events
// of a 100-event batch) in a store write that takes three times the pinned
// TTL; sink B is running and 50 newer events of the same tenant arrive. A
// keeps the partition (progress signals, pulls that cannot deliver), so B
// stores nothing of it until A commits, and the tenant's events are
// stored in order. Without that, the pin would move to B after PinnedTTL
// and B would commit the newer events first.
func TestSinkStalledKeepsPartition(t *testing.T) {
	st, pool, schema := pgStore(t)
	node := startNode(t)
	_, js := connect(t, node.ClientURL())
	cfg := trailnats.Config{Partitions: 1}
	setup(t, js, cfg)
	pub := trailnats.NewPublisher(js, cfg)
	scfg := trailnats.SinkConfig{Config: cfg, Batch: 100, AckWait: 500 * time.Millisecond, PinnedTTL: 750 * time.Millisecond, MaxWait: 100 * time.Millisecond}
	os := newOrderStore(st)
	a := &stallStore{orderStore: os, entered: make(chan struct{}), release: make(chan struct{})}
	l := newLoad()
	if err := l.run(context.Background(), pub, []string{"acme"}, 10, 10, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var release sync.Once
	unblock := func() { release.Do(func() { close(a.release) }) }
	defer func() { unblock(); cancel(); wg.Wait() }()
	wg.Go(func() { trailnats.NewSink(js, a, scfg).Run(ctx) })
	<-a.entered // A holds the 10 events
	b := trailnats.NewSink(js, os, scfg)
	wg.Go(func() { b.Run(ctx) })
	more := newLoad()
	if err := more.run(context.Background(), pub, []string{"acme"}, 50, 10, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * scfg.PinnedTTL) // the stall is the fault: three pinned TTLs
	if got := b.Stats().Events; got != 0 {
		t.Fatalf("sink B stored %d events while A held the partition", got)
	}
	unblock()
	for id := range more.acked {
		l.acked[id], l.sent[id] = true, true
	}
	l.order["acme"] = append(l.order["acme"], more.order["acme"]...)
	for id, b := range more.batch {
		l.batch[id] = b + 1 // after the first request's
	}
	l.check(t, waitStored(t, l, pool, schema, 30*time.Second))
	l.checkOrder(t, os)
}

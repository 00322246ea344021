package trailnats_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/trailhq/trail/server/trailnats"
)

// TestClusterStreamLeaderKilled: on a 3-node cluster with an R3 stream,
// the stream's leader is shut down while 8 producers publish; producers
// retry what was not acknowledged, two sinks keep storing, and nothing
// acknowledged is lost, duplicated or made up; each tenant's events are
// stored in publish order.
func TestClusterStreamLeaderKilled(t *testing.T) {
	st, pool, schema := pgStore(t)
	c := startCluster(t)
	_, js := connect(t, c.url())
	cfg := trailnats.Config{Partitions: 4, Replicas: 3}
	setup(t, js, cfg)
	leader := c.streamLeader(t, trailnats.DefaultStream)
	pub := trailnats.NewPublisher(js, cfg)
	os := newOrderStore(st)
	runSinks(t, js, os, trailnats.SinkConfig{Config: cfg, Batch: 50}, 2)
	var once sync.Once
	l := newLoad()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := l.run(ctx, pub, tenants(8), 1500, 25, func(acked int) {
		if acked >= 500 {
			once.Do(func() {
				t.Logf("shutting down the stream leader %s", leader.Name())
				leader.Shutdown()
			})
		}
	}); err != nil {
		t.Fatal(err)
	}
	next := c.streamLeader(t, trailnats.DefaultStream)
	if next == leader {
		t.Fatal("the stream leader did not change")
	}
	ids := waitStored(t, l, pool, schema, 2*time.Minute)
	l.check(t, ids)
	l.checkOrder(t, os)
}

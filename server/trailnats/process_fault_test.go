package trailnats_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/server/trailnats"
)

// TestSinkProcessKilled: two `trail sink` processes share one stream while
// 8 producers publish; one is SIGKILLed in the middle of its work (it holds
// fetched, unacknowledged batches), later the other one too, and a third
// is started. Nothing acknowledged is lost, duplicated or made up, and each
// tenant's events are stored in publish order.
func TestSinkProcessKilled(t *testing.T) {
	natsTargets(t, func(t *testing.T, url string, replicas int) {
		dsn, pool := freshDB(t, testenv.PostgresDSN())
		_, js := connect(t, url)
		stream, subject := uniqueStream()
		cfg := trailnats.Config{Stream: stream, Subject: subject, Partitions: 4, Replicas: replicas}
		setup(t, js, cfg)
		t.Cleanup(func() { js.DeleteStream(context.Background(), stream) })
		flags := []string{"--nats-stream", stream, "--nats-subject", subject, "--nats-replicas", strconv.Itoa(replicas)}
		a := startSink(t, url, dsn, 4, flags...)
		b := startSink(t, url, dsn, 4, flags...)
		pub := trailnats.NewPublisher(js, cfg)
		l := newLoad()
		const perTenant, nTenants = 1500, 8
		var wg sync.WaitGroup
		var loadErr error
		wg.Go(func() { loadErr = l.run(context.Background(), pub, tenants(nTenants), perTenant, 25, nil) })
		waitCount(t, pool, perTenant*nTenants/4, 2*time.Minute)
		a.kill()
		<-a.done
		t.Logf("killed sink A with %d events stored", storedCount(t, pool))
		waitCount(t, pool, perTenant*nTenants/2, 2*time.Minute)
		b.kill()
		<-b.done
		t.Logf("killed sink B with %d events stored", storedCount(t, pool))
		startSink(t, url, dsn, 4, flags...)
		wg.Wait()
		if loadErr != nil {
			t.Fatal(loadErr)
		}
		l.check(t, waitStored(t, l, pool, "trail", 2*time.Minute))
		l.checkPendingOrder(t, pool)
	})
}

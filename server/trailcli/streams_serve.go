package trailcli

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trailhq/trail/server/logstream"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailpgx"
	"github.com/trailhq/trail/trailprivacy"
	"github.com/trailhq/trail/trailseal"
)

// logStreamLease is the lease delivery takes when this process does not
// run the sealer (--no-seal, or no signing key): one replica delivers.
const logStreamLease = "trail.log-streams"

// startLogStreams serves /v1/log-streams and runs delivery until ctx ends:
// on the sealer's leader when this process seals (the same lease, so
// delivery never runs twice), else under a lease of its own. Delivery
// reveals through the server's privacy layer priv and uses b's database
// handle: one key cache (a Forget reaches it), one pool. A store without a
// sealed log gets no log streams (nil) and a note.
func (c *ServeCmd) startLogStreams(ctx context.Context, e *Env, b *backend, priv *trailprivacy.Privacy, kms *trailprivacy.LocalKMS) (trailserver.LogStreams, func(), error) {
	var schema string
	switch st := b.store.(type) {
	case *trailsqlite.Store:
	case *trailpgx.Store:
		schema = st.Schema()
	default:
		fmt.Fprintf(e.Stderr, "trail: log streams: this store (%T) has no sealed log; /v1/log-streams is off\n", b.store)
		return nil, func() {}, nil
	}
	m, err := e.newLogStreamManager(b.store, b.db, schema, priv, kms) // streams.go
	if err != nil {
		return nil, nil, err
	}
	leader := c.SealFlags.leading
	if leader == nil {
		leader = ownLease(ctx, m.Log)
	}
	r := &logstream.Runner{Manager: m, Reveal: priv.Reveal, Leader: leader,
		OnError: func(id string, err error) {
			if ctx.Err() == nil {
				fmt.Fprintf(e.Stderr, "trail: log stream %s: %s\n", id, oneLine(err.Error()))
			}
		}}
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(ctx) })
	return logstream.API(m, r), wg.Wait, nil
}

// ownLease returns a Leader that holds the log-stream lease on log,
// renewing it at most every 5 s (the lease lasts 15 s).
func ownLease(ctx context.Context, log trailseal.Store) func() bool {
	host, _ := os.Hostname()
	holder := fmt.Sprintf("%s:%d", host, os.Getpid())
	var until atomic.Int64
	var mu sync.Mutex
	var renewed time.Time
	return func() bool {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(renewed) < 5*time.Second {
			return time.Now().UnixNano() < until.Load()
		}
		renewed = time.Now()
		_, ok, err := log.Lease(ctx, logStreamLease, holder, 15*time.Second)
		if err != nil || !ok {
			until.Store(0)
			return false
		}
		until.Store(renewed.Add(15 * time.Second).UnixNano())
		return true
	}
}

package trailserver

import (
	"context"
	"sync"
	"time"

	"github.com/trailhq/trail"
)

// StreamTailer is implemented by stores that front a durable stream
// (trailnats.Store, trail serve --nats): every replica's live tail reads the
// stream, where every replica's writes are, instead of polling the store.
type StreamTailer interface {
	// TailStream calls fn with every event put on the stream after it
	// returns, until ctx ends.
	TailStream(ctx context.Context, fn func(trail.Event)) error
}

// streamBuffer is the most events a stream feed holds between two polls;
// beyond, the oldest are dropped (and counted as a failed poll).
const streamBuffer = 1 << 16

// streamFeed buffers what the stream delivers; each poll hands it to the hub.
type streamFeed struct {
	st      StreamTailer
	cancel  context.CancelFunc
	mu      sync.Mutex
	buf     []trail.Event
	dropped int
}

func (f *streamFeed) prime(ctx context.Context, _ func(seenEntry)) error {
	sctx, cancel := context.WithCancel(context.Background())
	if err := f.st.TailStream(sctx, func(ev trail.Event) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.buf) >= streamBuffer {
			f.buf = f.buf[1:]
			f.dropped++
		}
		f.buf = append(f.buf, ev)
	}); err != nil {
		cancel()
		return err
	}
	f.cancel = cancel
	return nil
}

func (f *streamFeed) poll(_ context.Context, h *hub) (func(seenEntry) bool, error) {
	start := time.Now()
	f.mu.Lock()
	evs, dropped := f.buf, f.dropped
	f.buf, f.dropped = nil, 0
	f.mu.Unlock()
	h.publishStored(evs)
	if dropped > 0 {
		h.m.tailPollErrors.Add(1)
		h.log.Warn("trailserver: tail: the stream ran ahead of the tail; events were not shown live", "dropped", dropped)
	}
	// This server's own writes reach the stream before its ingest answers
	// and the hub publishes them: a minute is far more than that gap.
	return func(e seenEntry) bool { return e.added.Before(start.Add(-time.Minute)) }, nil
}

func (f *streamFeed) close() {
	if f.cancel != nil {
		f.cancel()
	}
}

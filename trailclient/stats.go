package trailclient

import "sync/atomic"

// DeliveryStats are a client's delivery counts since New. Queued, Spooled and
// SpoolBytes are the state now; the others only grow. Every event given to
// Enqueue ends up exactly one of delivered, dropped, dead-lettered or (for
// strict callers) failed — or is still queued or spooled.
type DeliveryStats struct {
	Queued     int64 // events waiting in memory (strict and best-effort)
	Spooled    int64 // events in the spool, not yet delivered (durable)
	SpoolBytes int64 // the spool's size on disk
	Replayed   int64 // events a previous run left in the spool, found by New

	Delivered    uint64 // acknowledged by the server (created or duplicate)
	Dropped      uint64 // best-effort events dropped: memory queue full, or left at Close
	DeadLettered uint64 // Enqueued events given up: refused by the server, older than MaxAge, or MaxAttempts reached; written to the dead-letter file and passed to OnError
	Failed       uint64 // strict and Record events whose caller got the server's refusal
	Retries      uint64 // requests that failed and were tried again
}

type counters struct {
	queued                                            atomic.Int64
	delivered, dropped, deadLettered, failed, retries atomic.Uint64
}

// DeliveryStats returns the client's delivery counts (Stats reads the
// server's event counts). Cheap enough to scrape into any metrics system:
// the package has no metrics dependency of its own.
func (c *Client) DeliveryStats() DeliveryStats {
	st := DeliveryStats{
		Queued:       c.n.queued.Load(),
		Delivered:    c.n.delivered.Load(),
		Dropped:      c.n.dropped.Load(),
		DeadLettered: c.n.deadLettered.Load(),
		Failed:       c.n.failed.Load(),
		Retries:      c.n.retries.Load(),
		Replayed:     c.replayed,
	}
	if c.spool != nil {
		st.Spooled, st.SpoolBytes = c.spool.counts()
	}
	return st
}

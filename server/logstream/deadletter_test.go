package logstream

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestDeadLetter: a batch that keeps failing for dead_letter_after_s is set
// aside — a dead-letter record names its sequence numbers and events, the
// stream moves on, the receiver sees the gap the record explains, and
// later events are delivered.
func TestDeadLetter(t *testing.T) {
	eachStore(t, func(t *testing.T, f *fixture) {
		var mu sync.Mutex
		var offset time.Duration // the clock runs, and jumps ahead by advance
		f.m.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(offset) }
		advance := func(d time.Duration) { mu.Lock(); offset += d; mu.Unlock() }
		rcv := newWebhookReceiver(t, "whsec_x")
		s := f.webhook(t, rcv, "acme", func(r *CreateRequest) { r.DeadLetterAfterS = 3600 })
		f.record(t, "acme", 5)
		f.until(t, "6 delivered", func() bool { return rcv.count() >= 6 })

		rcv.failNext(http.StatusInternalServerError, -1)
		lost := ids(f.record(t, "acme", 4))
		f.until(t, "failing", func() bool { return f.health(t, s.ID).State == StateError })
		advance(30 * time.Minute)
		f.step(t)
		if h := f.health(t, s.ID); h.DeadLetters != 0 || h.State != StateError {
			t.Fatalf("dead-lettered before its age: %+v", h)
		}
		advance(31 * time.Minute)
		f.until(t, "dead letter", func() bool { return f.health(t, s.ID).DeadLetters == 1 })
		dl, err := f.m.DeadLetters(context.Background(), Caller{Tenant: "acme"}, s.ID)
		if err != nil || len(dl) != 1 || dl[0].FirstSeq != 7 || dl[0].LastSeq != 10 || len(dl[0].EventIDs) != 4 || dl[0].EventIDs[0] != lost[0] {
			t.Fatalf("dead letters %+v %v", dl, err)
		}
		rcv.failNext(0, 0)
		later := ids(f.record(t, "acme", 3))
		f.until(t, "delivered after the dead letter", func() bool { return rcv.count() >= 13 })
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		if len(rcv.gaps) != 1 || rcv.gaps[0] != "gap: got 11 after 6" || rcv.bySeq[11] != later[0] {
			t.Fatalf("receiver: gaps %v, seq 11 %s", rcv.gaps, rcv.bySeq[11])
		}
	})
}

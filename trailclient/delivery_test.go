package trailclient_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailclient"
)

// waitState polls a condition on the client's state (never a fixed
// sleep); only a hang reaches the deadline.
func waitState(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitFor(ctx, t, what, cond)
}

// switchable is a flaky server that answers 503 while down is set.
func switchable(t *testing.T) (*flaky, string, *atomic.Bool) {
	var down atomic.Bool
	f, ts := newFlaky(t, func(int64) string {
		if down.Load() {
			return "503"
		}
		return ""
	})
	return f, ts.URL, &down
}

func (f *flaky) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.stored)
}

// TestDurableSurvivesClose: durable events enqueued while the server is
// down stay in the spool when Close's context ends, Close says how many,
// and the next client on the directory delivers every one, once.
//
// The first client talks to a server that is down for good and the second to
// another one: a request the first client abandoned in Close may still be
// handled after Close returns (the server read it before the connection
// closed), and against one switchable server it would then count as a
// second offer of events the second client sends too.
func TestDurableSurvivesClose(t *testing.T) {
	_, downTS := newFlaky(t, func(int64) string { return "503" })
	f, upTS := newFlaky(t, nil)
	dir := t.TempDir()
	c := newClient(t, downTS.URL, func(c *trailclient.Config) { c.Spool = dir })
	ids := map[uuid.UUID]bool{}
	for i := range 100 {
		id, err := c.Enqueue(context.Background(), event(i))
		if err != nil {
			t.Fatal(err)
		}
		ids[id] = true
	}
	waitState(t, "a retry", func() bool { return c.DeliveryStats().Retries > 3 })
	if st := c.DeliveryStats(); st.Spooled != 100 || st.Delivered != 0 {
		t.Fatalf("stats while down: %+v", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := c.Close(ctx)
	var ue *trailclient.UndeliveredError
	if !errors.As(err, &ue) || ue.Spooled != 100 || ue.Dropped != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Close = %v, want 100 left in the spool", err)
	}

	c2 := newClient(t, upTS.URL, func(c *trailclient.Config) { c.Spool = dir })
	if err := c2.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c2.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.count() != 100 {
		t.Fatalf("stored %d of 100", f.count())
	}
	for id := range ids {
		if f.stored[id] != 1 {
			t.Fatalf("event %s offered %d times", id, f.stored[id])
		}
	}
	if st := c2.DeliveryStats(); st.Delivered != 100 || st.Spooled != 0 {
		t.Fatalf("stats after replay: %+v", st)
	}
}

// bigEvent is an event of about kb KiB (its description and metadata).
func bigEvent(i, kb int) trail.Event {
	ev := event(i)
	ev.Description = strings.Repeat("d", 4000)
	ev.Metadata = map[string]any{"blob": strings.Repeat("m", kb<<10-4000)}
	return ev
}

// TestBatchesBoundedByBytes: 400 events of 30 KB (12 MB) go in requests
// under MaxBatchBytes, and a server with a lower limit than the client's
// makes the client split its batches, not lose them.
func TestBatchesBoundedByBytes(t *testing.T) {
	for _, tc := range []struct {
		name          string
		serverLimit   int64
		maxBatchBytes int
	}{
		{"under the limit", 5 << 20, 0},        // the default, 4 MiB
		{"split on 413", 1 << 20, 3 << 20},     // the client thinks 3 MiB fit
		{"one event per request", 40 << 10, 0}, // only one 30 KB event fits
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, ts := newFlaky(t, nil)
			f.maxBody = tc.serverLimit
			var failed atomic.Int64
			c := newClient(t, ts.URL, func(c *trailclient.Config) {
				c.BatchSize = 1000
				c.MaxBatchBytes = tc.maxBatchBytes
				c.OnError = func(evs []trail.Event, err error) { failed.Add(int64(len(evs))); t.Error(err) }
			})
			n := 400
			if tc.serverLimit < 1<<20 {
				n = 40
			}
			for i := range n {
				if _, err := c.Enqueue(context.Background(), bigEvent(i, 30)); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			if f.count() != n || failed.Load() != 0 {
				t.Fatalf("stored %d of %d, %d failed", f.count(), n, failed.Load())
			}
			if f.largest.Load() > 4<<20 && tc.maxBatchBytes == 0 {
				t.Fatalf("a request of %d bytes", f.largest.Load())
			}
			t.Logf("%d requests, largest %d bytes", f.requests.Load(), f.largest.Load())
		})
	}
}

// TestRejectedSpooledEventAlone: the server refuses one spooled event; it
// alone goes to OnError and the dead letter, its batch-mates are stored.
func TestRejectedSpooledEventAlone(t *testing.T) {
	f, ts := newFlaky(t, nil)
	f.reject = "user.delete"
	dir := t.TempDir()
	var mu sync.Mutex
	var reported []trail.Event
	var reportErr error
	c := newClient(t, ts.URL, func(c *trailclient.Config) {
		c.Spool = dir
		c.OnError = func(evs []trail.Event, err error) {
			mu.Lock()
			reported, reportErr = append(reported, evs...), err
			mu.Unlock()
		}
	})
	var bad uuid.UUID
	for i := range 50 {
		ev := event(i)
		if i == 17 {
			ev.Action = "user.delete"
		}
		id, err := c.Enqueue(context.Background(), ev)
		if err != nil {
			t.Fatal(err)
		}
		if i == 17 {
			bad = id
		}
	}
	if err := c.Flush(context.Background()); err == nil || !strings.Contains(err.Error(), bad.String()) {
		t.Fatalf("Flush = %v, want the rejected event named", err)
	}
	if f.count() != 49 || f.stored[bad] != 0 {
		t.Fatalf("stored %d (the bad one %d times)", f.count(), f.stored[bad])
	}
	var ae *trailclient.APIError
	if len(reported) != 1 || reported[0].ID != bad || !errors.As(reportErr, &ae) || ae.Field != "action" {
		t.Fatalf("OnError got %d events, %v", len(reported), reportErr)
	}
	lines := deadLines(t, filepath.Join(dir, "dead-letter.jsonl"))
	if len(lines) != 1 || lines[0].Field != "action" || !strings.Contains(string(lines[0].Event), bad.String()) {
		t.Fatalf("dead letter: %+v", lines)
	}
	if st := c.DeliveryStats(); st.Delivered != 49 || st.DeadLettered != 1 || st.Spooled != 0 {
		t.Fatalf("stats %+v", st)
	}
}

type deadLine struct {
	Error string          `json:"error"`
	Field string          `json:"field"`
	Event json.RawMessage `json:"event"`
}

func deadLines(t *testing.T, path string) []deadLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []deadLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l deadLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("dead letter line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

// TestMaxAgeDeadLetters: events not delivered within MaxAge are written to
// the dead letter and reported, never dropped silently.
func TestMaxAgeDeadLetters(t *testing.T) {
	_, url, down := switchable(t)
	down.Store(true)
	defer down.Store(false) // before the cleanup's Close, which delivers
	dir := t.TempDir()
	var reported atomic.Int64
	c := newClient(t, url, func(c *trailclient.Config) {
		c.Spool = dir
		c.MaxAge = 20 * time.Millisecond
		c.OnError = func(evs []trail.Event, err error) {
			if errors.Is(err, trailclient.ErrClosed) || !strings.Contains(err.Error(), "MaxAge") {
				t.Errorf("OnError: %v", err)
			}
			reported.Add(int64(len(evs)))
		}
	})
	for i := range 30 {
		if _, err := c.Enqueue(context.Background(), event(i)); err != nil {
			t.Fatal(err)
		}
	}
	waitState(t, "30 dead-lettered", func() bool { return c.DeliveryStats().DeadLettered == 30 })
	if reported.Load() != 30 {
		t.Fatalf("OnError saw %d", reported.Load())
	}
	if n := len(deadLines(t, filepath.Join(dir, "dead-letter.jsonl"))); n != 30 {
		t.Fatalf("dead letter holds %d lines", n)
	}
	if st := c.DeliveryStats(); st.Spooled != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestSpoolFullIsAnError: a durable Enqueue past SpoolBytes fails with
// ErrSpoolFull; the events accepted before are kept.
func TestSpoolFullIsAnError(t *testing.T) {
	_, url, down := switchable(t)
	down.Store(true)
	defer down.Store(false) // before the cleanup's Close, which delivers
	c := newClient(t, url, func(c *trailclient.Config) { c.Spool = t.TempDir(); c.SpoolBytes = 256 << 10 })
	accepted := 0
	for i := range 1000 {
		_, err := c.Enqueue(context.Background(), bigEvent(i, 8))
		if errors.Is(err, trailclient.ErrSpoolFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		accepted++
	}
	if accepted == 0 || accepted == 1000 {
		t.Fatalf("accepted %d", accepted)
	}
	if st := c.DeliveryStats(); st.Spooled != int64(accepted) || st.SpoolBytes > 256<<10 {
		t.Fatalf("stats %+v, accepted %d", st, accepted)
	}
}

// TestBestEffortDropsAreCounted: with the sender stuck, best-effort
// Enqueue never blocks: what does not fit in memory is dropped and counted,
// and Close says how many it dropped.
func TestBestEffortDropsAreCounted(t *testing.T) {
	release := make(chan struct{})
	f, ts := newFlaky(t, nil)
	var held atomic.Bool
	f.arrived = func(n int64, _ []trail.Event) {
		if n == 1 {
			held.Store(true)
			<-release
		}
	}
	defer close(release)
	c := newClient(t, ts.URL, func(c *trailclient.Config) { c.QueueSize = 10; c.BatchSize = 1 })
	if _, err := c.Enqueue(context.Background(), event(0)); err != nil {
		t.Fatal(err)
	}
	waitState(t, "the first request in flight", held.Load)
	for i := range 100 {
		if _, err := c.Enqueue(context.Background(), event(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	st := c.DeliveryStats()
	if st.Dropped == 0 || st.Queued+int64(st.Dropped) != 101 {
		t.Fatalf("stats %+v: want drops, queued+dropped = 101", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := c.Close(ctx)
	var ue *trailclient.UndeliveredError
	if !errors.As(err, &ue) || ue.Dropped == 0 {
		t.Fatalf("Close = %v", err)
	}
	if st := c.DeliveryStats(); st.Queued != 0 || st.Delivered+st.Dropped != 101 {
		t.Fatalf("after Close %+v", st)
	}
}

// TestPolicies: a strict action's Enqueue returns only after the server
// answered; the others return at once; a durable policy needs a spool.
func TestPolicies(t *testing.T) {
	release := make(chan struct{})
	f, ts := newFlaky(t, nil)
	arrived := make(chan []trail.Event, 10)
	f.arrived = func(_ int64, evs []trail.Event) {
		arrived <- evs
		if evs[0].Action == "auth.login" {
			<-release
		}
	}
	spoolDir := t.TempDir()
	c := newClient(t, ts.URL, func(c *trailclient.Config) {
		c.Spool = spoolDir
		c.Policies = map[string]trailclient.Policy{"auth.*": trailclient.Strict, "page.view": trailclient.BestEffort}
	})
	done := make(chan error, 1)
	go func() {
		ev := event(1)
		ev.Action = "auth.login"
		_, err := c.Enqueue(context.Background(), ev)
		done <- err
	}()
	<-arrived // the strict event is at the server, held
	select {
	case err := <-done:
		t.Fatalf("a strict Enqueue returned (%v) before the server answered", err)
	default:
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if f.count() != 1 {
		t.Fatal("not stored")
	}

	for _, cfg := range []trailclient.Config{
		{Policy: trailclient.Durable},
		{Policies: map[string]trailclient.Policy{"user.*": trailclient.Durable}},
		{Policy: "sometimes"},
		{Spool: t.TempDir(), Policies: map[string]trailclient.Policy{"Bad Action": trailclient.Strict}},
	} {
		cfg.BaseURL, cfg.Key = ts.URL, "trail_test"
		if c, err := trailclient.New(cfg); err == nil {
			c.Close(context.Background())
			t.Errorf("%+v accepted", cfg)
		}
	}
	if _, err := trailclient.New(trailclient.Config{BaseURL: ts.URL, Key: "k", Spool: spoolDir}); !errors.Is(err, trailclient.ErrSpoolLocked) {
		t.Errorf("a second client on the spool: %v", err)
	}
}

// TestFlushUnderLoad: Flush delivers what was queued before it and
// returns while producers keep appending to the spool.
func TestFlushUnderLoad(t *testing.T) {
	f, ts := newFlaky(t, nil)
	c := newClient(t, ts.URL, func(c *trailclient.Config) { c.Spool = t.TempDir() })
	before := map[uuid.UUID]bool{}
	for i := range 300 {
		id, err := c.Enqueue(context.Background(), event(i))
		if err != nil {
			t.Fatal(err)
		}
		before[id] = true
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.Enqueue(context.Background(), event(1000+i)); err != nil {
				t.Error(err)
				return
			}
		}
	})
	err := c.Flush(context.Background())
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for id := range before {
		if f.stored[id] == 0 {
			t.Fatalf("Flush returned before %s was delivered", id)
		}
	}
}

//go:build unix

package trailcli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailclient"
)

// The producer-side faults of issue 16, item 3, against the real `trail
// serve` (SQLite): trailclient with its durable spool must deliver every
// event it accepted — across a SIGKILL of the producer, a producer that
// exits without Close, a server outage, 30 KB events and an invalid event
// among valid ones. Each case counts, over the events Enqueue accepted:
// acknowledged-missing (accepted, not stored), duplicated (stored more than
// once) and never-sent (not accepted at all, though the producer asked):
// all 0. The server dedupes by event ID (ingest answers "duplicate"), so the
// spool's re-sends after a restart are harmless; the counts prove it.
//
// The producer is this test binary run again as a child process
// (TestSpoolProducerChild, selected by TRAIL_SPOOL_CHILD).

const spoolEvents = 5000

func TestClientSpoolFaults(t *testing.T) {
	if os.Getenv("TRAIL_SPOOL_CHILD") != "" {
		t.Skip("in the producer child")
	}
	t.Parallel()
	r, key := newCrashRig(t, buildTrail(t), []string{"--db", filepath.Join(t.TempDir(), "trail.db")}, "spool-test")
	srv := r.serveAt("127.0.0.1:0")
	addr := strings.TrimPrefix(srv.base, "http://")

	t.Run("SIGKILL after 5000 durable Enqueues", func(t *testing.T) {
		// The server is up: the child delivers while it enqueues, and is
		// killed with part of the 5,000 still in its spool.
		dir := t.TempDir()
		child := startProducer(t, "kill", srv.base, key, dir)
		child.waitLine(t, "enqueued")
		if err := child.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		child.wait()
		ids := readIDs(t, filepath.Join(dir, "ids"))
		st := drainProducer(t, srv.base, key, dir)
		t.Logf("after the kill the restarted producer found %d events in the spool (%d bytes of segments), delivered %d (re-sent duplicates included)", st.replayed, st.spoolBytes, st.Delivered)
		spoolCount(t, srv.base, r.admin, ids, spoolEvents)
	})

	t.Run("exit without Close while the server is down", func(t *testing.T) {
		// main returns (os.Exit) without Close; nothing could be delivered:
		// all 5,000 wait in the spool for the next start.
		srv.stop(t, syscall.SIGTERM)
		dir := t.TempDir()
		child := startProducer(t, "exit", srv.base, key, dir)
		child.wait()
		if child.waitErr != nil {
			t.Fatalf("producer: %v\n%s", child.waitErr, child.errb.String())
		}
		ids := readIDs(t, filepath.Join(dir, "ids"))
		srv = r.serveAt(addr)
		st := drainProducer(t, srv.base, key, dir)
		if st.replayed != spoolEvents {
			t.Errorf("the restarted producer found %d events in the spool, want %d", st.replayed, spoolEvents)
		}
		spoolCount(t, srv.base, r.admin, ids, spoolEvents)
	})

	t.Run("SIGKILL with a full spool while the server is down", func(t *testing.T) {
		// The child enqueues until its 1 MiB spool refuses (ErrSpoolFull,
		// the caller's to handle), is killed, and everything it was told
		// accepted is delivered after the restart.
		srv.stop(t, syscall.SIGTERM)
		dir := t.TempDir()
		child := startProducer(t, "fill", srv.base, key, dir)
		child.waitLine(t, "full")
		if err := child.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		child.wait()
		ids := readIDs(t, filepath.Join(dir, "ids"))
		srv = r.serveAt(addr)
		st := drainProducer(t, srv.base, key, dir)
		if st.replayed != int64(len(ids)) || st.spoolBytes > 1<<20 {
			t.Errorf("the restarted producer found %d events (%d bytes) in the spool, %d were accepted", st.replayed, st.spoolBytes, len(ids))
		}
		spoolCount(t, srv.base, r.admin, ids, len(ids))
	})

	t.Run("server down, then back", func(t *testing.T) {
		// The old client gave up after 10 attempts (16-33 s); this one is
		// retried well past that — the wait is on its retry count, not on
		// the clock — and delivers everything once the server is back on
		// the same address.
		var onError atomic.Int64
		c := spoolClient(t, srv.base, key, t.TempDir(), func(cfg *trailclient.Config) {
			cfg.OnError = func(evs []trail.Event, err error) { onError.Add(int64(len(evs))); t.Error(err) }
		})
		ids := map[uuid.UUID]bool{}
		enqueue := func(n int) {
			for i := range n {
				id, err := c.Enqueue(context.Background(), spoolEvent(i, 0))
				if err != nil {
					t.Fatal(err)
				}
				ids[id] = true
			}
		}
		enqueue(1000)
		flush(t, c)
		srv.stop(t, syscall.SIGTERM)
		enqueue(1000)
		waitClient(t, "15 failed attempts while the server is down", func() bool { return c.DeliveryStats().Retries >= 15 })
		if st := c.DeliveryStats(); st.Spooled != 1000 || st.DeadLettered != 0 {
			t.Fatalf("while down: %+v", st)
		}
		srv = r.serveAt(addr)
		flush(t, c)
		st := c.DeliveryStats()
		t.Logf("outage: %d failed attempts retried; then delivered: %+v", st.Retries, st)
		if err := c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st.Spooled != 0 || st.DeadLettered != 0 || onError.Load() != 0 {
			t.Fatalf("after the outage: %+v", st)
		}
		spoolCount(t, srv.base, r.admin, ids, len(ids))
	})

	t.Run("400 events of 30 KB", func(t *testing.T) {
		// 12 MB: one 413 lost all 400 before batches were bounded by bytes.
		c := spoolClient(t, srv.base, key, t.TempDir(), func(cfg *trailclient.Config) {
			cfg.BatchSize = 1000
			cfg.OnError = func(evs []trail.Event, err error) { t.Errorf("%d events failed: %v", len(evs), err) }
		})
		ids := map[uuid.UUID]bool{}
		for i := range 400 {
			id, err := c.Enqueue(context.Background(), spoolEvent(i, 30))
			if err != nil {
				t.Fatal(err)
			}
			ids[id] = true
		}
		flush(t, c)
		if st := c.DeliveryStats(); st.Delivered != 400 || st.DeadLettered != 0 {
			t.Fatalf("%+v", st)
		}
		c.Close(context.Background())
		spoolCount(t, srv.base, r.admin, ids, 400)
	})

	t.Run("one invalid event among valid ones", func(t *testing.T) {
		// The server refuses the event naming another tenant than the key's
		// (403 events[i].tenant); it alone is reported, to OnError and the
		// dead letter, and the 99 others are stored.
		dir := t.TempDir()
		var mu sync.Mutex
		var failed []trail.Event
		var failErr error
		c := spoolClient(t, srv.base, key, dir, func(cfg *trailclient.Config) {
			cfg.OnError = func(evs []trail.Event, err error) {
				mu.Lock()
				failed, failErr = append(failed, evs...), err
				mu.Unlock()
			}
		})
		ids := map[uuid.UUID]bool{}
		var bad uuid.UUID
		for i := range 100 {
			ev := spoolEvent(i, 0)
			if i == 42 {
				ev.Tenant = "globex"
			}
			id, err := c.Enqueue(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			if i == 42 {
				bad = id
			} else {
				ids[id] = true
			}
		}
		if err := c.Flush(context.Background()); err == nil || !strings.Contains(err.Error(), bad.String()) {
			t.Fatalf("Flush = %v, want the refused event named", err)
		}
		c.Close(context.Background())
		var ae *trailclient.APIError
		if len(failed) != 1 || failed[0].ID != bad || !errors.As(failErr, &ae) || ae.Status != 403 || ae.Field != "tenant" {
			t.Fatalf("OnError: %d events, %v", len(failed), failErr)
		}
		if st := c.DeliveryStats(); st.Delivered != 99 || st.DeadLettered != 1 {
			t.Fatalf("%+v", st)
		}
		dead, err := os.ReadFile(filepath.Join(dir, "dead-letter.jsonl"))
		if err != nil || strings.Count(string(dead), "\n") != 1 || !strings.Contains(string(dead), bad.String()) {
			t.Fatalf("dead letter: %q %v", dead, err)
		}
		spoolCount(t, srv.base, r.admin, ids, 99)
	})
}

// spoolEvent is event i of a run; kb > 0 pads it to about kb KiB.
func spoolEvent(i, kb int) trail.Event {
	ev := trail.Event{Tenant: crashTenant, Action: "spool.deliver", Outcome: trail.OutcomeSuccess,
		Actor:  trail.Actor{Type: "user", ID: fmt.Sprintf("u%d", i%20)},
		Target: trail.Target{Type: "item", ID: strconv.Itoa(i)}}
	if kb > 0 {
		ev.Description = strings.Repeat("d", 4000)
		ev.Metadata = map[string]any{"blob": strings.Repeat("m", kb<<10-4000)}
	}
	return ev
}

func spoolClient(t *testing.T, base, key, dir string, mod func(*trailclient.Config)) *trailclient.Client {
	t.Helper()
	cfg := trailclient.Config{BaseURL: base, Key: key, Spool: dir, MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	c, err := trailclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // a failed test leaves no retrying goroutine behind
		c.Close(ctx)
	})
	return c
}

func flush(t *testing.T, c *trailclient.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), crashDeadline)
	defer cancel()
	if err := c.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v (%+v)", err, c.DeliveryStats())
	}
}

// waitClient polls the client's state; only a hang reaches the deadline.
func waitClient(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(crashDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// spoolCount reads the tenant's events back and counts, over the accepted
// IDs: acknowledged-missing, duplicated, and never-sent (asked for, not
// accepted). All must be 0.
func spoolCount(t *testing.T, base, admin string, accepted map[uuid.UUID]bool, asked int) {
	t.Helper()
	have := crashExport(t, base, admin)
	missing, duplicated := 0, 0
	for id := range accepted {
		switch n := len(have[id]); {
		case n == 0:
			missing++
		case n > 1:
			duplicated += n - 1
		}
	}
	neverSent := asked - len(accepted)
	t.Logf("%d accepted: acknowledged-missing %d, duplicated %d, never-sent %d", len(accepted), missing, duplicated, neverSent)
	if missing+duplicated+neverSent != 0 {
		t.Errorf("events lost or stored twice (counts above)")
	}
}

// producer is the child process.
type producer struct {
	cmd     *exec.Cmd
	lines   chan string
	errb    syncBuffer
	done    chan struct{}
	waitErr error
}

func startProducer(t *testing.T, mode, base, key, dir string) *producer {
	t.Helper()
	p := &producer{lines: make(chan string, 16), done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "-test.run=^TestSpoolProducerChild$", "-test.count=1")
	p.cmd.Env = append(os.Environ(), "TRAIL_SPOOL_CHILD="+mode, "TRAIL_SPOOL_URL="+base, "TRAIL_SPOOL_KEY="+key, "TRAIL_SPOOL_DIR="+dir)
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = &p.errb
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // nobody waits for more lines
			}
		}
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
		}
	})
	return p
}

func (p *producer) waitLine(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.After(crashDeadline)
	for {
		select {
		case l := <-p.lines:
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-p.done:
			t.Fatalf("producer exited (%v) before %q:\n%s", p.waitErr, prefix, p.errb.String())
		case <-deadline:
			t.Fatalf("producer did not say %q within %s:\n%s", prefix, crashDeadline, p.errb.String())
		}
	}
}

func (p *producer) wait() { <-p.done }

type drained struct {
	trailclient.DeliveryStats
	replayed   int64
	spoolBytes int64
}

// drainProducer runs the producer again on dir until its spool is empty
// and returns what it did.
func drainProducer(t *testing.T, base, key, dir string) drained {
	t.Helper()
	p := startProducer(t, "drain", base, key, dir)
	l := p.waitLine(t, "drained ")
	p.wait()
	if p.waitErr != nil {
		t.Fatalf("drain: %v\n%s", p.waitErr, p.errb.String())
	}
	var d struct {
		Stats      trailclient.DeliveryStats
		Replayed   int64
		SpoolBytes int64
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(l, "drained ")), &d); err != nil {
		t.Fatalf("drain said %q: %v", l, err)
	}
	if d.Stats.Spooled != 0 || d.Stats.DeadLettered != 0 {
		t.Fatalf("drain left %+v", d.Stats)
	}
	return drained{d.Stats, d.Replayed, d.SpoolBytes}
}

func readIDs(t *testing.T, path string) map[uuid.UUID]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[uuid.UUID]bool{}
	for l := range strings.Lines(string(b)) {
		id, err := uuid.Parse(strings.TrimSpace(l))
		if err != nil {
			t.Fatalf("ids file line %q: %v", l, err)
		}
		ids[id] = true
	}
	return ids
}

// TestSpoolProducerChild is the producer process of TestClientSpoolFaults
// (it does nothing unless TRAIL_SPOOL_CHILD is set):
//
//   - kill: 5,000 durable Enqueues, each ID appended to DIR/ids once
//     Enqueue returned; then "enqueued" on stdout, and it waits to be killed.
//   - exit: the same, then the process exits without Close.
//   - fill: with a 1 MiB spool, Enqueues until ErrSpoolFull, says "full"
//     and waits to be killed.
//   - drain: opens the spool, waits until it is empty, closes, and prints
//     "drained " and its stats as JSON.
func TestSpoolProducerChild(t *testing.T) {
	mode := os.Getenv("TRAIL_SPOOL_CHILD")
	if mode == "" {
		t.Skip("run by TestClientSpoolFaults as a child process")
	}
	base, key, dir := os.Getenv("TRAIL_SPOOL_URL"), os.Getenv("TRAIL_SPOOL_KEY"), os.Getenv("TRAIL_SPOOL_DIR")
	if _, err := url.Parse(base); err != nil || key == "" || dir == "" {
		t.Fatal("TRAIL_SPOOL_URL, TRAIL_SPOOL_KEY and TRAIL_SPOOL_DIR are required")
	}
	before := spoolSegmentBytes(dir)
	cfg := trailclient.Config{BaseURL: base, Key: key, Spool: filepath.Join(dir, "spool"),
		MinBackoff: time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	if mode == "fill" {
		cfg.SpoolBytes = 1 << 20
	}
	c, err := trailclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	switch mode {
	case "fill":
		f, err := os.OpenFile(filepath.Join(dir, "ids"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			id, err := c.Enqueue(context.Background(), spoolEvent(i, 0))
			if errors.Is(err, trailclient.ErrSpoolFull) {
				break
			}
			if err != nil {
				t.Fatalf("Enqueue %d: %v", i, err)
			}
			if _, err := f.WriteString(id.String() + "\n"); err != nil {
				t.Fatal(err)
			}
		}
		fmt.Println("full")
		select {} // until SIGKILL
	case "kill", "exit":
		f, err := os.OpenFile(filepath.Join(dir, "ids"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		for i := range spoolEvents {
			id, err := c.Enqueue(context.Background(), spoolEvent(i, 0))
			if err != nil {
				t.Fatalf("Enqueue %d: %v", i, err)
			}
			if _, err := f.WriteString(id.String() + "\n"); err != nil { // one write(2): survives the kill
				t.Fatal(err)
			}
		}
		if mode == "exit" {
			os.Exit(0) // as main returning without Close
		}
		fmt.Println("enqueued")
		select {} // until SIGKILL
	case "drain":
		replayed := c.DeliveryStats().Replayed
		ctx, cancel := context.WithTimeout(context.Background(), crashDeadline)
		defer cancel()
		if err := c.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(ctx); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(map[string]any{"Stats": c.DeliveryStats(), "Replayed": replayed, "SpoolBytes": before})
		fmt.Println("drained " + string(b))
	default:
		t.Fatalf("TRAIL_SPOOL_CHILD=%q", mode)
	}
}

// spoolSegmentBytes is the size of the spool's segment files in dir.
func spoolSegmentBytes(dir string) int64 {
	var n int64
	matches, _ := filepath.Glob(filepath.Join(dir, "spool", "*.seg"))
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil {
			n += fi.Size()
		}
	}
	return n
}

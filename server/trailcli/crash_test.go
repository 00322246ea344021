//go:build unix

package trailcli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailserver"
)

// The crash test's shape. Each kill cycle acknowledges at most
// crashMaxAcked batches plus the ones in flight, so crashBatches leaves
// the final, uninterrupted cycle work to do.
const (
	crashKills     = 5  // SIGKILLs per store
	crashWorkers   = 4  // concurrent ingest clients
	crashBatchSize = 50 // events per POST /v1/events
	crashBatches   = 120
	crashMaxAcked  = 15 // a cycle is killed after 1..crashMaxAcked acknowledged batches
	crashTenant    = "crash"
	crashDeadline  = 60 * time.Second // for any one thing to happen; only a hang reaches it
)

// TestCrashDuringIngest (issue 13, item 7) runs the real `trail` binary as
// `trail serve` on each store and SIGKILLs it, repeatedly, while concurrent
// clients POST batches of events with client-assigned IDs. A batch whose
// answer was lost (connection error) is sent again to the restarted server:
// it must come back as all duplicates (it was committed) or all created (it
// was not), never as a conflict or half of each. At the end every event is
// read back through GET /v1/export and counted: acknowledged but missing,
// stored twice, and never sent and acknowledged must all be 0. `trail
// seal` and `trail verify` then show the sealed log consistent after the
// kills (the server's sealer is killed with it).
//
// The kill points are random from a seed that is logged; TRAIL_CRASH_SEED
// replays one.
func TestCrashDuringIngest(t *testing.T) {
	t.Parallel()
	bin := buildTrail(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TRAIL_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("TRAIL_CRASH_SEED: %v", err)
		}
	}
	t.Logf("seed %d (replay with TRAIL_CRASH_SEED=%d)", seed, seed)

	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		db := filepath.Join(t.TempDir(), "trail.db")
		runCrash(t, bin, seed, []string{"--db", db})
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		dsn := freshPostgresDB(t) // serve always uses schema "trail": a database of its own
		runCrash(t, bin, seed+1, []string{"--postgres", dsn})
	})
}

// buildTrail builds cmd/trail (a module of the workspace) into a temporary
// directory and returns the binary's path.
func buildTrail(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "trail")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/trailhq/trail/cmd/trail")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/trail: %v\n%s", err, out)
	}
	return bin
}

// crashRig is one store's run: the binary, where it keeps its files, the
// store flags (--db FILE or --postgres DSN) and the child's environment.
type crashRig struct {
	t       *testing.T
	bin     string
	dir     string
	store   []string
	signing []string // --signing-key-file FILE
	env     []string
	admin   string // TRAIL_ADMIN_KEY: reads the export
}

// trail runs one command of the binary to completion.
func (r *crashRig) trail(args ...string) (code int, stdout, stderr string) {
	r.t.Helper()
	cmd := exec.Command(r.bin, args...)
	cmd.Dir, cmd.Env = r.dir, r.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errb.String()
	case err != nil:
		r.t.Fatalf("trail %s: %v", strings.Join(args, " "), err)
	}
	return 0, out.String(), errb.String()
}

func (r *crashRig) mustTrail(args ...string) string {
	r.t.Helper()
	code, out, errb := r.trail(args...)
	if code != 0 {
		r.t.Fatalf("trail %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errb)
	}
	return out
}

// withStore puts the store flags where the command takes them: --db is a
// global flag, --postgres one of the command's.
func (r *crashRig) withStore(cmd ...string) []string {
	if r.store[0] == "--db" {
		return append(append([]string{}, r.store...), cmd...)
	}
	return append(append([]string{}, cmd...), r.store...)
}

// crashServer is one `trail serve` child process.
type crashServer struct {
	cmd       *exec.Cmd
	out, errb syncBuffer
	base      string
	done      chan struct{}
	waitErr   error
}

// serve starts `trail serve` on a free port and waits until it prints its
// address (it listens before it prints).
func (r *crashRig) serve() *crashServer {
	r.t.Helper()
	return r.serveAt("127.0.0.1:0", "--seal-interval", "20ms", "--checkpoint-interval", "100ms")
}

// serveAt is serve on addr (a restarted server keeps its address) with
// extra flags.
func (r *crashRig) serveAt(addr string, extra ...string) *crashServer {
	r.t.Helper()
	s := &crashServer{done: make(chan struct{})}
	args := append([]string{"serve", "--addr", addr, "--rate-limit", "0"}, extra...)
	s.cmd = exec.Command(r.bin, r.withStore(append(args, r.signing...)...)...)
	s.cmd.Dir, s.cmd.Env = r.dir, r.env
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.errb
	if err := s.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	go func() { s.waitErr = s.cmd.Wait(); close(s.done) }()
	r.t.Cleanup(func() { // a test that failed half-way leaves no server behind
		select {
		case <-s.done:
		default:
			s.cmd.Process.Signal(syscall.SIGKILL)
			<-s.done
		}
	})
	deadline := time.After(crashDeadline)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if m := listenRE.FindStringSubmatch(s.out.String()); m != nil {
			s.base = m[1]
			return s
		}
		select {
		case <-s.done:
			r.t.Fatalf("serve exited (%v) before listening:\n%s%s", s.waitErr, s.out.String(), s.errb.String())
		case <-deadline:
			r.t.Fatalf("serve did not listen within %s:\n%s%s", crashDeadline, s.out.String(), s.errb.String())
		case <-tick.C:
		}
	}
}

// stop sends sig and waits for the process to end.
func (s *crashServer) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
	select {
	case <-s.done:
	case <-time.After(crashDeadline):
		t.Fatalf("serve did not exit within %s of %v", crashDeadline, sig)
	}
	var ee *exec.ExitError
	switch {
	case sig == syscall.SIGKILL:
		if !errors.As(s.waitErr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("serve after SIGKILL: %v, want killed", s.waitErr)
		}
	case s.waitErr != nil || !strings.Contains(s.out.String(), "Stopped."):
		t.Fatalf("serve after %v: %v\n%s%s", sig, s.waitErr, s.out.String(), s.errb.String())
	}
}

// crashBatch is one request's worth of events and what became of it.
type crashBatch struct {
	n      int
	ids    []uuid.UUID
	body   []byte
	sends  int
	acked  bool
	failed bool // answered with a problem that is not worth a retry
}

// crashQueue hands out batches: re-sends first, then fresh ones.
type crashQueue struct {
	mu      sync.Mutex
	batches []*crashBatch
	next    int
	retry   []*crashBatch
}

func (q *crashQueue) take() *crashBatch {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n := len(q.retry); n > 0 {
		b := q.retry[0]
		q.retry = q.retry[1:]
		return b
	}
	if q.next == len(q.batches) {
		return nil
	}
	q.next++
	return q.batches[q.next-1]
}

func (q *crashQueue) again(b *crashBatch) {
	q.mu.Lock()
	q.retry = append(q.retry, b)
	q.mu.Unlock()
}

// crashCounts are what the run observed.
type crashCounts struct {
	sent, acked, unknown, failed5xx atomic.Int64 // requests
	retriedCreated, retriedDup      atomic.Int64 // re-sent batches, by their answer
	conflicts, mixed                atomic.Int64 // re-sends answered 409, or half created
}

func runCrash(t *testing.T, bin string, seed uint64, store []string) {
	start := time.Now()
	rng := mrand.New(mrand.NewPCG(seed, 0x7ea1))
	r, key := newCrashRig(t, bin, store, "crash-test")
	q, want := crashEvents(t)
	var c crashCounts
	for cycle := 0; cycle <= crashKills; cycle++ {
		final := cycle == crashKills
		srv := r.serve()
		acked := crashCycle(t, srv, q, &c, key, final, 1+rng.IntN(crashMaxAcked))
		if !final {
			continue
		}
		have := crashExport(t, srv.base, r.admin)
		srv.stop(t, syscall.SIGTERM)

		// Count.
		var ackedMissing, duplicated, neverSent, unacknowledged, phantom, altered int
		for _, b := range q.batches {
			for _, id := range b.ids {
				n := len(have[id])
				switch {
				case b.sends == 0:
					neverSent++
				case !b.acked:
					unacknowledged++
				case n == 0:
					ackedMissing++
				}
				if n > 1 {
					duplicated += n - 1
				}
				if n > 0 && (have[id][0].Target != want[id].Target || have[id][0].Action != want[id].Action) {
					altered++
				}
			}
		}
		for id, evs := range have {
			if _, ok := want[id]; !ok && evs[0].Action != "audit.read" {
				phantom++
			}
		}
		t.Logf("%d events in %d batches; %d kills, last cycle %d acknowledged batches; %d requests: %d acknowledged, %d outcome unknown (connection lost at a kill), %d answered 5xx",
			len(want), len(q.batches), crashKills, acked, c.sent.Load(), c.acked.Load(), c.unknown.Load(), c.failed5xx.Load())
		t.Logf("re-sent batches: %d found committed (all duplicate), %d found not committed (all created), %d conflict, %d half-stored",
			c.retriedDup.Load(), c.retriedCreated.Load(), c.conflicts.Load(), c.mixed.Load())
		t.Logf("acknowledged-missing %d, duplicated %d, never-sent %d, sent-unacknowledged %d, unknown IDs %d, altered %d",
			ackedMissing, duplicated, neverSent, unacknowledged, phantom, altered)
		if ackedMissing+duplicated+neverSent+unacknowledged+phantom+altered != 0 || c.conflicts.Load()+c.mixed.Load() != 0 {
			t.Errorf("the store lost, repeated or changed events across the kills (counts above)")
		}
		if c.unknown.Load() == 0 {
			// Four clients send back to back; no request in flight at any of
			// the kills means the test did not test what it claims.
			t.Errorf("no request was in flight at any kill")
		}
	}
	if t.Failed() {
		return
	}

	// The sealed log is consistent after the kills. The killed sealer's
	// lease runs out 15 s after its last renewal; until then `trail seal`
	// says another sealer holds it.
	sealArgs := r.withStore(append([]string{"seal"}, r.signing...)...)
	deadline := time.Now().Add(crashDeadline)
	for {
		code, out, errb := r.trail(sealArgs...)
		if code == 0 {
			t.Logf("trail seal: %s", strings.TrimSpace(out))
			break
		}
		if !strings.Contains(errb, "holds the lease") || time.Now().After(deadline) {
			t.Fatalf("trail seal: exit %d\n%s%s", code, out, errb)
		}
		time.Sleep(100 * time.Millisecond) // polls the lease's expiry
	}
	code, out, errb := r.trail(r.withStore(append([]string{"verify"}, r.signing...)...)...)
	m := regexp.MustCompile(`Verified (\d+) events`).FindStringSubmatch(out)
	if code != 0 || m == nil || !strings.Contains(out, "OK:") {
		t.Fatalf("trail verify: exit %d\n%s%s", code, out, errb)
	}
	if n, _ := strconv.Atoi(m[1]); n < len(want) {
		t.Fatalf("trail verify checked %d events, %d were ingested:\n%s", n, len(want), out)
	}
	t.Logf("trail verify: %s", strings.ReplaceAll(strings.TrimSpace(out), "\n", " "))
	t.Logf("%s in %s", t.Name(), time.Since(start).Round(100*time.Millisecond))
}

// newCrashRig makes a rig on store (--db FILE or --postgres DSN): a master
// and an admin key in the child's environment (the test's own TRAIL_*
// settings are not the child's), a signing key, the migrated schema and an
// ingest key of crashTenant named name, which it returns.
func newCrashRig(t *testing.T, bin string, store []string, name string) (*crashRig, string) {
	dir := t.TempDir()
	master, admin := make([]byte, 32), make([]byte, 32)
	rand.Read(master)
	rand.Read(admin)
	r := &crashRig{t: t, bin: bin, dir: dir, store: store,
		signing: []string{"--signing-key-file", filepath.Join(dir, "signing.key")},
		admin:   "trail_" + base64.RawURLEncoding.EncodeToString(admin)}
	for _, kv := range os.Environ() { // the test's own TRAIL_* settings are not the child's
		if !strings.HasPrefix(kv, "TRAIL_") {
			r.env = append(r.env, kv)
		}
	}
	r.env = append(r.env, "TRAIL_MASTER_KEY="+base64.StdEncoding.EncodeToString(master), "TRAIL_ADMIN_KEY="+r.admin)

	r.mustTrail(append([]string{"keys", "signing", "generate"}, r.signing...)...)
	r.mustTrail(r.withStore("migrate")...)
	var created struct{ Key string }
	out := r.mustTrail(r.withStore("keys", "create", "--tenant", crashTenant, "--role", "ingest", "--name", name, "--json")...)
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Key == "" {
		t.Fatalf("keys create --json: %q %v", out, err)
	}
	return r, created.Key
}

// crashEvents makes every batch of the run, each event with a UUIDv7 the
// client chose, and returns them queued, with the events by ID.
func crashEvents(t *testing.T) (*crashQueue, map[uuid.UUID]trail.Event) {
	q := &crashQueue{}
	want := make(map[uuid.UUID]trail.Event)
	at := time.Now().UTC().Truncate(time.Millisecond)
	for n := range crashBatches {
		b := &crashBatch{n: n}
		evs := make([]trail.Event, crashBatchSize)
		for i := range evs {
			id, err := uuid.NewV7()
			if err != nil {
				t.Fatal(err)
			}
			u := (n*crashBatchSize + i) % 20 // few actors: their data keys are made concurrently
			evs[i] = trail.Event{
				ID: id, OccurredAt: at, Tenant: crashTenant, Action: "crash.ingest", Outcome: trail.OutcomeSuccess,
				Actor:  trail.Actor{Type: "user", ID: fmt.Sprintf("u%d", u), Email: fmt.Sprintf("u%d@example.com", u)},
				Target: trail.Target{Type: "batch", ID: fmt.Sprintf("%d.%d", n, i)},
			}
			b.ids = append(b.ids, id)
			want[id] = evs[i]
		}
		body, err := json.Marshal(map[string]any{"events": evs})
		if err != nil {
			t.Fatal(err)
		}
		b.body = body
		q.batches = append(q.batches, b)
	}
	return q, want
}

// crashCycle runs the clients against srv. Unless final, it SIGKILLs srv
// once killAfter batches were acknowledged in this cycle, and batches whose
// answer was lost go back to the queue; the final cycle sends everything
// left and expects every answer. It returns the batches acknowledged.
func crashCycle(t *testing.T, srv *crashServer, q *crashQueue, c *crashCounts, key string, final bool, killAfter int) int64 {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: crashWorkers}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: crashDeadline}
	var killed atomic.Bool
	var acked atomic.Int64
	var wg sync.WaitGroup
	for range crashWorkers {
		wg.Go(func() {
			for !killed.Load() {
				b := q.take()
				if b == nil {
					return
				}
				switch crashSend(t, client, srv.base, key, b, c) {
				case sendAcked:
					acked.Add(1)
				case sendUnknown:
					q.again(b)
					if !killed.Load() {
						t.Errorf("batch %d: connection lost with no kill (server stderr:\n%s)", b.n, srv.errb.String())
					}
					return
				case sendRetry:
					q.again(b)
				}
			}
		})
	}
	workers := make(chan struct{})
	go func() { wg.Wait(); close(workers) }()
	if final {
		select {
		case <-workers:
		case <-time.After(crashDeadline):
			t.Fatalf("the final cycle did not finish within %s", crashDeadline)
		}
		return acked.Load()
	}
	deadline := time.After(crashDeadline)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for acked.Load() < int64(killAfter) {
		select {
		case <-workers:
			t.Fatalf("the clients stopped after %d acknowledged batches, before the kill", acked.Load())
		case <-deadline:
			t.Fatalf("%d of %d batches acknowledged within %s", acked.Load(), killAfter, crashDeadline)
		case <-tick.C:
		}
	}
	killed.Store(true)
	srv.stop(t, syscall.SIGKILL)
	<-workers // every request in flight has failed with the connection
	return acked.Load()
}

type sendOutcome int

const (
	sendAcked   sendOutcome = iota
	sendUnknown             // the connection failed: committed or not, the client cannot know
	sendRetry               // a 5xx: not stored, worth another try
	sendFailed              // any other answer: a test failure, already reported
)

// crashSend POSTs b once and checks the answer: a first send is all
// created; a re-send all duplicate (it had been committed) or all created.
func crashSend(t *testing.T, client *http.Client, base, key string, b *crashBatch, c *crashCounts) sendOutcome {
	resend := b.sends > 0
	b.sends++
	c.sent.Add(1)
	req, err := http.NewRequestWithContext(context.Background(), "POST", base+"/v1/events", bytes.NewReader(b.body))
	if err != nil {
		t.Error(err)
		return sendFailed
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		c.unknown.Add(1)
		return sendUnknown
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil { // the status came, the body did not: no acknowledgment
		c.unknown.Add(1)
		return sendUnknown
	}
	switch {
	case resp.StatusCode >= 500:
		c.failed5xx.Add(1)
		if b.sends > 10 {
			t.Errorf("batch %d: %d sends, the last answered %d %s", b.n, b.sends, resp.StatusCode, body)
			b.failed = true
			return sendFailed
		}
		return sendRetry
	case resp.StatusCode == http.StatusConflict:
		c.conflicts.Add(1)
		t.Errorf("batch %d (send %d): 409 %s", b.n, b.sends, body)
		b.failed = true
		return sendFailed
	case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated:
		t.Errorf("batch %d (send %d): %d %s", b.n, b.sends, resp.StatusCode, body)
		b.failed = true
		return sendFailed
	}
	var ir trailserver.IngestResponse
	if err := json.Unmarshal(body, &ir); err != nil || len(ir.Results) != len(b.ids) {
		t.Errorf("batch %d: %d answer %q (%v)", b.n, resp.StatusCode, body, err)
		b.failed = true
		return sendFailed
	}
	for i, res := range ir.Results {
		if res.ID != b.ids[i] {
			t.Errorf("batch %d: result %d is for %s, want %s", b.n, i, res.ID, b.ids[i])
			b.failed = true
			return sendFailed
		}
	}
	switch {
	case ir.Created == len(b.ids) && resend:
		c.retriedCreated.Add(1)
	case ir.Duplicates == len(b.ids) && resend:
		c.retriedDup.Add(1)
	case ir.Created == len(b.ids):
	default:
		c.mixed.Add(1)
		t.Errorf("batch %d (send %d): %d created and %d duplicates of %d", b.n, b.sends, ir.Created, ir.Duplicates, len(b.ids))
		b.failed = true
		return sendFailed
	}
	c.acked.Add(1)
	b.acked = true
	return sendAcked
}

// crashExport reads the tenant's events through GET /v1/export and returns
// them by ID (an ID read twice has two entries).
func crashExport(t *testing.T, base, admin string) map[uuid.UUID][]trail.Event {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v1/export?tenant="+crashTenant+"&format=jsonl", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("export: %d %s", resp.StatusCode, b)
	}
	have := make(map[uuid.UUID][]trail.Event)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev trail.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		have[ev.ID] = append(have[ev.ID], ev)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("export: %v", err)
	}
	return have
}

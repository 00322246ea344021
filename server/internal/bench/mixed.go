package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailpgx"
)

// MixedConfig sizes the mixed workload. Zero fields take the defaults.
type MixedConfig struct {
	// Writers is the number of concurrent ingest clients. Default 2.
	Writers int
	// Readers is the number of concurrent read clients. Default 4.
	Readers int
	// Batch is the events per POST /v1/events. Default 100.
	Batch int
	// Requests is the POSTs each writer sends in each of the ingest phases
	// (alone and mixed), spread over three rounds. Default 60.
	Requests int
	// Prefill is the events stored before the measure, so that the reads
	// have pages to read. Default 20 000.
	Prefill int
}

func (c MixedConfig) withDefaults() (MixedConfig, error) {
	for _, v := range []struct {
		n   *int
		def int
	}{{&c.Writers, 2}, {&c.Readers, 4}, {&c.Batch, 100}, {&c.Requests, 60}, {&c.Prefill, 20_000}} {
		if *v.n == 0 {
			*v.n = v.def
		}
	}
	switch {
	case c.Writers < 1 || c.Readers < 1 || c.Requests < 1 || c.Prefill < 1:
		return c, fmt.Errorf("bench: mixed: writers, readers, requests and prefill must be positive (%d, %d, %d, %d)", c.Writers, c.Readers, c.Requests, c.Prefill)
	case c.Batch < 1 || c.Batch > trailserver.MaxBatch:
		return c, fmt.Errorf("bench: mixed: the batch must be 1–%d events, not %d", trailserver.MaxBatch, c.Batch)
	}
	return c, nil
}

// mixedRounds is how many times the mixed workload goes through its three
// phases, so that machine noise hits them alike.
const mixedRounds = 3

// mixedReadLimit is the page size of the mixed workload's reads.
const mixedReadLimit = 50

// mixed measures reads and ingest at once against a real Trail server —
// trailserver over loopback HTTP, on the embedded SQLite store as `trail
// serve --db` opens it (synchronous FULL) and on PostgreSQL — and the same
// ingest and the same reads alone, in one run. Writers POST batches back to
// back; readers GET /v1/events?tenant=…&limit=50 back to back, each read
// writing its audit.read event as every read does. Each of three rounds runs
// the phases in a rotating order: ingest alone (each writer sends its share
// of Requests), mixed (the same ingest while the readers read until it
// ends), reads alone (each reader makes as many reads as it made in the
// mixed phase). Latencies are the client's, request by request.
func (r *run) mixed(ctx context.Context) error {
	cfg, err := r.cfg.Mixed.withDefaults()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "trail-bench-mixed-")
	if err != nil {
		return fmt.Errorf("bench: mixed: %w", err)
	}
	defer os.RemoveAll(dir)
	lite, err := trailsqlite.Open(ctx, filepath.Join(dir, "trail.db"), nil)
	if err != nil {
		return fmt.Errorf("bench: mixed: %w", err)
	}
	ks, err := trailserver.NewSQLKeyStore(ctx, lite.DB(), trailserver.DialectSQLite)
	if err == nil {
		err = r.mixedOn(ctx, cfg, "sqlite", lite, ks)
	}
	lite.Close()
	if err != nil {
		return err
	}

	// A pool of its own, large enough that no client waits for a connection.
	pcfg, err := pgxpool.ParseConfig(r.cfg.DSN)
	if err != nil {
		return fmt.Errorf("bench: mixed: %w", err)
	}
	pcfg.MaxConns = int32(2*(cfg.Writers+cfg.Readers) + 4)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("bench: mixed: %w", err)
	}
	defer pool.Close()
	schema := r.prefix + "_mixed"
	r.schemas = append(r.schemas, schema)
	pg, err := trailpgx.New(ctx, pool, &trailpgx.Config{Schema: schema})
	if err != nil {
		return fmt.Errorf("bench: mixed: %w", err)
	}
	if err := pg.Migrate(ctx); err != nil {
		return fmt.Errorf("bench: mixed: migrate %s: %w", schema, err)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	pks, err := trailserver.NewPostgresKeyStore(ctx, db, schema)
	if err != nil {
		return fmt.Errorf("bench: mixed: %w", err)
	}
	return r.mixedOn(ctx, cfg, "postgres", pg, pks)
}

// mixedLatencies are the latencies of one kind of request in one phase,
// over every round.
type mixedLatencies struct {
	lat     []time.Duration
	failed  int // answers other than 2xx, among lat
	elapsed time.Duration
}

func (m *mixedLatencies) add(o mixedLatencies) {
	m.lat = append(m.lat, o.lat...)
	m.failed += o.failed
	m.elapsed += o.elapsed
}

func (r *run) mixedOn(ctx context.Context, cfg MixedConfig, name string, st trail.Store, ks trailserver.KeyStore) error {
	r.logf("mixed %s: prefill %d events", name, cfg.Prefill)
	g := r.source()
	var tenants []string // as often as they have events
	for done := 0; done < cfg.Prefill; {
		evs := make([]trail.Event, min(1000, cfg.Prefill-done))
		for i := range evs {
			evs[i] = g.next()
			if (done+i)%10 == 0 {
				tenants = append(tenants, evs[i].Tenant)
			}
		}
		if _, err := st.Append(ctx, evs); err != nil {
			return fmt.Errorf("bench: mixed %s: prefill: %w", name, err)
		}
		done += len(evs)
	}
	// Request bodies, made once: events without IDs, which the server
	// assigns, so a body sent again stores new events.
	bodies := make([][]byte, 32)
	for i := range bodies {
		evs := make([]map[string]any, cfg.Batch)
		for j := range evs {
			ev := g.next()
			b, _ := json.Marshal(ev)
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				return err
			}
			delete(m, "id")
			delete(m, "recorded_at")
			evs[j] = m
		}
		b, err := json.Marshal(map[string]any{"events": evs})
		if err != nil {
			return err
		}
		bodies[i] = b
	}
	now := time.Now()
	_, ingestKey, err := trailserver.CreateKey(ctx, ks, trailserver.NewKeyRequest{All: true, Role: trailserver.RoleIngest, Name: "bench ingest"}, now)
	if err != nil {
		return fmt.Errorf("bench: mixed %s: %w", name, err)
	}
	_, readKey, err := trailserver.CreateKey(ctx, ks, trailserver.NewKeyRequest{All: true, Role: trailserver.RoleReader, Name: "bench reader"}, now)
	if err != nil {
		return fmt.Errorf("bench: mixed %s: %w", name, err)
	}
	srv, err := trailserver.New(trailserver.Config{Store: st, Keys: ks, RateLimit: -1})
	if err != nil {
		return fmt.Errorf("bench: mixed %s: %w", name, err)
	}
	ts := httptest.NewServer(srv)
	defer func() { srv.Close(); ts.Close() }()
	client := ts.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = cfg.Writers + cfg.Readers

	c := &mixedClient{ctx: ctx, client: client, base: ts.URL, ingestAuth: "Bearer " + ingestKey, readAuth: "Bearer " + readKey,
		bodies: bodies, tenants: tenants, seed: r.cfg.Seed}
	var ingestAlone, ingestMixed, readAlone, readMixed mixedLatencies
	r.logf("mixed %s: %d writers × %d batches of %d events per ingest phase, %d readers, %d rounds", name, cfg.Writers, cfg.Requests, cfg.Batch, cfg.Readers, mixedRounds)
	for round := range mixedRounds {
		n := cfg.Requests / mixedRounds
		if round < cfg.Requests%mixedRounds {
			n++
		}
		if n == 0 {
			continue
		}
		var reads []int // per reader, in this round's mixed phase
		phases := []func() error{
			func() error {
				in, _, err := c.phase(cfg.Writers, n, 0, nil)
				ingestAlone.add(in)
				return err
			},
			func() error {
				in, rd, err := c.phase(cfg.Writers, n, cfg.Readers, nil)
				ingestMixed.add(in)
				readMixed.add(rd.mixedLatencies)
				reads = rd.perReader
				return err
			},
			func() error {
				_, rd, err := c.phase(0, 0, cfg.Readers, reads)
				readAlone.add(rd.mixedLatencies)
				return err
			},
		}
		// Rotate the order of ingest alone and mixed; reads alone follows
		// mixed, whose read counts it repeats.
		order := []int{0, 1, 2}
		if round%2 == 1 {
			order = []int{1, 2, 0}
		}
		for _, p := range order {
			if err := phases[p](); err != nil {
				return fmt.Errorf("bench: mixed %s: %w", name, err)
			}
		}
	}
	audit := c.auditMetrics()

	result := func(kind string, workers int, l mixedLatencies, perOp int) Result {
		res := Result{Workload: "mixed", Name: name + " " + kind, Workers: workers, Ops: len(l.lat), Seconds: l.elapsed.Seconds(),
			PerSec: float64(len(l.lat)*perOp) / l.elapsed.Seconds(), Extra: map[string]any{}}
		if perOp > 1 {
			res.Events = len(l.lat) * perOp
		}
		res.latencies(l.lat)
		res.Extra["max_ms"] = float64(l.lat[len(l.lat)-1]) / float64(time.Millisecond)
		if l.failed > 0 {
			res.Extra["failed"] = l.failed
		}
		return res
	}
	compare := func(res *Result, base Result) {
		v := res.PerSec / base.PerSec
		res.Baseline, res.Ratio = base.Name, &v
		res.Extra["p50_ratio"] = res.P50Ms / base.P50Ms
		res.Extra["p99_ratio"] = res.P99Ms / base.P99Ms
	}
	ia := result("ingest alone", cfg.Writers, ingestAlone, cfg.Batch)
	ia.Note = "events/s; POST /v1/events over loopback"
	im := result("ingest mixed", cfg.Writers, ingestMixed, cfg.Batch)
	compare(&im, ia)
	im.Note = fmt.Sprintf("events/s while %d readers read; ratio = events/s vs ingest alone", cfg.Readers)
	ra := result("read alone", cfg.Readers, readAlone, 1)
	ra.Note = "reads/s; GET /v1/events?tenant=…&limit=50, each with its audit.read"
	rm := result("read mixed", cfg.Readers, readMixed, 1)
	compare(&rm, ra)
	rm.Note = fmt.Sprintf("reads/s while %d writers ingest; ratio = reads/s vs read alone", cfg.Writers)
	for k, v := range audit {
		rm.Extra[k] = v
	}
	for _, res := range []Result{ia, im, ra, rm} {
		r.emit(res)
	}
	return nil
}

// mixedClient sends the mixed workload's requests.
type mixedClient struct {
	ctx                  context.Context
	client               *http.Client
	base                 string
	ingestAuth, readAuth string
	bodies               [][]byte
	tenants              []string
	seed                 uint64
	seq                  atomic.Uint64 // picks bodies and seeds readers
}

// mixedReads are the reads of one phase and how many each reader made.
type mixedReads struct {
	mixedLatencies
	perReader []int
}

// phase runs writers that send n batches each and readers that read:
// until the writers are done when there are writers, else reads[i] times
// for reader i. It returns when all have finished.
func (c *mixedClient) phase(writers, n, readers int, reads []int) (mixedLatencies, mixedReads, error) {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		ingest   mixedLatencies
		rd       = mixedReads{perReader: make([]int, readers)}
		stop     atomic.Bool
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		stop.Store(true)
	}
	// send sends one request and records it in l; false after a transport
	// error.
	send := func(l *mixedLatencies, method, path, auth string, body []byte, want int) bool {
		d, ok, err := c.do(method, path, auth, body, want)
		if err != nil {
			fail(err)
			return false
		}
		l.lat = append(l.lat, d)
		if !ok {
			l.failed++
		}
		return true
	}
	var writersDone sync.WaitGroup
	start := time.Now()
	for range writers {
		writersDone.Add(1)
		wg.Go(func() {
			defer writersDone.Done()
			var l mixedLatencies
			for range n {
				if stop.Load() {
					break
				}
				body := c.bodies[c.seq.Add(1)%uint64(len(c.bodies))]
				if !send(&l, http.MethodPost, "/v1/events", c.ingestAuth, body, http.StatusCreated) {
					return
				}
			}
			mu.Lock()
			ingest.add(l)
			mu.Unlock()
		})
	}
	for i := range readers {
		wg.Go(func() {
			pr := rand.New(rand.NewPCG(c.seed, c.seq.Add(1)))
			var l mixedLatencies
			for k := 0; ; k++ {
				if writers > 0 && k > 0 && stop.Load() || writers == 0 && (k >= max(1, reads[i]) || stop.Load()) {
					break
				}
				path := "/v1/events?limit=" + strconv.Itoa(mixedReadLimit) + "&tenant=" + url.QueryEscape(c.tenants[pr.IntN(len(c.tenants))])
				if !send(&l, http.MethodGet, path, c.readAuth, nil, http.StatusOK) {
					return
				}
			}
			mu.Lock()
			rd.add(l)
			rd.perReader[i] = len(l.lat)
			mu.Unlock()
		})
	}
	if writers > 0 {
		writersDone.Wait()
		ingest.elapsed = time.Since(start)
		stop.Store(true)
	}
	wg.Wait()
	rd.elapsed = time.Since(start)
	if writers > 0 {
		// The readers' time is the ingest's: they read while it ran.
		rd.elapsed = ingest.elapsed
	}
	return ingest, rd, firstErr
}

// do sends one request and times it to the end of the answer's body. An
// answer other than want is counted (ok false), not fatal: under load a
// read may be refused because its audit.read could not be written, and
// that is part of the measure. A transport error is fatal.
func (c *mixedClient) do(method, path, auth string, body []byte, want int) (d time.Duration, ok bool, err error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(c.ctx, method, c.base+path, rd)
	if err != nil {
		return 0, false, err
	}
	req.Header.Set("Authorization", auth)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	t0 := time.Now()
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, false, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d = time.Since(t0)
	if err != nil {
		return d, false, err
	}
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusServiceUnavailable {
		return d, false, fmt.Errorf("%s %s: %d %.300s", method, path, resp.StatusCode, b)
	}
	return d, resp.StatusCode == want, nil
}

// auditMetrics reads the server's audit.read counters from /metrics: the
// events and, where the server groups them, the appends they took.
func (c *mixedClient) auditMetrics() map[string]any {
	out := map[string]any{}
	resp, err := c.client.Get(c.base + "/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var reads, groups float64
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			continue
		}
		switch name {
		case "trail_audit_reads_total":
			reads = f
			out["audit_reads"] = f
		case `trail_audit_read_groups_total{result="committed"}`:
			groups = f
			out["audit_appends"] = f
		}
	}
	if groups > 0 {
		out["audit_group_mean"] = reads / groups
	}
	return out
}

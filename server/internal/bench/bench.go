package bench

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailhq/trail/trailpgx"
)

// Workloads, in the order Run measures them.
var Workloads = []string{"w1", "w2", "w3", "storage", "ui", "seal", "mixed"}

// Config says what to measure. Zero fields take the documented defaults.
type Config struct {
	// DSN is the PostgreSQL server to measure (required). The role needs
	// CREATE on the database: every workload makes schemas of its own and
	// drops them at the end.
	DSN string
	// Workloads to run, from Workloads. Default: all but seal and mixed (a
	// minute or more each of their own, on SQLite and on PostgreSQL).
	Workloads []string
	// Events is the size of W2's ingest, and so of the table W3 queries and
	// storage measures. Default 1 000 000.
	Events int
	// Transactions is W1's number of transactions per variant and worker
	// count. Default 2 000.
	Transactions int
	// Workers are W1's concurrency levels. Default 1 and 8.
	Workers []int
	// Queries is W3's number of timed queries per question. Default 300.
	Queries int
	// BatchSize is W2's batch size. Default 5 000.
	BatchSize int
	// Seed makes the generated data reproducible. Default 1.
	Seed uint64
	// Dataset is what every workload ingests and queries: DatasetSynthetic
	// (default) or DatasetSaaS, shaped like a real SaaS's audit log
	// (gen_saas.go).
	Dataset string
	// Tenants and Users size the saas dataset. Default 2 000 and 50 000;
	// Users is at least Tenants.
	Tenants, Users int
	// Load says how the table of W3, ui and storage is filled when W2 is
	// not run: LoadTrail (Store.Append, W2's path) or LoadSQL (COPY of the
	// same generated rows without indexes, then the indexes: minutes for
	// 10 M events instead of hours). Default LoadTrail.
	Load string
	// Keep leaves the loaded store's schema in place (its name is logged)
	// to query it again by hand. Every other schema is dropped.
	Keep bool
	// Schema, when set, reuses a schema an earlier run kept instead of
	// loading one (W3, storage and ui only): it is migrated to the current
	// version and left in place; the questions' parameters are sampled from
	// its rows.
	Schema string
	// SealDuration is how long the seal workload ingests, per store.
	// Default 30s; at least 1s.
	SealDuration time.Duration
	// SealWriters is the seal workload's number of concurrent writers.
	// Default 4.
	SealWriters int
	// SealBatch is the events per Append of each seal workload writer.
	// Default 100.
	SealBatch int
	// Mixed sizes the mixed workload (mixed.go).
	Mixed MixedConfig
	// Log receives progress lines. Default: discarded.
	Log io.Writer
	// Emit receives each result as soon as it is measured. Optional.
	Emit func(Result)
}

func (c Config) withDefaults() (Config, error) {
	if c.DSN == "" {
		return c, errors.New("bench: a PostgreSQL DSN is required (--postgres or TRAIL_POSTGRES)")
	}
	if len(c.Workloads) == 0 {
		c.Workloads = slices.DeleteFunc(slices.Clone(Workloads), func(w string) bool { return w == "seal" || w == "mixed" })
	}
	for _, w := range c.Workloads {
		if !slices.Contains(Workloads, w) {
			return c, fmt.Errorf("bench: unknown workload %q (want %s)", w, strings.Join(Workloads, ", "))
		}
	}
	if c.Events == 0 {
		c.Events = 1_000_000
	}
	if c.Transactions == 0 {
		c.Transactions = 2000
	}
	if len(c.Workers) == 0 {
		c.Workers = []int{1, 8}
	}
	if c.Queries == 0 {
		c.Queries = 300
	}
	if c.BatchSize == 0 {
		c.BatchSize = 5000
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.SealDuration == 0 {
		c.SealDuration = 30 * time.Second
	}
	switch c.Dataset {
	case "":
		c.Dataset = DatasetSynthetic
	case DatasetSynthetic, DatasetSaaS:
	default:
		return c, fmt.Errorf("bench: unknown dataset %q (want %s or %s)", c.Dataset, DatasetSynthetic, DatasetSaaS)
	}
	if c.Dataset == DatasetSaaS {
		if c.Tenants == 0 {
			c.Tenants = defaultSaaSTenants
		}
		if c.Users == 0 {
			c.Users = max(defaultSaaSUsers, c.Tenants)
		}
		if c.Tenants < 1 || c.Users < c.Tenants {
			return c, fmt.Errorf("bench: the saas dataset needs at least one tenant and a user per tenant, not %d tenants and %d users", c.Tenants, c.Users)
		}
	} else if c.Tenants != 0 || c.Users != 0 {
		return c, errors.New("bench: tenants and users size the saas dataset only")
	}
	if c.SealWriters == 0 {
		c.SealWriters = 4
	}
	if c.SealBatch == 0 {
		c.SealBatch = 100
	}
	if c.SealDuration < time.Second {
		return c, fmt.Errorf("bench: the seal duration must be at least 1s, not %s", c.SealDuration)
	}
	if c.Schema != "" && slices.Contains(c.Workloads, "w2") {
		return c, errors.New("bench: a reused schema replaces W2's ingest; run w2 apart")
	}
	switch c.Load {
	case "":
		c.Load = LoadTrail
	case LoadTrail:
	case LoadSQL:
		if slices.Contains(c.Workloads, "w2") {
			return c, errors.New("bench: the sql load replaces W2's ingest; run w2 apart")
		}
	default:
		return c, fmt.Errorf("bench: unknown load %q (want %s or %s)", c.Load, LoadTrail, LoadSQL)
	}
	for _, v := range []struct {
		name string
		n    int
	}{{"events", c.Events}, {"transactions", c.Transactions}, {"queries", c.Queries}, {"batch size", c.BatchSize},
		{"seal writers", c.SealWriters}, {"seal batch", c.SealBatch}} {
		if v.n < 1 {
			return c, fmt.Errorf("bench: %s must be positive, not %d", v.name, v.n)
		}
	}
	for _, w := range c.Workers {
		if w < 1 || w > 256 {
			return c, fmt.Errorf("bench: workers must be 1–256, not %d", w)
		}
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return c, nil
}

// Result is one measured line. Which fields are set depends on Workload:
//   - "machine": Extra describes the machine and the server.
//   - "w1": Name is the variant (unaudited, begintx, recordtx, queue,
//     trigger), Workers, Ops (transactions), latencies, and PerSec = Workers ×
//     Ops ÷ the sum of the variant's latencies (the variants run mixed in
//     every worker); the others carry Ratio = PerSec / the unaudited PerSec
//     at the same Workers, against Target 0.95.
//   - "w2": Name "trail" or "raw_copy", Events, PerSec (events/s); "trail"
//     carries Ratio = its PerSec / raw_copy's PerSec, against Target 0.8.
//   - "w3": Name is the question, Events is the table size, Ops the timed
//     queries, latencies; the first three questions carry TargetP95Ms 5.
//     Names ending _vs_seed_warm / _vs_seed_cold (w3seed.go) carry the
//     seed table's percentiles in Extra and Ratio = Trail p95 / seed p95,
//     against Target 1 (lower is better).
//   - "ui": Name is the admin UI page, Events the table size, Ops the timed
//     requests, latencies of the server handler.
//   - "storage": Events, BytesPerEvent (all relations), Extra per relation;
//     Ratio = BytesPerEvent / the seed model's 348 B (lower is better).
//   - "mixed": Name is the store (sqlite, postgres) and "ingest alone",
//     "ingest mixed", "read alone" or "read mixed"; Workers the clients,
//     Ops the requests, PerSec events/s (ingest) or reads/s, latencies per
//     request; the mixed lines carry Ratio = PerSec / the alone line's and
//     Extra p50_ratio and p99_ratio; Extra max_ms, failed (503 answers),
//     and on "read mixed" the server's audit_reads, audit_appends and
//     audit_group_mean.
//   - "seal": Name is the store (sqlite, postgres), Workers the writers,
//     Events the events ingested, PerSec their rate, Ops the lag samples and
//     P50/P95/P99 the sampled sealing lag; Ratio = events sealed / events
//     ingested in the same run; MeetsTarget = the largest lag sample under
//     2 s. Extra: max and last lag, lag growth (s per s), sealed per second,
//     drain time, the ingest rate alone and the run's over it. "<store>
//     ingest alone" is the same writers with no sealer: Events, PerSec.
type Result struct {
	Workload      string         `json:"workload"`
	Name          string         `json:"name"`
	Workers       int            `json:"workers,omitempty"`
	Events        int            `json:"events,omitempty"`
	Ops           int            `json:"ops,omitempty"`
	Seconds       float64        `json:"seconds,omitempty"`
	PerSec        float64        `json:"per_sec,omitempty"`
	P50Ms         float64        `json:"p50_ms,omitempty"`
	P95Ms         float64        `json:"p95_ms,omitempty"`
	P99Ms         float64        `json:"p99_ms,omitempty"`
	Baseline      string         `json:"baseline,omitempty"`
	Ratio         *float64       `json:"ratio,omitempty"`
	Target        *float64       `json:"target,omitempty"`
	TargetP95Ms   *float64       `json:"target_p95_ms,omitempty"`
	MeetsTarget   *bool          `json:"meets_target,omitempty"`
	BytesPerEvent float64        `json:"bytes_per_event,omitempty"`
	Load1         float64        `json:"load1,omitempty"`
	Note          string         `json:"note,omitempty"`
	Extra         map[string]any `json:"extra,omitempty"`
}

// SeedModelBytesPerEvent is the storage per event the seed design's model
// takes at 1 M rows; the storage result compares with it.
const SeedModelBytesPerEvent = 348

// ratio sets r's Ratio to r.PerSec/base, against target (higher is better).
func (r *Result) ratio(baseName string, base, target float64) {
	v := r.PerSec / base
	meets := v >= target
	r.Baseline, r.Ratio, r.Target, r.MeetsTarget = baseName, &v, &target, &meets
}

// run is the state one Run shares across workloads.
type run struct {
	cfg     Config
	pool    *pgxpool.Pool
	prefix  string // schema name prefix, unique to this run
	results []Result
	schemas []string // to drop at the end
	w1Seq   int      // W1 transactions numbered so far
	// Filled by W2 (or by a plain load when W2 is not run) for W3 and storage.
	store   *trailpgx.Store
	samples []sample
	end     time.Time
}

// Run measures cfg's workloads against the server and returns every result,
// the first being the machine's description. It drops every schema it
// created, also on failure.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	pcfg, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("bench: bad PostgreSQL DSN: %w", err)
	}
	maxW := cfg.SealWriters
	for _, w := range cfg.Workers {
		maxW = max(maxW, w)
	}
	pcfg.MaxConns = int32(maxW + 4)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return nil, fmt.Errorf("bench: cannot connect to PostgreSQL: %w", err)
	}
	var b [4]byte
	crand.Read(b[:])
	r := &run{cfg: cfg, pool: pool, prefix: "trail_bench_" + hex.EncodeToString(b[:]), end: time.Now().UTC()}
	defer r.dropAll()
	if err := r.machine(ctx); err != nil {
		return r.results, err
	}
	has := func(w string) bool { return slices.Contains(cfg.Workloads, w) }
	if has("w1") {
		if err := r.w1(ctx); err != nil {
			return r.results, err
		}
	}
	if has("w2") {
		if err := r.w2(ctx); err != nil {
			return r.results, err
		}
	} else if has("w3") || has("ui") || has("storage") {
		load := r.load
		if cfg.Load == LoadSQL {
			load = r.loadSQL
		}
		if cfg.Schema != "" {
			load = r.reuse
		}
		if err := load(ctx); err != nil {
			return r.results, err
		}
	}
	if (has("w3") || has("ui") || has("storage")) && cfg.Schema == "" {
		r.logf("vacuum analyze (%d events)", cfg.Events)
		if _, err := pool.Exec(ctx, "VACUUM (ANALYZE) "+r.store.Schema()+".events, "+r.store.Schema()+".seal_pending"); err != nil {
			return r.results, fmt.Errorf("bench: vacuum: %w", err)
		}
	}
	if has("w3") {
		if err := r.w3(ctx); err != nil {
			return r.results, err
		}
	}
	if has("storage") {
		if err := r.storage(ctx); err != nil {
			return r.results, err
		}
	}
	// Last: every page it renders writes an audit.read event.
	if has("ui") {
		if err := r.ui(ctx); err != nil {
			return r.results, err
		}
	}
	if has("seal") {
		if err := r.seal(ctx); err != nil {
			return r.results, err
		}
	}
	if has("mixed") {
		if err := r.mixed(ctx); err != nil {
			return r.results, err
		}
	}
	return r.results, nil
}

func (r *run) emit(res Result) {
	if res.Load1 == 0 && res.Workload != "machine" {
		res.Load1 = load1()
	}
	r.results = append(r.results, res)
	if r.cfg.Emit != nil {
		r.cfg.Emit(res)
	}
}

func (r *run) logf(format string, args ...any) {
	fmt.Fprintf(r.cfg.Log, "bench: %s %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// newStore makes a migrated Trail store in a fresh schema of this run.
func (r *run) newStore(ctx context.Context, suffix string) (*trailpgx.Store, error) {
	name := r.prefix + "_" + suffix
	r.schemas = append(r.schemas, name)
	s, err := trailpgx.New(ctx, r.pool, &trailpgx.Config{Schema: name})
	if err != nil {
		return nil, err
	}
	if err := s.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("bench: migrate %s: %w", name, err)
	}
	var applied string
	if err := r.pool.QueryRow(ctx, "SELECT string_agg(version || ' ' || name, ', ' ORDER BY version) FROM "+pgx.Identifier{name}.Sanitize()+".trail_migrations").Scan(&applied); err == nil {
		r.logf("%s: migrations %s", name, applied)
	}
	return s, nil
}

func (r *run) dropAll() {
	ctx := context.Background()
	for _, s := range slices.Backward(r.schemas) {
		if r.cfg.Keep && r.store != nil && s == r.store.Schema() {
			r.logf("kept schema %s", s)
			continue
		}
		if _, err := r.pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{s}.Sanitize()+" CASCADE"); err != nil {
			r.logf("drop schema %s: %v", s, err)
		}
	}
	r.schemas = nil
}

// machine emits the description of the machine and the server.
func (r *run) machine(ctx context.Context) error {
	var version, sb, fsync, syncCommit string
	err := r.pool.QueryRow(ctx, "SELECT current_setting('server_version'), current_setting('shared_buffers'), current_setting('fsync'), current_setting('synchronous_commit')").
		Scan(&version, &sb, &fsync, &syncCommit)
	if err != nil {
		return fmt.Errorf("bench: server settings: %w", err)
	}
	hostname, _ := os.Hostname()
	r.emit(Result{Workload: "machine", Name: hostname, Load1: load1(), Extra: map[string]any{
		"nproc": runtime.NumCPU(), "mem_total_bytes": memTotal(), "go": runtime.Version(), "os": runtime.GOOS + "/" + runtime.GOARCH,
		"postgres": version, "shared_buffers": sb, "fsync": fsync, "synchronous_commit": syncCommit,
		"events": r.cfg.Events, "transactions": r.cfg.Transactions, "workers": r.cfg.Workers, "queries": r.cfg.Queries, "load": r.cfg.Load,
		"dataset": r.cfg.Dataset, "tenants": r.cfg.Tenants, "users": r.cfg.Users,
		"started": time.Now().UTC().Format(time.RFC3339), "schema_prefix": r.prefix,
	}})
	return nil
}

// load1 is the machine's one-minute load average (0 where unknown).
func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				v, _ := strconv.ParseInt(f[0], 10, 64)
				return v * 1024
			}
		}
	}
	return 0
}

// percentile returns the p-th percentile (0–100) of sorted durations, in
// milliseconds, by the nearest-rank method.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	k := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	k = min(max(k, 0), len(sorted)-1)
	return float64(sorted[k]) / float64(time.Millisecond)
}

// latencies fills r's percentiles from ds (which it sorts).
func (res *Result) latencies(ds []time.Duration) {
	slices.Sort(ds)
	res.P50Ms, res.P95Ms, res.P99Ms = percentile(ds, 50), percentile(ds, 95), percentile(ds, 99)
}

package trailcli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/trailhq/trail/server/internal/bench"
	"github.com/trailhq/trail/server/trailserver"
)

// BenchCmd is `trail bench`: the PostgreSQL workloads of issue 3, each
// measured side by side with its limit in one run (package bench says how).
type BenchCmd struct {
	Postgres     string   `name:"postgres" env:"TRAIL_POSTGRES" placeholder:"DSN" required:"" help:"The PostgreSQL server to measure; the bench creates schemas of its own and drops them."`
	Workload     []string `name:"workload" sep:"," default:"w1,w2,w3,storage" help:"Workloads to run: w1 (audited write), w2 (bulk ingest), w3 (queries), storage, ui (admin UI pages), mixed (reads and ingest at once through the server, on SQLite and PostgreSQL), seal (seal lag under sustained ingest, on SQLite and PostgreSQL)."`
	Events       int      `name:"events" default:"1000000" help:"Events W2 ingests (and so the table size W3 and storage measure)."`
	Transactions int      `name:"transactions" default:"2000" help:"W1 transactions per variant and worker count."`
	Workers      []int    `name:"workers" sep:"," default:"1,8" help:"W1 worker counts."`
	Queries      int      `name:"queries" default:"300" help:"W3 timed queries per question."`
	Dataset      string   `name:"dataset" enum:"synthetic,saas" default:"synthetic" help:"What every workload ingests and queries: synthetic (10,000 tenants of 10 users, 40 actions drawn evenly, random-word descriptions) or saas (shaped like a real SaaS's log: Zipf-sized tenants, users in proportion, a weighted mix of about thirty actions with sentences, diffs, metadata and failures; deterministic by seed)."`
	Tenants      int      `name:"tenants" help:"saas dataset: number of tenants (default 2000)."`
	Users        int      `name:"users" help:"saas dataset: number of users, spread over the tenants in proportion to their size (default 50000, at least --tenants)."`
	Load         string   `name:"load" enum:"trail,sql" default:"trail" help:"How W3, storage and ui fill their table when w2 is not run: trail (Store.Append) or sql (COPY without indexes, then the indexes; for 10 M events)."`
	Keep         bool     `name:"keep" help:"Keep the loaded schema (its name is printed on stderr) to query it again."`
	Schema       string   `name:"schema" placeholder:"NAME" help:"Reuse a schema kept by --keep (w3, storage, ui): no load; it is migrated and left in place."`
	JSON         bool     `name:"json" help:"Print one JSON object per result line (JSON Lines) instead of a table."`

	// The mixed workload's size.
	MixedWriters  int `name:"mixed-writers" default:"2" help:"Mixed: concurrent ingest clients."`
	MixedReaders  int `name:"mixed-readers" default:"4" help:"Mixed: concurrent read clients."`
	MixedBatch    int `name:"mixed-batch" default:"100" help:"Mixed: events per POST /v1/events."`
	MixedRequests int `name:"mixed-requests" default:"60" help:"Mixed: POSTs per writer in each ingest phase (alone, mixed)."`
}

// Run runs the workloads, printing each result as it is measured and
// progress on stderr.
func (c *BenchCmd) Run(e *Env) error {
	for _, w := range c.Workload {
		if !strings.Contains(","+strings.Join(bench.Workloads, ",")+",", ","+w+",") {
			return Usagef("--workload: unknown workload %q (want %s)", w, strings.Join(bench.Workloads, ", "))
		}
	}
	if c.Events < 1 || c.Transactions < 1 || c.Queries < 1 {
		return Usagef("--events, --transactions and --queries must be positive")
	}
	if c.MixedWriters < 1 || c.MixedReaders < 1 || c.MixedRequests < 1 || c.MixedBatch < 1 || c.MixedBatch > trailserver.MaxBatch {
		return Usagef("--mixed-writers, --mixed-readers and --mixed-requests must be positive, --mixed-batch 1–%d", trailserver.MaxBatch)
	}
	if c.Dataset != bench.DatasetSaaS && (c.Tenants != 0 || c.Users != 0) {
		return Usagef("--tenants and --users size --dataset saas only")
	}
	if c.Tenants < 0 || c.Users < 0 || (c.Users > 0 && c.Users < max(c.Tenants, 1)) {
		return Usagef("--tenants and --users must be positive, with at least one user per tenant")
	}
	if c.Load == bench.LoadSQL {
		for _, w := range c.Workload {
			if w == "w2" {
				return Usagef("--load sql replaces W2's ingest: drop w2 from --workload")
			}
		}
	}
	var encErr error
	enc := json.NewEncoder(e.Stdout)
	_, err := bench.Run(e.Ctx, bench.Config{
		DSN: c.Postgres, Workloads: c.Workload, Events: c.Events, Transactions: c.Transactions,
		Workers: c.Workers, Queries: c.Queries, Load: c.Load, Dataset: c.Dataset, Tenants: c.Tenants, Users: c.Users, Keep: c.Keep, Schema: c.Schema, Log: e.Stderr,
		Mixed: bench.MixedConfig{Writers: c.MixedWriters, Readers: c.MixedReaders, Batch: c.MixedBatch, Requests: c.MixedRequests},
		Emit: func(r bench.Result) {
			if c.JSON {
				if err := enc.Encode(r); err != nil && encErr == nil {
					encErr = err
				}
				return
			}
			fmt.Fprintln(e.Stdout, benchLine(r))
		},
	})
	if err != nil {
		return err
	}
	return encErr
}

// benchLine is one result for people.
func benchLine(r bench.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-8s %-30s", r.Workload, r.Name)
	if r.Workers > 0 {
		fmt.Fprintf(&b, " workers=%d", r.Workers)
	}
	if r.Events > 0 {
		fmt.Fprintf(&b, " events=%d", r.Events)
	}
	if r.PerSec > 0 {
		fmt.Fprintf(&b, " %.1f/s", r.PerSec)
	}
	if r.P50Ms > 0 || r.P95Ms > 0 {
		fmt.Fprintf(&b, " p50=%.2fms p95=%.2fms p99=%.2fms", r.P50Ms, r.P95Ms, r.P99Ms)
	}
	if r.BytesPerEvent > 0 {
		fmt.Fprintf(&b, " %.0f B/event", r.BytesPerEvent)
	}
	if r.Ratio != nil {
		fmt.Fprintf(&b, " ratio=%.3f", *r.Ratio)
		if r.Baseline != "" {
			fmt.Fprintf(&b, " (vs %s)", r.Baseline)
		}
	}
	if v, ok := r.Extra["p99_ratio"].(float64); ok {
		fmt.Fprintf(&b, " p99_ratio=%.2f", v)
	}
	if v, ok := r.Extra["max_ms"].(float64); ok {
		fmt.Fprintf(&b, " max=%.0fms", v)
	}
	if v, ok := r.Extra["failed"].(int); ok {
		fmt.Fprintf(&b, " failed=%d", v)
	}
	if v, ok := r.Extra["audit_group_mean"].(float64); ok {
		fmt.Fprintf(&b, " audit_group_mean=%.1f", v)
	}
	if r.MeetsTarget != nil {
		if *r.MeetsTarget {
			b.WriteString(" target met")
		} else {
			b.WriteString(" TARGET MISSED")
		}
	}
	if r.Load1 > 0 {
		fmt.Fprintf(&b, " load=%.1f", r.Load1)
	}
	if r.Note != "" {
		b.WriteString(" — " + r.Note)
	}
	if r.Workload == "machine" {
		ks := []string{"nproc", "mem_total_bytes", "postgres", "shared_buffers", "fsync", "synchronous_commit", "go"}
		for _, k := range ks {
			fmt.Fprintf(&b, " %s=%v", k, r.Extra[k])
		}
	}
	return b.String()
}

package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailpgx"
)

// W1 target: an audited transaction keeps this share of the unaudited
// throughput.
const w1Target = 0.95

// rowsPerWorker: each W1 worker updates rows of its own, so that the
// variants measure the audit's cost, not row-lock waits.
const rowsPerWorker = 500

// enableCapture installs trigger capture on table (schema-qualified) for
// store, with tenant as its tenant column. It is nil where trailpgx has no
// trigger capture; W1 then reports the variant as not measured.
var enableCapture func(ctx context.Context, pool *pgxpool.Pool, store *trailpgx.Store, table, tenantColumn string) error

// w1Plan is the plan transaction i sets: a new value each time, so that
// every update is a change (trigger capture records nothing for an UPDATE
// that changes nothing but ignored columns).
func w1Plan(i int) string { return "plan-" + strconv.Itoa(i) }

type w1Variant struct {
	name string
	// tx runs transaction i of worker w on row id of tenant.
	tx func(ctx context.Context, id int64, tenant string, i int) error
}

func (r *run) w1(ctx context.Context) error {
	r.logf("w1: setting up")
	store, err := r.newStore(ctx, "w1")
	if err != nil {
		return err
	}
	app := r.prefix + "_app"
	r.schemas = append(r.schemas, app)
	maxW := 1
	for _, w := range r.cfg.Workers {
		maxW = max(maxW, w)
	}
	rows := maxW * rowsPerWorker
	for _, q := range []string{
		"CREATE SCHEMA " + app,
		"CREATE TABLE " + app + ".subscriptions (id bigint PRIMARY KEY, tenant text NOT NULL, plan text NOT NULL, seats int NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())",
		"CREATE TABLE " + app + ".subscriptions_captured (LIKE " + app + ".subscriptions INCLUDING ALL)",
		fmt.Sprintf("INSERT INTO %s.subscriptions SELECT g, 't' || lpad(g::text, 5, '0'), 'free', 5 FROM generate_series(1, %d) g", app, rows),
		"INSERT INTO " + app + ".subscriptions_captured SELECT * FROM " + app + ".subscriptions",
		"ANALYZE " + app + ".subscriptions, " + app + ".subscriptions_captured",
	} {
		if _, err := r.pool.Exec(ctx, q); err != nil {
			return fmt.Errorf("bench: w1 setup: %w", err)
		}
	}
	// As before the privacy layer existed: personal fields as given (the
	// bench measures the audit insert), secrets redacted by default.
	client, err := trail.NewClient[pgx.Tx](store, &trail.Config{Source: "bench", Plaintext: true})
	if err != nil {
		return err
	}
	base := trail.WithActor(ctx, trail.Actor{Type: trail.ActorUser, ID: "u000001"})
	update := "UPDATE " + app + ".subscriptions SET plan = $1, updated_at = now() WHERE id = $2"
	event := func(id int64, tenant string, i int) trail.Event {
		plan := w1Plan(i)
		return trail.Event{
			Action:      "subscription.update",
			Target:      trail.Target{Type: "subscription", ID: fmt.Sprint(id)},
			Description: "Changed subscription plan to " + plan + " for tenant " + tenant,
			Changes:     []trail.Change{trail.Changed("plan", w1Plan(i-1), plan)},
		}
	}
	variants := []w1Variant{
		{"unaudited", func(ctx context.Context, id int64, tenant string, i int) error {
			tx, err := r.pool.Begin(ctx)
			if err != nil {
				return err
			}
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, update, w1Plan(i), id); err != nil {
				return err
			}
			return tx.Commit(ctx)
		}},
		// begintx is no audit, but the transaction begun by trailpgx.BeginTx
		// (the context's settings for capture and row-level security): the
		// share of the audited variants' cost that is not the audit write.
		{"begintx", func(ctx context.Context, id int64, tenant string, i int) error {
			return r.w1TenantTx(ctx, tenant, func(ctx context.Context, tx pgx.Tx) error {
				_, err := tx.Exec(ctx, update, w1Plan(i), id)
				return err
			})
		}},
		{"recordtx", func(ctx context.Context, id int64, tenant string, i int) error {
			return r.w1TenantTx(ctx, tenant, func(ctx context.Context, tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, update, w1Plan(i), id); err != nil {
					return err
				}
				_, err := client.RecordTx(ctx, tx, event(id, tenant, i))
				return err
			})
		}},
		{"queue", func(ctx context.Context, id int64, tenant string, i int) error {
			return r.w1TenantTx(ctx, tenant, func(ctx context.Context, tx pgx.Tx) error {
				b := &pgx.Batch{}
				b.Queue(update, w1Plan(i), id)
				if _, err := trailpgx.Queue(ctx, client, b, event(id, tenant, i)); err != nil {
					return err
				}
				return tx.SendBatch(ctx, b).Close()
			})
		}},
	}
	notes := map[string]string{}
	if enableCapture == nil {
		notes["trigger"] = "not measured: this build of trailpgx has no trigger capture"
	} else if err := enableCapture(ctx, r.pool, store, app+".subscriptions_captured", "tenant"); err != nil {
		return fmt.Errorf("bench: w1: enable capture: %w", err)
	} else {
		updateCaptured := "UPDATE " + app + ".subscriptions_captured SET plan = $1, updated_at = now() WHERE id = $2"
		variants = append(variants, w1Variant{"trigger", func(ctx context.Context, id int64, tenant string, i int) error {
			return r.w1TenantTx(ctx, tenant, func(ctx context.Context, tx pgx.Tx) error {
				_, err := tx.Exec(ctx, updateCaptured, w1Plan(i), id)
				return err
			})
		}})
	}
	var audited atomic.Int64
	for _, workers := range r.cfg.Workers {
		if err := r.w1Workers(base, variants, workers, notes, &audited); err != nil {
			return err
		}
	}
	// Every audited transaction left exactly one event: the variants
	// measured what they claim to.
	var n int64
	if err := r.pool.QueryRow(ctx, "SELECT count(*) FROM "+store.Schema()+".events WHERE action = 'subscription.update'").Scan(&n); err != nil {
		return fmt.Errorf("bench: w1: %w", err)
	}
	if n != audited.Load() {
		var detail string
		_ = r.pool.QueryRow(ctx, "SELECT string_agg(source || ' ' || action || ' ' || n, ', ') FROM (SELECT source, action, count(*) n FROM "+store.Schema()+".events GROUP BY 1, 2) x").Scan(&detail)
		return fmt.Errorf("bench: w1: %d audited transactions committed but %d events stored (%s)", audited.Load(), n, detail)
	}
	return nil
}

// w1Workers measures every variant at one concurrency. Every worker runs
// the variants in turn, transaction by transaction (worker w starts at
// variant w), so that at any moment the workers run a mix of variants and
// machine noise hits every variant alike, as pgbench does with several
// scripts. A variant's throughput is the one its latencies allow every
// worker: workers × transactions ÷ the sum of its latencies, so the ratio to
// unaudited is the ratio of mean latencies.
// w1TenantTx runs fn in a transaction begun by trailpgx.BeginTx for
// tenant (the context's settings for capture and row-level security) and
// commits it; on an error from fn it rolls back.
func (r *run) w1TenantTx(ctx context.Context, tenant string, fn func(ctx context.Context, tx pgx.Tx) error) error {
	ctx = trail.WithTenant(ctx, tenant)
	tx, err := trailpgx.BeginTx(ctx, r.pool, pgx.TxOptions{})
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if err := fn(ctx, tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func (r *run) w1Workers(ctx context.Context, variants []w1Variant, workers int, notes map[string]string, audited *atomic.Int64) error {
	total := r.cfg.Transactions
	nv := len(variants)
	r.logf("w1: %d workers, %d transactions per variant", workers, total)
	warm := 5 * nv
	per := make([]int, workers) // transactions of each worker, measured
	for k := range total * nv {
		per[k%workers]++
	}
	offset := make([]int, workers)
	for w := range workers {
		offset[w] = r.w1Seq
		r.w1Seq += warm + per[w]
	}
	lat := make([][][]time.Duration, workers) // worker → variant → latencies
	errs := make([]error, workers)
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := range workers {
		lat[w] = make([][]time.Duration, nv)
		wg.Go(func() {
			for j := range warm + per[w] {
				i := offset[w] + j // never reuse a plan value: the same rows serve every concurrency
				v := (w + j) % nv
				id := int64(w*rowsPerWorker + i%rowsPerWorker + 1)
				tenant := fmt.Sprintf("t%05d", id)
				s := time.Now()
				if err := variants[v].tx(ctx, id, tenant, i); err != nil {
					errs[w] = fmt.Errorf("bench: w1 %s: %w", variants[v].name, err)
					return
				}
				if j >= warm {
					lat[w][v] = append(lat[w][v], time.Since(s))
				}
				if name := variants[v].name; name != "unaudited" && name != "begintx" {
					audited.Add(1)
				}
			}
		})
	}
	wg.Wait()
	wall := time.Since(t0)
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	res := make([]Result, nv)
	for v := range variants {
		var all []time.Duration
		var sum time.Duration
		for w := range workers {
			all = append(all, lat[w][v]...)
			for _, d := range lat[w][v] {
				sum += d
			}
		}
		secs := sum.Seconds() / float64(workers)
		res[v] = Result{Workload: "w1", Name: variants[v].name, Workers: workers, Ops: len(all),
			Seconds: secs, PerSec: float64(len(all)) / secs,
			Extra: map[string]any{"mean_ms": sum.Seconds() * 1000 / float64(len(all)), "mixed_run_seconds": wall.Seconds()}}
		res[v].latencies(all)
		if v > 0 {
			res[v].ratio("unaudited", res[0].PerSec, w1Target)
		}
		r.emit(res[v])
	}
	for name, note := range notes {
		r.emit(Result{Workload: "w1", Name: name, Workers: workers, Note: note})
	}
	return nil
}

package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail"
)

// w3Seed asks W3's three target questions (a page of 50) of Trail and of a
// seed-style audit table holding the same rows — one plain table, a bigint
// key, composite indexes with the tenant first, what the Django seed's
// AuditLog has — in warm sessions (the pool's) and in cold ones (a new
// connection before each query, so the catalog caches are empty: what the
// first request of a fresh server process or a pooler's new backend pays).
// Both run as unnamed statements planned with their values. Results carry
// the seed's p95 and Trail's ratio to it (lower is better; ≤ 1 meets issue
// 19's read target).
func (r *run) w3Seed(ctx context.Context) error {
	seed := r.prefix + "_seed"
	r.schemas = append(r.schemas, seed)
	t0 := time.Now()
	sch := pgx.Identifier{seed}.Sanitize()
	if _, err := r.pool.Exec(ctx, "CREATE SCHEMA "+sch+`;
		CREATE TABLE `+sch+`.audit_log (id bigserial PRIMARY KEY, tenant text NOT NULL, actor_type text NOT NULL,
			actor_id text NOT NULL, action text NOT NULL, target_type text NOT NULL, target_id text NOT NULL,
			description text NOT NULL, changes jsonb, metadata jsonb, created_at timestamptz NOT NULL);
		INSERT INTO `+sch+`.audit_log (tenant, actor_type, actor_id, action, target_type, target_id, description, changes, metadata, created_at)
			SELECT tenant, actor_type, actor_id, action, target_type, target_id, description, changes, metadata, occurred_at
			FROM `+r.store.Schema()+`.events ORDER BY recorded_at;
		CREATE INDEX ON `+sch+`.audit_log (tenant, created_at DESC);
		CREATE INDEX ON `+sch+`.audit_log (tenant, actor_type, actor_id, created_at DESC);
		CREATE INDEX ON `+sch+`.audit_log (tenant, target_type, target_id, created_at DESC)`); err != nil {
		return fmt.Errorf("bench: w3 seed table: %w", err)
	}
	if _, err := r.pool.Exec(ctx, "VACUUM (ANALYZE) "+sch+".audit_log"); err != nil {
		return fmt.Errorf("bench: w3 seed table: %w", err)
	}
	r.logf("w3 seed: table copied and indexed in %s", time.Since(t0).Round(time.Millisecond))

	const limit = 50
	seedQuery := func(ctx context.Context, sql string, args ...any) (int, error) {
		rows, err := r.pool.Query(ctx, sql, append([]any{pgx.QueryExecModeExec}, args...)...)
		if err != nil {
			return 0, err
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			if _, err := rows.Values(); err != nil {
				return n, err
			}
			n++
		}
		return n, rows.Err()
	}
	cols := "SELECT id, tenant, actor_type, actor_id, action, target_type, target_id, description, changes, metadata, created_at FROM " + sch + ".audit_log"
	order := fmt.Sprintf(" ORDER BY created_at DESC, id DESC LIMIT %d", limit+1)
	since := r.end.AddDate(0, 0, -30)
	type pair struct {
		name        string
		trail, seed func(ctx context.Context, p sample) (int, error)
	}
	qs := []pair{
		{"newest_50_of_tenant",
			func(ctx context.Context, p sample) (int, error) {
				page, err := r.store.Query(ctx, trail.Query{Tenant: p.tenant, Limit: limit})
				return len(page.Events), err
			},
			func(ctx context.Context, p sample) (int, error) {
				return seedQuery(ctx, cols+" WHERE tenant = $1"+order, p.tenant)
			}},
		{"user_in_tenant_30_days",
			func(ctx context.Context, p sample) (int, error) {
				page, err := r.store.Query(ctx, trail.Query{Tenant: p.tenant, ActorType: trail.ActorUser, ActorID: p.user, Since: since, Limit: limit})
				return len(page.Events), err
			},
			func(ctx context.Context, p sample) (int, error) {
				return seedQuery(ctx, cols+" WHERE tenant = $1 AND actor_type = 'user' AND actor_id = $2 AND created_at >= $3"+order, p.tenant, p.user, since)
			}},
		{"object_history",
			func(ctx context.Context, p sample) (int, error) {
				page, err := r.store.Query(ctx, trail.Query{Tenant: p.tenant, TargetType: p.targetType, TargetID: p.targetID, Limit: limit})
				return len(page.Events), err
			},
			func(ctx context.Context, p sample) (int, error) {
				return seedQuery(ctx, cols+" WHERE tenant = $1 AND target_type = $2 AND target_id = $3"+order, p.tenant, p.targetType, p.targetID)
			}},
	}
	pr := rand.New(rand.NewPCG(r.cfg.Seed, 11))
	pick := func() sample { return r.samples[pr.IntN(len(r.samples))] }
	// cold opens a new session: the pool's connections are closed and one is
	// opened (untimed), which the next query then uses.
	cold := func() error {
		r.pool.Reset()
		c, err := r.pool.Acquire(ctx)
		if err != nil {
			return err
		}
		c.Release()
		return nil
	}
	for _, session := range []string{"warm", "cold"} {
		n := r.cfg.Queries
		if session == "cold" {
			n = max(1, r.cfg.Queries/5)
		} else {
			for range max(1, n/10) { // warm-up, unmeasured
				for _, q := range qs {
					p := pick()
					if _, err := q.trail(ctx, p); err != nil {
						return fmt.Errorf("bench: w3 %s: %w", q.name, err)
					}
					if _, err := q.seed(ctx, p); err != nil {
						return fmt.Errorf("bench: w3 seed %s: %w", q.name, err)
					}
				}
			}
		}
		latT := make([][]time.Duration, len(qs))
		latS := make([][]time.Duration, len(qs))
		for i := range n {
			for k := range qs {
				v := (i + k) % len(qs)
				p := pick()
				// Alternate which side goes first, so neither always
				// finds the other's pages in the cache.
				sides := []func(context.Context, sample) (int, error){qs[v].trail, qs[v].seed}
				lats := []*[]time.Duration{&latT[v], &latS[v]}
				if i%2 == 1 {
					sides[0], sides[1], lats[0], lats[1] = sides[1], sides[0], lats[1], lats[0]
				}
				for j, ask := range sides {
					if session == "cold" {
						if err := cold(); err != nil {
							return fmt.Errorf("bench: w3 cold session: %w", err)
						}
					}
					t0 := time.Now()
					if _, err := ask(ctx, p); err != nil {
						return fmt.Errorf("bench: w3 %s: %w", qs[v].name, err)
					}
					*lats[j] = append(*lats[j], time.Since(t0))
				}
			}
		}
		for v, q := range qs {
			var s Result
			s.latencies(latS[v])
			res := Result{Workload: "w3", Name: q.name + "_vs_seed_" + session, Events: r.cfg.Events, Ops: len(latT[v]),
				Baseline: "seed_table_composite_indexes_p95_ms",
				Extra:    map[string]any{"limit": limit, "session": session, "seed_p50_ms": s.P50Ms, "seed_p95_ms": s.P95Ms, "seed_p99_ms": s.P99Ms},
				Note:     "ratio = Trail p95 / seed p95, same rows, same run, interleaved; lower is better, <= 1 meets issue 19"}
			res.latencies(latT[v])
			ratio := res.P95Ms / s.P95Ms
			target := 1.0
			meets := ratio <= target
			res.Ratio, res.Target, res.MeetsTarget = &ratio, &target, &meets
			r.emit(res)
		}
	}
	return nil
}

package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/trailhq/trail"
)

// W3 target: p95 of the first three questions, in milliseconds, at 10 M
// events.
const w3TargetP95Ms = 5.0

// w3Question is one of the questions the indexes exist for, asked through
// the store's own API (what the server and the CLI run).
type w3Question struct {
	name   string
	target bool // the p95 target applies
	ask    func(ctx context.Context, s sample) (int, error)
}

func (r *run) w3(ctx context.Context) error {
	s := r.store
	r.logf("w3: %d events, %d queries per question", r.cfg.Events, r.cfg.Queries)
	month := func(t time.Time) (time.Time, time.Time) {
		m := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		return m, m.AddDate(0, 1, 0)
	}
	qs := []w3Question{
		{"newest_of_tenant", true, func(ctx context.Context, p sample) (int, error) {
			page, err := s.Query(ctx, trail.Query{Tenant: p.tenant})
			return len(page.Events), err
		}},
		{"user_in_tenant_30_days", true, func(ctx context.Context, p sample) (int, error) {
			page, err := s.Query(ctx, trail.Query{Tenant: p.tenant, ActorType: trail.ActorUser, ActorID: p.user, Since: r.end.AddDate(0, 0, -30)})
			return len(page.Events), err
		}},
		{"object_history", true, func(ctx context.Context, p sample) (int, error) {
			page, err := s.Query(ctx, trail.Query{Tenant: p.tenant, TargetType: p.targetType, TargetID: p.targetID})
			return len(page.Events), err
		}},
		{"tenant_counts_by_action_month", false, func(ctx context.Context, p sample) (int, error) {
			since, until := month(p.at)
			counts, err := s.Counts(ctx, trail.CountQuery{Tenant: p.tenant, Since: since, Until: until})
			return len(counts), err
		}},
		{"text_in_tenant", false, func(ctx context.Context, p sample) (int, error) {
			page, err := s.Query(ctx, trail.Query{Tenant: p.tenant, Text: p.word})
			return len(page.Events), err
		}},
	}
	pr := rand.New(rand.NewPCG(r.cfg.Seed, 7))
	pick := func() sample { return r.samples[pr.IntN(len(r.samples))] }
	// Warm up: a tenth of the queries, unmeasured.
	for range max(1, r.cfg.Queries/10) {
		for _, q := range qs {
			if _, err := q.ask(ctx, pick()); err != nil {
				return fmt.Errorf("bench: w3 %s: %w", q.name, err)
			}
		}
	}
	lat := make([][]time.Duration, len(qs))
	rows := make([]int, len(qs))
	var total time.Duration
	for i := range r.cfg.Queries {
		for k := range qs {
			v := (i + k) % len(qs)
			t0 := time.Now()
			n, err := qs[v].ask(ctx, pick())
			d := time.Since(t0)
			if err != nil {
				return fmt.Errorf("bench: w3 %s: %w", qs[v].name, err)
			}
			lat[v] = append(lat[v], d)
			rows[v] += n
			total += d
		}
	}
	for v, q := range qs {
		var sum time.Duration
		for _, d := range lat[v] {
			sum += d
		}
		res := Result{Workload: "w3", Name: q.name, Events: r.cfg.Events, Ops: len(lat[v]), Seconds: sum.Seconds(),
			PerSec: float64(len(lat[v])) / sum.Seconds(),
			Extra:  map[string]any{"mean_rows": float64(rows[v]) / float64(len(lat[v]))}}
		res.latencies(lat[v])
		if q.target {
			t := w3TargetP95Ms
			meets := res.P95Ms <= t
			res.TargetP95Ms, res.MeetsTarget = &t, &meets
			if r.cfg.Events < 10_000_000 {
				res.Note = fmt.Sprintf("target is set for 10 M events; measured at %d", r.cfg.Events)
			}
		}
		r.emit(res)
	}
	return r.w3Seed(ctx)
}

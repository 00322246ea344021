package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailseal"
)

// The seal workload's target: the sealing lag (now minus the RecordedAt of
// the oldest unsealed event) stays under this while ingest runs flat out.
const sealLagTarget = 2 * time.Second

// sealSampleEvery is how often the seal workload reads the lag.
const sealSampleEvery = 100 * time.Millisecond

// sealedStore is a store the seal workload ingests into and seals: both
// stores implement it.
type sealedStore interface {
	trail.Store
	trailseal.Store
	trailserver.OldestPender
}

// seal measures, on SQLite and on PostgreSQL, whether the sealer keeps up
// with sustained ingest at the store's full speed: SealWriters goroutines
// call Store.Append with SealBatch events each, back to back, for
// SealDuration, while a sealer runs as `trail serve` runs it; the lag is
// sampled every 100 ms. Then ingest stops and the time the sealer takes to
// empty the queue is measured (drain). Before that, the same writers run
// for half as long into a fresh store with no sealer: the store's ingest
// rate alone, against which the run's ingest rate is reported.
func (r *run) seal(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "trail-bench-seal-")
	if err != nil {
		return fmt.Errorf("bench: seal: %w", err)
	}
	defer os.RemoveAll(dir)
	stores := []struct {
		name string
		open func(suffix string) (sealedStore, func(), error)
	}{
		{"sqlite", func(suffix string) (sealedStore, func(), error) {
			// As `trail serve --db` opens it: every default (synchronous FULL).
			s, err := trailsqlite.Open(ctx, filepath.Join(dir, suffix+".db"), nil)
			if err != nil {
				return nil, nil, fmt.Errorf("bench: seal: %w", err)
			}
			return s, func() { s.Close() }, nil
		}},
		{"postgres", func(suffix string) (sealedStore, func(), error) {
			s, err := r.newStore(ctx, suffix)
			if err != nil {
				return nil, nil, err
			}
			return s, func() { r.dropSchema(ctx, s.Schema()) }, nil
		}},
	}
	for _, st := range stores {
		alone, closeAlone, err := st.open("seal_alone")
		if err != nil {
			return err
		}
		perSec, err := r.ingestAlone(ctx, st.name, alone)
		closeAlone()
		if err != nil {
			return err
		}
		s, closeStore, err := st.open("seal")
		if err != nil {
			return err
		}
		err = r.sealLag(ctx, st.name, s, perSec)
		closeStore()
		if err != nil {
			return err
		}
	}
	return nil
}

// sealPool is the events the seal workload's writers send: generated once,
// sent again and again with a fresh ID and the time of sending, so that
// generating them costs the measured run nothing.
func (r *run) sealPool() []trail.Event {
	g := r.source()
	pool := make([]trail.Event, 4096)
	for i := range pool {
		pool[i] = g.next()
	}
	return pool
}

func (r *run) sealLag(ctx context.Context, name string, st sealedStore, alonePerSec float64) error {
	skey, vkey, err := trailseal.GenerateSigningKey("bench.example")
	if err != nil {
		return err
	}
	signer, _, err := trailseal.ParseSigningKey(skey)
	if err != nil {
		return err
	}
	// The sealer as `trail serve` runs it (trailcli's SealFlags defaults:
	// --seal-interval 250ms, --checkpoint-interval 10s, --checkpoint-events
	// 1000), reporting its steps to the server's Integrity.
	in := &trailserver.Integrity{Log: st, Origin: "bench.example", PublicKey: vkey}
	var sealed, sealErrs atomic.Int64
	var stepLagMax atomic.Int64
	sl, err := trailseal.NewSealer(st, &trailseal.Config{
		Signer: signer, Origin: "bench.example", PollInterval: 250 * time.Millisecond,
		CheckpointInterval: 10 * time.Second, CheckpointEvents: 1000,
		OnStep: func(s trailseal.Stats) {
			in.ObserveSeal(s)
			sealed.Add(int64(s.Sealed))
			if int64(s.Lag) > stepLagMax.Load() {
				stepLagMax.Store(int64(s.Lag))
			}
		},
		OnError: func(err error) {
			if sealErrs.Add(1) <= 3 {
				r.logf("seal %s: sealer: %v", name, err)
			}
		},
	})
	if err != nil {
		return err
	}
	pool := r.sealPool()
	writers, batch, dur := r.cfg.SealWriters, r.cfg.SealBatch, r.cfg.SealDuration
	r.logf("seal %s: %d writers × %d events per Append for %s, sealer running", name, writers, batch, dur)

	sctx, stopSealer := context.WithCancel(ctx)
	var sealerDone sync.WaitGroup
	sealerDone.Go(func() { sl.Run(sctx) })
	defer func() { stopSealer(); sealerDone.Wait() }()

	ingested, stopWriters, errs := r.writers(ctx, name, st, pool)
	defer stopWriters()

	// The lag, every 100 ms, until the writers stop.
	sample := func() (time.Duration, error) {
		at, ok, err := st.OldestPending(ctx)
		if err != nil || !ok {
			return 0, err
		}
		return max(time.Since(at), 0), nil
	}
	var lags []time.Duration
	var lagAt []float64 // seconds since start, for the trend
	t0 := time.Now()
	tick := time.NewTicker(sealSampleEvery)
	defer tick.Stop()
	var ing0, seal0 int64 = ingested.Load(), sealed.Load()
	for time.Since(t0) < dur {
		select {
		case err := <-errs:
			return err
		case <-tick.C:
		}
		lag, err := sample()
		if err != nil {
			return fmt.Errorf("bench: seal %s: oldest pending: %w", name, err)
		}
		lags, lagAt = append(lags, lag), append(lagAt, time.Since(t0).Seconds())
	}
	ingN, sealN := ingested.Load()-ing0, sealed.Load()-seal0
	elapsed := time.Since(t0)
	if err := stopWriters(); err != nil {
		return err
	}
	// Drain: ingest has stopped; how long until nothing waits (at most
	// twice the run, then reported as not drained).
	d0 := time.Now()
	drained := false
	for time.Since(d0) < 2*dur {
		lag, err := sample()
		if err != nil {
			return fmt.Errorf("bench: seal %s: oldest pending: %w", name, err)
		}
		if lag == 0 {
			drained = true
			break
		}
		<-tick.C
	}
	drain := time.Since(d0)
	stopSealer()
	sealerDone.Wait()

	res := Result{Workload: "seal", Name: name, Workers: writers, Events: int(ingN), Ops: len(lags), Seconds: elapsed.Seconds(),
		PerSec: float64(ingN) / elapsed.Seconds()}
	sorted := slices.Clone(lags)
	res.latencies(sorted)
	maxLag := sorted[len(sorted)-1]
	ratio := float64(sealN) / float64(max(ingN, 1))
	meets := maxLag < sealLagTarget
	res.Baseline, res.Ratio, res.MeetsTarget = "ingested", &ratio, &meets
	res.Extra = map[string]any{
		"events_per_append": batch, "sealed": sealN, "sealed_per_sec": float64(sealN) / elapsed.Seconds(),
		"max_lag_ms": ms(maxLag), "target_max_lag_ms": ms(sealLagTarget),
		"lag_growth_s_per_s": slope(lagAt, lags), "last_lag_ms": ms(lags[len(lags)-1]),
		"step_lag_max_ms": ms(time.Duration(stepLagMax.Load())), "sealer_errors": sealErrs.Load(),
		"drain_ms": ms(drain), "drained": drained,
		"ingest_alone_per_sec": alonePerSec, "ingest_vs_alone": res.PerSec / alonePerSec,
	}
	res.Note = fmt.Sprintf("Append of %d events by %d writers back to back, sealer as trail serve runs it; "+
		"p50/p95/p99 = sampled lag (now − recorded_at of the oldest unsealed event, every 100 ms); ratio = sealed/ingested events in the run; target max lag < %s",
		batch, writers, sealLagTarget)
	r.logf("seal %s: ingested %.0f/s (alone %.0f/s), sealed %.0f/s, lag max %.0f ms p99 %.0f ms, growth %.3f s/s, drain %.1f s",
		name, res.PerSec, alonePerSec, float64(sealN)/elapsed.Seconds(), ms(maxLag), res.P99Ms, res.Extra["lag_growth_s_per_s"], drain.Seconds())
	r.emit(res)
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// slope is the least-squares slope of ys (durations, in seconds) over xs
// (seconds): how many seconds the lag grows per second of load.
func slope(xs []float64, ys []time.Duration) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i, x := range xs {
		y := ys[i].Seconds()
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

// writers starts SealWriters goroutines appending SealBatch events from
// pool to st back to back, each event with a fresh ID, occurring now and
// stamped by the store. stop stops them and returns the first error; errs
// reports one as soon as it happens.
func (r *run) writers(ctx context.Context, name string, st trail.Store, pool []trail.Event) (ingested *atomic.Int64, stop func() error, errs <-chan error) {
	ingested = new(atomic.Int64)
	done := make(chan struct{})
	fail := make(chan error, r.cfg.SealWriters)
	var wg sync.WaitGroup
	for w := range r.cfg.SealWriters {
		wg.Go(func() {
			rr := rand.New(rand.NewPCG(r.cfg.Seed, uint64(w)))
			evs := make([]trail.Event, r.cfg.SealBatch)
			for {
				select {
				case <-done:
					return
				default:
				}
				now := time.Now().UTC().Truncate(time.Microsecond)
				for i := range evs {
					evs[i] = pool[rr.IntN(len(pool))]
					evs[i].ID = uuid.Must(uuid.NewV7())
					evs[i].OccurredAt, evs[i].RecordedAt = now, time.Time{}
					evs[i].RequestID = evs[i].ID.String()
				}
				res, err := st.Append(ctx, evs)
				if err != nil {
					fail <- fmt.Errorf("bench: seal %s: append: %w", name, err)
					return
				}
				for _, x := range res {
					if !x.Duplicate {
						ingested.Add(1)
					}
				}
			}
		})
	}
	var once sync.Once
	stop = func() error {
		once.Do(func() { close(done); wg.Wait() })
		select {
		case err := <-fail:
			return err
		default:
			return nil
		}
	}
	return ingested, stop, fail
}

// ingestAlone runs the seal workload's writers into st, with no sealer, for
// half of SealDuration, and returns their rate (events/s).
func (r *run) ingestAlone(ctx context.Context, name string, st sealedStore) (float64, error) {
	dur := max(r.cfg.SealDuration/2, time.Second)
	r.logf("seal %s: ingest alone (no sealer) for %s", name, dur)
	ingested, stop, errs := r.writers(ctx, name, st, r.sealPool())
	t0 := time.Now()
	select {
	case err := <-errs:
		stop()
		return 0, err
	case <-time.After(dur):
	}
	n, elapsed := ingested.Load(), time.Since(t0)
	if err := stop(); err != nil {
		return 0, err
	}
	perSec := float64(n) / elapsed.Seconds()
	r.emit(Result{Workload: "seal", Name: name + " ingest alone", Workers: r.cfg.SealWriters, Events: int(n), Seconds: elapsed.Seconds(), PerSec: perSec,
		Extra: map[string]any{"events_per_append": r.cfg.SealBatch},
		Note:  "the same writers into a fresh store with no sealer: the store's ingest rate alone"})
	return perSec, nil
}

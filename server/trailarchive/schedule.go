package trailarchive

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/trailhq/trail"
)

// LeaseName is the lease a Scheduler holds while it runs, in the store's
// lease table (the one the sealer's lease lives in): one runner across
// replicas.
const LeaseName = "trail-retention"

// Scheduler runs retention every Interval while it holds LeaseName.
// Archives have deterministic names and purges remove only what is still
// there, so a run that overlaps another (a lease lost mid-run) writes the
// same bytes and deletes nothing twice.
type Scheduler struct {
	Runner *Runner
	// Holder names this process in the lease (host:pid).
	Holder string
	// Interval between runs. Default 1h.
	Interval time.Duration
	// OnError reports a failed run (the next one retries).
	OnError func(error)
	// RetryInterval is how soon a step that did not run (not the leader, or
	// another holder's lease) is tried again. Default 5 s.
	RetryInterval time.Duration
	// Leader, when set, gates every run: the Scheduler runs only while it
	// returns true. trail serve passes its sealer's Leading, so retention
	// runs on the replica that leads the sealer, under that leader lease;
	// LeaseName still keeps it apart from manual runs and other processes.
	Leader func() bool

	runs, archived, purged, failures atomic.Int64
	lastOK                           atomic.Int64 // unix seconds
}

// Stats are a Scheduler's counters, for metrics.
type Stats struct {
	Runs, Archived, Purged, Failures int64
	LastSuccess                      time.Time
}

// Stats returns the counters so far.
func (s *Scheduler) Stats() Stats {
	st := Stats{Runs: s.runs.Load(), Archived: s.archived.Load(), Purged: s.purged.Load(), Failures: s.failures.Load()}
	if t := s.lastOK.Load(); t > 0 {
		st.LastSuccess = time.Unix(t, 0)
	}
	return st
}

// Step runs retention once if this holder gets the lease; ran is false when
// another holder has it.
func (s *Scheduler) Step(ctx context.Context) (ran bool, err error) {
	if s.Holder == "" {
		return false, errors.New("trailarchive: Scheduler.Holder is required")
	}
	if s.Leader != nil && !s.Leader() {
		return false, nil
	}
	log := s.Runner.cfg.Backend.Log()
	ttl := 2 * s.interval()
	if _, ok, err := log.Lease(ctx, LeaseName, s.Holder, ttl); err != nil || !ok {
		return false, err
	}
	if _, ok := trail.ActorFrom(ctx); !ok {
		ctx = trail.WithActor(ctx, SchedulerActor) // its purges are recorded as service:trail-retention
	}
	s.runs.Add(1)
	plan, err := s.Runner.Plan(ctx)
	if err == nil {
		var res Result
		res, err = s.Runner.Run(ctx, plan)
		s.archived.Add(res.Archived)
		s.purged.Add(res.Purged)
	}
	if err != nil {
		s.failures.Add(1)
		return true, err
	}
	s.lastOK.Store(s.Runner.cfg.Now().Unix())
	return true, nil
}

func (s *Scheduler) interval() time.Duration {
	if s.Interval <= 0 {
		return time.Hour
	}
	return s.Interval
}

// Run steps every Interval until ctx ends, then releases the lease. A step
// that did not run (another holder has the lease, or Leader says no: a new
// sealer has not taken its lease yet) is retried after RetryInterval, so a
// replica that becomes the leader starts within seconds, not an Interval
// later.
func (s *Scheduler) Run(ctx context.Context) {
	for {
		ran, err := s.Step(ctx)
		if err != nil && ctx.Err() == nil && s.OnError != nil {
			s.OnError(err)
		}
		wait := s.interval()
		if !ran && err == nil {
			wait = min(wait, s.retryInterval())
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			s.Runner.cfg.Backend.Log().Lease(rctx, LeaseName, s.Holder, 0)
			cancel()
			return
		case <-t.C:
		}
	}
}

func (s *Scheduler) retryInterval() time.Duration {
	if s.RetryInterval <= 0 {
		return 5 * time.Second
	}
	return s.RetryInterval
}

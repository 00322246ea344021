package trailcli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailarchive"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailpgx"
)

// ServeRetentionFlags turn on scheduled retention in `trail serve`.
type ServeRetentionFlags struct {
	ArchiveFlags
	ArchiveWriteFlags
	Retention         bool          `name:"retention" env:"TRAIL_RETENTION" help:"Run retention (archive, then purge, by policy) on a schedule in this server; one replica at a time holds its lease."`
	RetentionInterval time.Duration `name:"retention-interval" default:"1h" help:"How often scheduled retention runs."`
}

// startRetention starts the retention scheduler when --retention is set and
// returns what waits for it to stop (after ctx ends) and its counters for
// /metrics (nil when no scheduler runs). It needs the archive
// target and the checkpoint signing key, on either store. When this process
// runs the sealer, retention runs only while that sealer holds the leader
// lease (the same leader across replicas); with --no-seal, the Scheduler's
// own lease alone keeps it to one replica. Either way it also takes its own
// lease, which keeps a manual `trail retention run` from overlapping.
func (c *ServeCmd) startRetention(ctx context.Context, e *Env, store trail.Store, priv trail.Transformer) (wait func(), stats func() trailserver.RetentionStats, err error) {
	f := &c.ServeRetentionFlags
	if !f.Retention {
		return func() {}, nil, nil
	}
	if f.RetentionInterval <= 0 {
		return nil, nil, Usagef("--retention-interval must be positive")
	}
	b := serveRetentionBackend(e, store, priv)
	if b == nil {
		fmt.Fprintf(e.Stderr, "trail: --retention: this store (%T) has no retention backend; nothing is purged\n", store)
		return func() {}, nil, nil
	}
	r, err := e.retentionRunner(&c.SigningFlags, &f.ArchiveFlags, &f.ArchiveWriteFlags, true, b)
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	s := &trailarchive.Scheduler{Runner: r, Holder: fmt.Sprintf("%s:%d", host, os.Getpid()), Interval: f.RetentionInterval,
		OnError: func(err error) { fmt.Fprintf(e.Stderr, "trail: retention: %s\n", oneLine(err.Error())) },
		Leader:  c.SealFlags.leading}
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx) })
	stats = func() trailserver.RetentionStats {
		x := s.Stats()
		return trailserver.RetentionStats{Runs: x.Runs, Archived: x.Archived, Purged: x.Purged, Failures: x.Failures}
	}
	return wg.Wait, stats, nil
}

// serveRetentionBackend is the retention backend of the store trail serve
// runs on, recording its events through priv (the privacy layer); nil for
// a store without one.
func serveRetentionBackend(e *Env, store trail.Store, priv trail.Transformer) trailarchive.Backend {
	switch st := store.(type) {
	case *trailsqlite.Store:
		b := trailarchive.NewSQLite(st)
		b.Now, b.Transform = e.Now, priv
		return b
	case *trailpgx.Store:
		b := trailarchive.NewPostgres(st)
		b.Now, b.Transform = e.Now, priv
		return b
	}
	return nil
}

// serveRetention is the retention API of trail serve (always on: the
// policies and holds are the store's, whether or not this server runs
// retention on a schedule); nil for a store without a backend.
func serveRetention(e *Env, store trail.Store, priv trail.Transformer) trailserver.Retention {
	b := serveRetentionBackend(e, store, priv)
	if b == nil {
		return nil
	}
	return RetentionAPI(b, e.Now)
}

// RetentionAPI adapts a retention backend to trailserver's retention
// endpoints: keeps as text ("90d"), errors as *trailserver.RetentionError
// naming the field, and a plan as counts per tenant.
func RetentionAPI(b trailarchive.Backend, now func() time.Time) trailserver.Retention {
	if now == nil {
		now = time.Now
	}
	return &retentionAPI{b: b, now: now}
}

type retentionAPI struct {
	b   trailarchive.Backend
	now func() time.Time
}

func keepText(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return trailarchive.FormatKeep(d)
}

func (a *retentionAPI) State(ctx context.Context) (trailserver.RetentionState, error) {
	set, err := a.b.Set(ctx)
	if err != nil {
		return trailserver.RetentionState{}, err
	}
	st := trailserver.RetentionState{
		Policies: make([]trailserver.RetentionPolicy, 0, len(set.Policies)),
		Holds:    make([]trailserver.RetentionHold, 0, len(set.Holds)),
		Default:  trailserver.RetentionPolicy{Keep: keepText(trailarchive.DefaultKeep), Then: string(trailarchive.ThenArchive)},
	}
	for _, p := range set.Policies {
		st.Policies = append(st.Policies, trailserver.RetentionPolicy{Tenant: p.Tenant, Action: p.Action, Keep: keepText(p.Keep), Then: string(p.Then)})
	}
	for _, h := range set.Holds {
		since := h.Since
		st.Holds = append(st.Holds, trailserver.RetentionHold{Tenant: h.Tenant, Subject: h.Subject, Reason: h.Reason, MinKeep: keepText(h.MinKeep), Since: &since})
	}
	return st, nil
}

// refused turns a backend's refusal into a RetentionError on field (or the
// field the refusal names).
func refused(field string, err error) error {
	var ih *trailarchive.InvalidHoldError
	var we *trailarchive.WeakenError
	switch {
	case errors.As(err, &ih):
		return &trailserver.RetentionError{Field: ih.Field, Err: err}
	case errors.As(err, &we):
		return &trailserver.RetentionError{Field: we.Field, Forbidden: true, Err: err}
	case errors.Is(err, trailarchive.ErrConflict):
		if strings.Contains(err.Error(), "legal hold") {
			field = "keep"
		}
		return &trailserver.RetentionError{Field: field, Conflict: true, Err: err}
	case errors.Is(err, trailarchive.ErrInvalidPolicy):
		return &trailserver.RetentionError{Field: field, Err: err}
	}
	return err
}

func (a *retentionAPI) SetPolicy(ctx context.Context, in trailserver.RetentionPolicy) error {
	keep, err := trailarchive.ParseKeep(in.Keep)
	if err != nil {
		return refused("keep", err)
	}
	p := trailarchive.Policy{Tenant: in.Tenant, Action: in.Action, Keep: keep, Then: trailarchive.Then(in.Then)}
	if err := (trailarchive.Policy{Action: in.Action, Keep: keep, Then: trailarchive.ThenArchive}).Validate(); err != nil {
		return refused("action", err)
	}
	if err := p.Validate(); err != nil {
		return refused("then", err)
	}
	field := "action" // which rule to write: tenant and action
	if p.Action == "" {
		field = "tenant"
	}
	return refused(field, a.b.SetPolicy(ctx, p))
}

func (a *retentionAPI) UnsetPolicy(ctx context.Context, tenant, action string) (bool, error) {
	return a.b.DeletePolicy(ctx, tenant, action)
}

func (a *retentionAPI) PlaceHold(ctx context.Context, in trailserver.RetentionHold, onlyStrengthen bool) ([]string, error) {
	h := trailarchive.Hold{Tenant: in.Tenant, Subject: in.Subject, Reason: in.Reason}
	if in.MinKeep != "" {
		d, err := trailarchive.ParseKeep(in.MinKeep)
		if err != nil {
			return nil, refused("min_keep", err)
		}
		h.MinKeep = d
	}
	if err := h.Validate(); err != nil {
		return nil, refused("subject", err)
	}
	if onlyStrengthen {
		ctx = trailarchive.OnlyStrengthen(ctx)
	}
	var notes []string
	if h.MinKeep > 0 {
		set, err := a.b.Set(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range set.Policies {
			if (p.Tenant == "" || p.Tenant == h.Tenant) && p.Keep < h.MinKeep {
				notes = append(notes, fmt.Sprintf("policy tenant %s action %s keeps %s, less than the hold's %s: the hold wins (nothing of %s is purged)",
					orAll(p.Tenant), orAll(p.Action), trailarchive.FormatKeep(p.Keep), trailarchive.FormatKeep(h.MinKeep), h.Tenant))
			}
		}
	}
	return notes, refused("subject", a.b.PutHold(ctx, h))
}

func (a *retentionAPI) ReleaseHold(ctx context.Context, tenant, subject string) (bool, error) {
	return a.b.ReleaseHold(ctx, tenant, subject)
}

func (a *retentionAPI) Plan(ctx context.Context) (trailserver.RetentionPlan, error) {
	r, err := trailarchive.NewRunner(trailarchive.Config{Backend: a.b, Now: a.now})
	if err != nil {
		return trailserver.RetentionPlan{}, err
	}
	plan, err := r.Plan(ctx)
	if err != nil {
		return trailserver.RetentionPlan{}, err
	}
	out := trailserver.RetentionPlan{Tenants: []trailserver.RetentionPlanTenant{}, Held: plan.Held, Waiting: plan.Waiting, Batches: len(plan.Batches)}
	out.Archive, out.Delete = plan.Totals()
	idx := map[string]int{}
	for _, bt := range plan.Batches {
		i, ok := idx[bt.Tenant]
		if !ok {
			i = len(out.Tenants)
			idx[bt.Tenant] = i
			out.Tenants = append(out.Tenants, trailserver.RetentionPlanTenant{Tenant: bt.Tenant})
		}
		t := &out.Tenants[i]
		t.Batches++
		if bt.Then == trailarchive.ThenArchive {
			t.Archive += int64(len(bt.Leaves))
		} else {
			t.Delete += int64(len(bt.Leaves))
		}
	}
	return out, nil
}

package trailarchive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
)

// Retention audits itself: every change to the policies and holds, and
// every purge, is an event in the store it governs, written in the same
// transaction as the change (on SQLite and PostgreSQL the retention tables
// live beside the events), so the change and its record exist together or
// not at all.

// Actions of the events retention records about itself.
const (
	ActionPolicySet   = "retention.policy.set"
	ActionPolicyUnset = "retention.policy.unset"
	ActionHoldPlace   = "retention.hold.place"
	ActionHoldRelease = "retention.hold.release"
	ActionPurge       = "retention.purge"
)

// Target types of retention's events.
const (
	TargetPolicy = "retention_policy" // ID: tenant/action, "*" for all
	TargetHold   = "legal_hold"       // ID: the subject, or the tenant
	TargetRun    = "retention_run"    // ID: the run
)

// Source is written into retention's events when their context names none.
const Source = "trail-retention"

var (
	// SchedulerActor is who scheduled runs (trail serve --retention) act
	// as; Scheduler.Step puts it in the context unless one is there.
	SchedulerActor = trail.Actor{Type: trail.ActorService, ID: "trail-retention"}
	// DefaultActor is recorded when the context carries no actor
	// (trail.WithActor): a program using the package directly.
	DefaultActor = trail.Actor{Type: trail.ActorSystem, ID: "retention"}
)

// auditor writes retention's events in their stored form.
type auditor struct {
	t   trail.Transformer
	now func() time.Time
}

// prepare fills ev from ctx (actor, request, source; never the tenant: a
// platform rule's event stays a platform event), stamps it now and puts it
// in its stored form: normalized, through the privacy Transform, validated.
func (a auditor) prepare(ctx context.Context, ev trail.Event) (trail.Event, error) {
	tenant := ev.Tenant
	ev.FromContext(ctx)
	ev.Tenant = tenant
	if ev.Actor.IsZero() {
		ev.Actor = DefaultActor
	}
	if ev.Source == "" {
		ev.Source = Source
	}
	now := a.now().UTC()
	ev.OccurredAt, ev.RecordedAt = now, now
	if err := ev.Normalize(); err != nil {
		return ev, fmt.Errorf("trailarchive: audit event: %w", err)
	}
	if a.t != nil {
		if err := a.t.Transform(ctx, &ev); err != nil {
			return ev, fmt.Errorf("trailarchive: audit event: transform: %w", err)
		}
	}
	if err := ev.Validate(); err != nil {
		return ev, fmt.Errorf("trailarchive: audit event: %w", err)
	}
	return ev, nil
}

// warm prepares ev once before the transaction that records it and
// discards the result: the Transform creates any data key the event needs
// (a caller's IP is encrypted under the actor's key) on its own connection
// then, instead of waiting inside the transaction for a write the embedded
// store's single writer lock would block.
func (a auditor) warm(ctx context.Context, ev trail.Event) error {
	if a.t == nil {
		return nil
	}
	_, err := a.prepare(ctx, ev)
	return err
}

func orAll(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

// change is a trail.Change from old to new; nil is absent.
func change(field string, old, new any) trail.Change {
	c := trail.Change{Field: field}
	if old != nil {
		c.Old, _ = json.Marshal(old)
	}
	if new != nil {
		c.New, _ = json.Marshal(new)
	}
	return c
}

// changes keeps the changes whose old and new differ.
func changes(cs ...trail.Change) []trail.Change {
	return slices.DeleteFunc(cs, func(c trail.Change) bool { return string(c.Old) == string(c.New) })
}

func keepOf(p *Policy) (keep, then any) {
	if p == nil {
		return nil, nil
	}
	return FormatKeep(p.Keep), string(p.Then)
}

// policyEvent records setting p over old (nil: a new rule), or, with p nil,
// removing old.
func policyEvent(p, old *Policy) trail.Event {
	cur := p
	action := ActionPolicySet
	if p == nil {
		cur, action = old, ActionPolicyUnset
	}
	ok, ot := keepOf(old)
	nk, nt := keepOf(p)
	ev := trail.Event{
		Tenant:  cur.Tenant,
		Action:  action,
		Target:  trail.Target{Type: TargetPolicy, ID: orAll(cur.Tenant) + "/" + orAll(cur.Action)},
		Changes: changes(change("keep", ok, nk), change("then", ot, nt)),
		Metadata: map[string]any{
			"policy_tenant": orAll(cur.Tenant),
			"policy_action": orAll(cur.Action),
		},
	}
	if p != nil {
		ev.Description = fmt.Sprintf("Set retention of tenant %s, action %s: keep %s, then %s", orAll(p.Tenant), orAll(p.Action), FormatKeep(p.Keep), p.Then)
	} else {
		ev.Description = fmt.Sprintf("Removed the retention policy of tenant %s, action %s (was keep %s, then %s)", orAll(old.Tenant), orAll(old.Action), FormatKeep(old.Keep), old.Then)
	}
	return ev
}

func holdOf(h *Hold) (reason, minKeep any) {
	if h == nil {
		return nil, nil
	}
	mk := ""
	if h.MinKeep > 0 {
		mk = FormatKeep(h.MinKeep)
	}
	return h.Reason, mk
}

// holdEvent records placing h over old (nil: a new hold), or, with h nil,
// releasing old.
func holdEvent(h, old *Hold) trail.Event {
	cur := h
	action := ActionHoldPlace
	if h == nil {
		cur, action = old, ActionHoldRelease
	}
	or, om := holdOf(old)
	nr, nm := holdOf(h)
	id := cur.Subject
	if id == "" {
		id = cur.Tenant
	}
	ev := trail.Event{
		Tenant:   cur.Tenant,
		Action:   action,
		Target:   trail.Target{Type: TargetHold, ID: id},
		Changes:  changes(change("reason", or, nr), change("min_keep", om, nm)),
		Metadata: map[string]any{"subject": orAll(cur.Subject)},
	}
	what := holdName(*cur)
	switch {
	case h == nil:
		ev.Description = "Released the legal hold on " + what
		ev.Metadata["since"] = old.Since.UTC().Format(time.RFC3339)
	case old == nil:
		ev.Description = "Placed a legal hold on " + what
	default:
		ev.Description = "Replaced the legal hold on " + what
		var we *WeakenError
		if errors.As(h.CheckStrengthens(*old), &we) {
			// Only a caller free to weaken it did (not OnlyStrengthen).
			ev.Metadata["weakened"] = we.Field
		}
	}
	return ev
}

func findPolicy(s *Set, tenant, action string) *Policy {
	for i := range s.Policies {
		if s.Policies[i].Tenant == tenant && s.Policies[i].Action == action {
			return &s.Policies[i]
		}
	}
	return nil
}

func findHold(s *Set, tenant, subject string) *Hold {
	for i := range s.Holds {
		if s.Holds[i].Tenant == tenant && s.Holds[i].Subject == subject {
			return &s.Holds[i]
		}
	}
	return nil
}

// runInfo names the run a purge belongs to, for its events.
type runInfo struct {
	id     string
	target string
}

type runKey struct{}

// withRun gives ctx the run's ID (a new one) and the target's display
// name, unless it has them: every purge of one Run is recorded under one
// run ID.
func (r *Runner) withRun(ctx context.Context) context.Context {
	if _, ok := ctx.Value(runKey{}).(runInfo); ok {
		return ctx
	}
	ri := runInfo{id: newRunID()}
	if r.cfg.Target != nil {
		ri.target = DisplayTarget(r.cfg.Target.String())
	}
	return context.WithValue(ctx, runKey{}, ri)
}

// runOf returns ctx's run, or a run of its own (a Purge called outside Run).
func runOf(ctx context.Context) runInfo {
	if ri, ok := ctx.Value(runKey{}).(runInfo); ok {
		return ri
	}
	return runInfo{id: newRunID()}
}

func newRunID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

var userinfoRE = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@`)

// DisplayTarget is an archive target's name as events and answers show it:
// without the user and password a URL may carry.
func DisplayTarget(s string) string { return userinfoRE.ReplaceAllString(s, "$1") }

// purgeNS is the namespace of purge events' IDs.
var purgeNS = uuid.MustParse("5d1f4a3e-6c1b-4c53-9d5e-7a0c2b8e4f10")

// purgeEventID is the ID of the purge event of log, run and part (the
// transaction's first batch or month): the same purge recorded twice is
// one event (the stores skip an ID they hold).
func purgeEventID(log, run, part string) uuid.UUID {
	return uuid.NewSHA1(purgeNS, []byte(log+"\x00"+run+"\x00"+part))
}

// purgeStats sums up what one purge transaction removed of one log.
type purgeStats struct {
	log               string
	archived, deleted int64
	seqs              []int64
	batches           map[string]bool // archive keys; delete batches by their day
	policies          map[string]*policyCount
}

type policyCount struct {
	Tenant string `json:"tenant"`
	Action string `json:"action"`
	Keep   string `json:"keep"`
	Then   Then   `json:"then"`
	Events int64  `json:"events"`
}

// add counts the purged event of leaf, archived into archive ("" deleted),
// under the policy of set that applies to it.
func (p *purgeStats) add(set *Set, leaf *trailseal.SealedEvent, archive string) {
	if archive != "" {
		p.archived++
		p.batches[archive] = true
	} else {
		p.deleted++
		p.batches["delete "+leaf.Event.RecordedAt.UTC().Format(time.DateOnly)] = true
	}
	p.seqs = append(p.seqs, leaf.Seq)
	pol := set.Resolve(leaf.Event.Tenant, leaf.Event.Action)
	k := pol.Tenant + "\x00" + pol.Action
	c := p.policies[k]
	if c == nil {
		c = &policyCount{Tenant: orAll(pol.Tenant), Action: orAll(pol.Action), Keep: FormatKeep(pol.Keep), Then: pol.Then}
		p.policies[k] = c
	}
	c.Events++
}

// maxSeqRanges bounds the seq ranges a purge event lists.
const maxSeqRanges = 64

// purgeEvents turns stats into one retention.purge event per log that lost
// events, with IDs from (log, run, part).
func purgeEvents(ri runInfo, part string, stats map[string]*purgeStats) []trail.Event {
	var out []trail.Event
	for _, log := range slices.Sorted(maps.Keys(stats)) {
		st := stats[log]
		if st.archived+st.deleted == 0 {
			continue
		}
		rs := ranges(st.seqs)
		seqs := make([]string, 0, min(len(rs), maxSeqRanges))
		for _, r := range rs[:min(len(rs), maxSeqRanges)] {
			seqs = append(seqs, strconv.FormatInt(r.From, 10)+".."+strconv.FormatInt(r.To-1, 10))
		}
		pols := make([]*policyCount, 0, len(st.policies))
		for _, k := range slices.Sorted(maps.Keys(st.policies)) {
			pols = append(pols, st.policies[k])
		}
		md := map[string]any{
			"run":        ri.id,
			"archived":   st.archived,
			"deleted":    st.deleted,
			"seqs":       seqs,
			"seq_ranges": len(rs),
			"batches":    len(st.batches),
			"policies":   pols,
		}
		if st.archived > 0 && ri.target != "" {
			md["archive"] = ri.target
		}
		desc := fmt.Sprintf("Retention purged %d events (%d archived, %d deleted)", st.archived+st.deleted, st.archived, st.deleted)
		out = append(out, trail.Event{
			ID:          purgeEventID(log, ri.id, part),
			Tenant:      trailseal.TenantOf(log),
			Action:      ActionPurge,
			Target:      trail.Target{Type: TargetRun, ID: ri.id},
			Description: desc,
			Metadata:    md,
		})
	}
	return out
}

// newStats returns the stats of log in m, made on first use.
func newStats(m map[string]*purgeStats, log string) *purgeStats {
	st := m[log]
	if st == nil {
		st = &purgeStats{log: log, batches: map[string]bool{}, policies: map[string]*policyCount{}}
		m[log] = st
	}
	return st
}

// warmPurge warms the Transform for the purge events of the logs of items.
func (a auditor) warmPurge(ctx context.Context, items []purgeItem) error {
	if a.t == nil {
		return nil
	}
	seen := map[string]bool{}
	for _, it := range items {
		t := it.leaf.Event.Tenant
		if seen[t] {
			continue
		}
		seen[t] = true
		ev := trail.Event{Tenant: t, Action: ActionPurge, Target: trail.Target{Type: TargetRun, ID: "warm"},
			Metadata: map[string]any{"run": "", "archived": 0, "deleted": 0, "seqs": []string{}, "seq_ranges": 0, "batches": 0,
				"policies": []*policyCount{{}}, "archive": ""}}
		if err := a.warm(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// prepareAll puts evs in their stored form.
func (a auditor) prepareAll(ctx context.Context, evs []trail.Event) ([]trail.Event, error) {
	for i := range evs {
		ev, err := a.prepare(ctx, evs[i])
		if err != nil {
			return nil, err
		}
		evs[i] = ev
	}
	return evs, nil
}

// partOf names a purge transaction for its events' IDs.
func partOf(items []purgeItem) string {
	var b strings.Builder
	if len(items) > 0 {
		it := items[0]
		fmt.Fprintf(&b, "%s/%d", it.archive, it.leaf.Seq)
	}
	return b.String()
}

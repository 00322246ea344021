package trailarchive

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailseal"
)

// SQLite is the Backend of the embedded store (tables of migration
// 0003_retention).
type SQLite struct {
	S *trailsqlite.Store
	// Now is the clock for updated_at and since; default time.Now.
	Now func() time.Time
	// Transform puts retention's own events (audit.go) in their stored
	// form: the store's privacy layer, as for any event. Default: none.
	Transform trail.Transformer
}

var (
	_ Backend    = (*SQLite)(nil)
	_ BulkPurger = (*SQLite)(nil)
)

// NewSQLite returns the Backend of s.
func NewSQLite(s *trailsqlite.Store) *SQLite { return &SQLite{S: s, Now: time.Now} }

// Log implements Backend.
func (b *SQLite) Log() trailseal.Store { return b.S }

type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func readSet(ctx context.Context, q queryer) (*Set, error) {
	s := &Set{}
	rows, err := q.QueryContext(ctx, `SELECT tenant, action, keep_hours, then_do FROM trail_retention_policies ORDER BY tenant, action`)
	if err != nil {
		return nil, fmt.Errorf("trailarchive: read policies: %w", err)
	}
	for rows.Next() {
		var p Policy
		var h int64
		if err := rows.Scan(&p.Tenant, &p.Action, &h, &p.Then); err != nil {
			rows.Close()
			return nil, err
		}
		p.Keep = time.Duration(h) * time.Hour
		s.Policies = append(s.Policies, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = q.QueryContext(ctx, `SELECT tenant, subject, reason, min_keep_hours, since FROM trail_retention_holds ORDER BY tenant, subject`)
	if err != nil {
		return nil, fmt.Errorf("trailarchive: read holds: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var h Hold
		var mk, since int64
		if err := rows.Scan(&h.Tenant, &h.Subject, &h.Reason, &mk, &since); err != nil {
			return nil, err
		}
		h.MinKeep = time.Duration(mk) * time.Hour
		h.Since = time.UnixMicro(since).UTC()
		s.Holds = append(s.Holds, h)
	}
	return s, rows.Err()
}

// Set implements Backend.
func (b *SQLite) Set(ctx context.Context) (*Set, error) { return readSet(ctx, b.S.DB()) }

func (b *SQLite) tx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := b.S.DB().BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("trailarchive: %w", err)
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// SetPolicy implements Backend. The retention.policy.set event is written
// in the same transaction; a refused policy records nothing.
func (b *SQLite) SetPolicy(ctx context.Context, p Policy) error {
	if p.Keep%time.Hour != 0 {
		return fmt.Errorf("%w: keep must be whole hours", ErrInvalidPolicy)
	}
	a := b.auditor()
	if err := a.warm(ctx, policyEvent(&p, nil)); err != nil {
		return err
	}
	return b.tx(ctx, func(tx *sql.Tx) error {
		s, err := readSet(ctx, tx)
		if err != nil {
			return err
		}
		if err := s.CheckSet(p); err != nil {
			return err
		}
		ev, err := a.prepare(ctx, policyEvent(&p, findPolicy(s, p.Tenant, p.Action)))
		if err != nil {
			return err
		}
		if _, err = tx.ExecContext(ctx, `INSERT INTO trail_retention_policies (tenant, action, keep_hours, then_do, updated_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, action) DO UPDATE SET keep_hours = excluded.keep_hours,
			then_do = excluded.then_do, updated_at = excluded.updated_at`,
			p.Tenant, p.Action, int64(p.Keep/time.Hour), string(p.Then), b.Now().UnixMicro()); err != nil {
			return fmt.Errorf("trailarchive: set policy: %w", err)
		}
		return b.record(ctx, tx, ev)
	})
}

func (b *SQLite) auditor() auditor { return auditor{t: b.Transform, now: b.Now} }

// record appends retention's own events in tx.
func (b *SQLite) record(ctx context.Context, tx *sql.Tx, evs ...trail.Event) error {
	if _, err := b.S.AppendTx(ctx, tx, evs); err != nil {
		return fmt.Errorf("trailarchive: record %s: %w", evs[0].Action, err)
	}
	return nil
}

// DeletePolicy implements Backend, recording retention.policy.unset in the
// same transaction.
func (b *SQLite) DeletePolicy(ctx context.Context, tenant, action string) (bool, error) {
	return b.removeAudited(ctx, policyEvent(nil, &Policy{Tenant: tenant, Action: action, Keep: Day, Then: ThenArchive}),
		func(s *Set) (trail.Event, bool) {
			old := findPolicy(s, tenant, action)
			if old == nil {
				return trail.Event{}, false
			}
			return policyEvent(nil, old), true
		}, "delete policy", `DELETE FROM trail_retention_policies WHERE tenant = ? AND action = ?`, tenant, action)
}

// removeAudited deletes a policy or hold with stmt and records its event in
// the same transaction: warm is an event of the same shape, to create any
// data keys beforehand; pick finds the row in the rules read in the
// transaction and returns its event, false when there is none (then nothing
// is deleted or recorded).
func (b *SQLite) removeAudited(ctx context.Context, warm trail.Event, pick func(*Set) (trail.Event, bool), what, stmt string, args ...any) (bool, error) {
	a := b.auditor()
	if err := a.warm(ctx, warm); err != nil {
		return false, err
	}
	found := false
	err := b.tx(ctx, func(tx *sql.Tx) error {
		s, err := readSet(ctx, tx)
		if err != nil {
			return err
		}
		raw, ok := pick(s)
		if !ok {
			return nil
		}
		found = true
		ev, err := a.prepare(ctx, raw)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, stmt, args...); err != nil {
			return fmt.Errorf("trailarchive: %s: %w", what, err)
		}
		return b.record(ctx, tx, ev)
	})
	return found && err == nil, err
}

// PutHold implements Backend, recording retention.hold.place in the same
// transaction; under OnlyStrengthen, a refused replace is recorded (denied)
// in a transaction that changes no hold.
func (b *SQLite) PutHold(ctx context.Context, h Hold) error {
	if err := h.Validate(); err != nil {
		return err
	}
	a := b.auditor()
	if err := a.warm(ctx, holdEvent(&h, nil)); err != nil {
		return err
	}
	var refused error
	err := b.tx(ctx, func(tx *sql.Tx) error {
		s, err := readSet(ctx, tx)
		if err != nil {
			return err
		}
		old := findHold(s, h.Tenant, h.Subject)
		if denied, why := checkReplace(ctx, &h, old); why != nil {
			ev, err := a.prepare(ctx, *denied)
			if err != nil {
				return err
			}
			refused = why
			return b.record(ctx, tx, ev)
		}
		ev, err := a.prepare(ctx, holdEvent(&h, old))
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO trail_retention_holds (tenant, subject, reason, min_keep_hours, since)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, subject) DO UPDATE SET reason = excluded.reason,
			min_keep_hours = excluded.min_keep_hours`,
			h.Tenant, h.Subject, h.Reason, int64(h.MinKeep/time.Hour), b.Now().UnixMicro()); err != nil {
			return fmt.Errorf("trailarchive: put hold: %w", err)
		}
		return b.record(ctx, tx, ev)
	})
	if err != nil {
		return err
	}
	return refused
}

// ReleaseHold implements Backend, recording retention.hold.release in the
// same transaction.
func (b *SQLite) ReleaseHold(ctx context.Context, tenant, subject string) (bool, error) {
	return b.removeAudited(ctx, holdEvent(nil, &Hold{Tenant: tenant, Subject: subject}),
		func(s *Set) (trail.Event, bool) {
			old := findHold(s, tenant, subject)
			if old == nil {
				return trail.Event{}, false
			}
			return holdEvent(nil, old), true
		}, "release hold", `DELETE FROM trail_retention_holds WHERE tenant = ? AND subject = ?`, tenant, subject)
}

// maxPurgeTx bounds the events one purge transaction of the embedded store
// removes (whole batches; a single larger batch is still one transaction).
const maxPurgeTx = 200_000

// Purge implements Backend: one IMMEDIATE transaction re-reads the holds,
// deletes the events, records the purged seqs and the retention.purge
// event.
func (b *SQLite) Purge(ctx context.Context, log string, leaves []trailseal.SealedEvent, archive string) (int64, error) {
	items := make([]purgeItem, 0, len(leaves))
	for i := range leaves {
		if leaves[i].Event != nil {
			items = append(items, purgeItem{&leaves[i], archive})
		}
	}
	n, err := b.purge(ctx, log, items)
	if err != nil && !errors.Is(err, ErrHeld) {
		return 0, fmt.Errorf("trailarchive: purge %s: %w", log, err)
	}
	return n, err
}

// PurgeBatches implements BulkPurger: the batches of one log are purged
// together, in transactions of up to maxPurgeTx events, each recording one
// retention.purge event, so a run leaves one event per tenant (a tenant
// purging more than maxPurgeTx events in one run gets one per transaction).
func (b *SQLite) PurgeBatches(ctx context.Context, batches []*Batch, progress func(handled int64)) (int64, error) {
	var order []string
	byLog := map[string][][]purgeItem{}
	for _, bt := range batches {
		archive := ""
		if bt.Then == ThenArchive {
			archive = bt.Key
		}
		var items []purgeItem
		for i := range bt.Leaves {
			if bt.Leaves[i].Event != nil {
				items = append(items, purgeItem{&bt.Leaves[i], archive})
			}
		}
		groups := byLog[bt.Log]
		if groups == nil {
			order = append(order, bt.Log)
		}
		if n := len(groups); n == 0 || len(groups[n-1])+len(items) > maxPurgeTx {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], items...)
		byLog[bt.Log] = groups
	}
	var n, handled int64
	for _, log := range order {
		for _, items := range byLog[log] {
			if err := ctx.Err(); err != nil {
				return n, err
			}
			k, err := b.purge(ctx, log, items)
			if err != nil {
				if errors.Is(err, ErrHeld) {
					return n, err
				}
				return n, fmt.Errorf("trailarchive: purge %s: %w", log, err)
			}
			n += k
			handled += int64(len(items))
			if progress != nil {
				progress(handled)
			}
		}
	}
	return n, nil
}

// purge removes items, events of log, in one transaction that re-reads the
// holds first and records the purge and its event.
func (b *SQLite) purge(ctx context.Context, log string, items []purgeItem) (int64, error) {
	if len(items) == 0 {
		return 0, nil
	}
	a, ri := b.auditor(), runOf(ctx)
	if err := a.warmPurge(ctx, items); err != nil {
		return 0, err
	}
	var n int64
	err := b.tx(ctx, func(tx *sql.Tx) error {
		s, err := readSet(ctx, tx)
		if err != nil {
			return err
		}
		byID := make(map[[16]byte]*purgeItem, len(items))
		ids := make([]any, 0, len(items))
		for i := range items {
			l := items[i].leaf
			if h, held := s.Held(l.Event); held {
				return fmt.Errorf("%w: tenant %s%s, event %s", ErrHeld, h.Tenant, subjectSuffix(h), l.EventID)
			}
			if byID[l.EventID] == nil {
				ids = append(ids, l.EventID[:])
			}
			byID[l.EventID] = &items[i]
		}
		// One statement per chunk of IDs: FTS5 flushes its index at every
		// statement, so row-by-row deletes cost a flush per event.
		seqs := map[string][]int64{} // by archive
		stats := map[string]*purgeStats{}
		for len(ids) > 0 {
			chunk := ids[:min(len(ids), 500)]
			ids = ids[len(chunk):]
			q := "DELETE FROM trail_events WHERE id IN (?" + strings.Repeat(",?", len(chunk)-1) + ") RETURNING id"
			rows, err := tx.QueryContext(ctx, q, chunk...)
			if err != nil {
				return fmt.Errorf("trailarchive: purge: %w", err)
			}
			for rows.Next() {
				var id []byte
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				it := byID[[16]byte(id)]
				if it == nil {
					rows.Close()
					return fmt.Errorf("trailarchive: purge deleted an unexpected row")
				}
				seqs[it.archive] = append(seqs[it.archive], it.leaf.Seq)
				newStats(stats, log).add(s, it.leaf, it.archive)
				n++
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("trailarchive: purge: %w", err)
			}
		}
		now := b.Now().UnixMicro()
		for _, archive := range slices.Sorted(maps.Keys(seqs)) {
			for _, r := range ranges(seqs[archive]) {
				if _, err := tx.ExecContext(ctx, `INSERT INTO trail_seal_purges (log, seq_from, seq_to, archive, purged_at) VALUES (?, ?, ?, ?, ?)`,
					log, r.From, r.To, archive, now); err != nil {
					return fmt.Errorf("trailarchive: record purge: %w", err)
				}
			}
		}
		evs, err := a.prepareAll(ctx, purgeEvents(ri, partOf(items), stats))
		if err != nil || len(evs) == 0 {
			return err
		}
		return b.record(ctx, tx, evs...)
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Purged implements Backend.
func (b *SQLite) Purged(ctx context.Context, log string) ([]PurgedRange, error) {
	rows, err := b.S.DB().QueryContext(ctx, `SELECT seq_from, seq_to, archive FROM trail_seal_purges WHERE log = ? ORDER BY seq_from`, log)
	if err != nil {
		return nil, fmt.Errorf("trailarchive: purged ranges of %q: %w", log, err)
	}
	defer rows.Close()
	var out []PurgedRange
	for rows.Next() {
		var r PurgedRange
		if err := rows.Scan(&r.From, &r.To, &r.Archive); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func subjectSuffix(h Hold) string {
	if h.Subject == "" {
		return ""
	}
	return " subject " + h.Subject
}

// ranges turns seqs into sorted half-open ranges of consecutive seqs.
func ranges(seqs []int64) []trailseal.SeqRange {
	s := slices.Clone(seqs)
	slices.Sort(s)
	s = slices.Compact(s)
	var out []trailseal.SeqRange
	for _, q := range s {
		if n := len(out); n > 0 && out[n-1].To == q {
			out[n-1].To++
			continue
		}
		out = append(out, trailseal.SeqRange{From: q, To: q + 1})
	}
	return out
}

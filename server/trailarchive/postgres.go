package trailarchive

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailpgx"
	"github.com/trailhq/trail/trailseal"
)

// Postgres is the Backend of the PostgreSQL store (tables and the
// purge_event_ids function of trailpgx migration 0006_retention). It is a
// BulkPurger: the events table's monthly partitions hold every tenant, so a
// run's events are purged month by month, and a month whose every event goes
// loses its partition (detached and dropped) instead of its rows.
// It must connect as the schema's owner, as the sealer does.
type Postgres struct {
	S *trailpgx.Store
	// Now is the clock for updated_at, since and the purges' recorded
	// cutoff; default time.Now.
	Now func() time.Time
	// Transform puts retention's own events (audit.go) in their stored
	// form: the store's privacy layer, as for any event. Default: none.
	Transform trail.Transformer

	// PurgeChunk is the most events one purge transaction removes by row:
	// a month only partly past retention is deleted in chunks of this many,
	// each its own transaction (holds re-read, a retention.purge event), so
	// no transaction grows with the store. A month purged whole is one
	// transaction whatever its size: its partition is dropped. Default
	// DefaultPurgeChunk.
	PurgeChunk int

	// rowsOnly never drops a partition (benchmarks compare both ways).
	rowsOnly bool
}

// DefaultPurgeChunk is Postgres.PurgeChunk's default.
const DefaultPurgeChunk = 50_000

var (
	_ Backend    = (*Postgres)(nil)
	_ BulkPurger = (*Postgres)(nil)
)

// NewPostgres returns the Backend of s.
func NewPostgres(s *trailpgx.Store) *Postgres { return &Postgres{S: s, Now: time.Now} }

// Log implements Backend.
func (b *Postgres) Log() trailseal.Store { return b.S }

func (b *Postgres) readSet(ctx context.Context, tx pgx.Tx) (*Set, error) {
	s := &Set{}
	rows, err := tx.Query(ctx, `SELECT tenant, action, keep_hours, then_do FROM `+b.S.Table("retention_policies")+` ORDER BY tenant, action`)
	if err != nil {
		return nil, fmt.Errorf("trailarchive: read policies: %w", err)
	}
	s.Policies, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Policy, error) {
		var p Policy
		var h int64
		err := row.Scan(&p.Tenant, &p.Action, &h, &p.Then)
		p.Keep = time.Duration(h) * time.Hour
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("trailarchive: read policies: %w", err)
	}
	rows, err = tx.Query(ctx, `SELECT tenant, subject, reason, min_keep_hours, since FROM `+b.S.Table("retention_holds")+` ORDER BY tenant, subject`)
	if err != nil {
		return nil, fmt.Errorf("trailarchive: read holds: %w", err)
	}
	s.Holds, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Hold, error) {
		var h Hold
		var mk int64
		err := row.Scan(&h.Tenant, &h.Subject, &h.Reason, &mk, &h.Since)
		h.MinKeep = time.Duration(mk) * time.Hour
		h.Since = h.Since.UTC()
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("trailarchive: read holds: %w", err)
	}
	return s, nil
}

// Set implements Backend.
func (b *Postgres) Set(ctx context.Context) (*Set, error) {
	var s *Set
	err := b.S.RetentionTx(ctx, func(tx pgx.Tx) (err error) {
		s, err = b.readSet(ctx, tx)
		return err
	})
	return s, err
}

// SetPolicy implements Backend. The policies table is locked against other
// writers (and holds against new ones) while the new set is checked, so two
// concurrent conflicting rules cannot both pass CheckSet. The
// retention.policy.set event is written in the same transaction; a refused
// policy records nothing.
func (b *Postgres) SetPolicy(ctx context.Context, p Policy) error {
	if p.Keep%time.Hour != 0 {
		return fmt.Errorf("%w: keep must be whole hours", ErrInvalidPolicy)
	}
	a, err := b.ready(ctx, policyEvent(&p, nil))
	if err != nil {
		return err
	}
	return b.S.RetentionTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE `+b.S.Table("retention_policies")+` IN SHARE ROW EXCLUSIVE MODE;
			LOCK TABLE `+b.S.Table("retention_holds")+` IN SHARE MODE`); err != nil {
			return fmt.Errorf("trailarchive: set policy: %w", err)
		}
		s, err := b.readSet(ctx, tx)
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
		_, err = tx.Exec(ctx, `INSERT INTO `+b.S.Table("retention_policies")+` (tenant, action, keep_hours, then_do, updated_at)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, action) DO UPDATE SET keep_hours = excluded.keep_hours,
			then_do = excluded.then_do, updated_at = excluded.updated_at`,
			p.Tenant, p.Action, int64(p.Keep/time.Hour), string(p.Then), b.Now())
		if err != nil {
			return fmt.Errorf("trailarchive: set policy: %w", err)
		}
		return b.record(ctx, tx, ev)
	})
}

// ready prepares recording an event like template before its transaction:
// the Transform's data keys and the event's partition are made first, on
// connections of their own.
func (b *Postgres) ready(ctx context.Context, template trail.Event) (auditor, error) {
	a := auditor{t: b.Transform, now: b.Now}
	if err := a.warm(ctx, template); err != nil {
		return a, err
	}
	template.OccurredAt = a.now()
	if err := b.S.EnsurePartitions(ctx, []trail.Event{template}); err != nil {
		return a, fmt.Errorf("trailarchive: %w", err)
	}
	return a, nil
}

// record appends retention's own events in tx.
func (b *Postgres) record(ctx context.Context, tx pgx.Tx, evs ...trail.Event) error {
	if _, err := b.S.AppendTx(ctx, tx, evs); err != nil {
		return fmt.Errorf("trailarchive: record %s: %w", evs[0].Action, err)
	}
	return nil
}

// change runs one change of a policy or hold under a lock on its table (IN
// SHARE ROW EXCLUSIVE MODE: the old row read is the one changed): f does
// the change and returns the event recording it (nil: nothing to change),
// written in the same transaction.
func (b *Postgres) change(ctx context.Context, table string, template trail.Event, f func(tx pgx.Tx, s *Set) (*trail.Event, error)) (bool, error) {
	a, err := b.ready(ctx, template)
	if err != nil {
		return false, err
	}
	changed := false
	err = b.S.RetentionTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE `+b.S.Table(table)+` IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		s, err := b.readSet(ctx, tx)
		if err != nil {
			return err
		}
		ev, err := f(tx, s)
		if err != nil || ev == nil {
			return err
		}
		changed = true
		e, err := a.prepare(ctx, *ev)
		if err != nil {
			return err
		}
		return b.record(ctx, tx, e)
	})
	return changed && err == nil, err
}

// DeletePolicy implements Backend, recording retention.policy.unset in the
// same transaction.
func (b *Postgres) DeletePolicy(ctx context.Context, tenant, action string) (bool, error) {
	ok, err := b.change(ctx, "retention_policies", policyEvent(nil, &Policy{Tenant: tenant, Action: action, Keep: Day, Then: ThenArchive}),
		func(tx pgx.Tx, s *Set) (*trail.Event, error) {
			old := findPolicy(s, tenant, action)
			if old == nil {
				return nil, nil
			}
			if _, err := tx.Exec(ctx, `DELETE FROM `+b.S.Table("retention_policies")+` WHERE tenant = $1 AND action = $2`, tenant, action); err != nil {
				return nil, err
			}
			ev := policyEvent(nil, old)
			return &ev, nil
		})
	if err != nil {
		return false, fmt.Errorf("trailarchive: delete policy: %w", err)
	}
	return ok, nil
}

// PutHold implements Backend, recording retention.hold.place in the same
// transaction; under OnlyStrengthen, a refused replace is recorded (denied)
// in a transaction that changes no hold. The lock on the holds makes the
// hold checked the one replaced.
func (b *Postgres) PutHold(ctx context.Context, h Hold) error {
	if err := h.Validate(); err != nil {
		return err
	}
	var refused error
	_, err := b.change(ctx, "retention_holds", holdEvent(&h, nil), func(tx pgx.Tx, s *Set) (*trail.Event, error) {
		old := findHold(s, h.Tenant, h.Subject)
		if denied, why := checkReplace(ctx, &h, old); why != nil {
			refused = why
			return denied, nil
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+b.S.Table("retention_holds")+` (tenant, subject, reason, min_keep_hours, since)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, subject) DO UPDATE SET reason = excluded.reason,
			min_keep_hours = excluded.min_keep_hours`,
			h.Tenant, h.Subject, h.Reason, int64(h.MinKeep/time.Hour), b.Now()); err != nil {
			return nil, err
		}
		ev := holdEvent(&h, old)
		return &ev, nil
	})
	if err != nil {
		return fmt.Errorf("trailarchive: put hold: %w", err)
	}
	return refused
}

// ReleaseHold implements Backend, recording retention.hold.release in the
// same transaction.
func (b *Postgres) ReleaseHold(ctx context.Context, tenant, subject string) (bool, error) {
	ok, err := b.change(ctx, "retention_holds", holdEvent(nil, &Hold{Tenant: tenant, Subject: subject}), func(tx pgx.Tx, s *Set) (*trail.Event, error) {
		old := findHold(s, tenant, subject)
		if old == nil {
			return nil, nil
		}
		if _, err := tx.Exec(ctx, `DELETE FROM `+b.S.Table("retention_holds")+` WHERE tenant = $1 AND subject = $2`, tenant, subject); err != nil {
			return nil, err
		}
		ev := holdEvent(nil, old)
		return &ev, nil
	})
	if err != nil {
		return false, fmt.Errorf("trailarchive: release hold: %w", err)
	}
	return ok, nil
}

// Purge implements Backend, in one transaction whatever months the events
// span (a partition among them that they fill is dropped).
func (b *Postgres) Purge(ctx context.Context, log string, leaves []trailseal.SealedEvent, archive string) (int64, error) {
	var items []purgeItem
	seen := map[[16]byte]bool{}
	for i := range leaves {
		if l := &leaves[i]; l.Event != nil && !seen[l.EventID] {
			seen[l.EventID] = true
			items = append(items, purgeItem{l, archive})
		}
	}
	if len(items) == 0 {
		return 0, nil
	}
	n, err := b.purge(ctx, items)
	if err != nil && !errors.Is(err, ErrHeld) {
		return 0, fmt.Errorf("trailarchive: purge %s: %w", log, err)
	}
	return n, err
}

// purgeItem is one event to purge and the archive holding it.
type purgeItem struct {
	leaf    *trailseal.SealedEvent
	archive string
}

// PurgeBatches implements BulkPurger. The events are grouped by the month
// of occurred_at (the partition holding them), oldest first; each month is
// one transaction that locks the holds table IN SHARE MODE (a hold being
// placed waits for it, and it for a hold being placed), re-reads the holds,
// fails with ErrHeld removing nothing of that month when one covers an
// event, and else calls purge_event_ids: it drops the partition when the
// month's events are all of its rows, and deletes them by ID otherwise.
func (b *Postgres) PurgeBatches(ctx context.Context, batches []*Batch, progress func(handled int64)) (int64, error) {
	months := map[int][]purgeItem{}
	seen := map[[16]byte]bool{}
	for _, bt := range batches {
		archive := ""
		if bt.Then == ThenArchive {
			archive = bt.Key
		}
		for i := range bt.Leaves {
			l := &bt.Leaves[i]
			if l.Event == nil || seen[l.EventID] {
				continue
			}
			seen[l.EventID] = true
			at := l.Event.OccurredAt.UTC()
			m := at.Year()*12 + int(at.Month()) - 1
			months[m] = append(months[m], purgeItem{l, archive})
		}
	}
	keys := make([]int, 0, len(months))
	for m := range months {
		keys = append(keys, m)
	}
	slices.Sort(keys)
	var n, handled int64
	for _, m := range keys {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		chunks, err := b.chunks(ctx, m, months[m])
		if err != nil {
			return n, fmt.Errorf("trailarchive: purge %04d-%02d: %w", m/12, m%12+1, err)
		}
		for _, items := range chunks {
			k, err := b.purge(ctx, items)
			if err != nil {
				if errors.Is(err, ErrHeld) {
					return n, err
				}
				return n, fmt.Errorf("trailarchive: purge %04d-%02d: %w", m/12, m%12+1, err)
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

// chunks splits the items of month m (year*12 + month-1) into the
// transactions that purge them: one when they are few, or when they are
// every row of the month's partition (then purge_event_ids drops it, which
// costs little whatever the size); else PurgeChunk at a time. The count is
// only a hint: purge_event_ids checks coverage itself under a lock.
func (b *Postgres) chunks(ctx context.Context, m int, items []purgeItem) ([][]purgeItem, error) {
	size := b.PurgeChunk
	if size <= 0 {
		size = DefaultPurgeChunk
	}
	if len(items) <= size {
		return [][]purgeItem{items}, nil
	}
	part := fmt.Sprintf("events_p%04d%02d", m/12, m%12+1)
	var rows int64
	err := b.S.RetentionTx(ctx, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, pgx.Identifier{b.S.Schema(), part}.Sanitize()).Scan(&exists); err != nil || !exists {
			return err
		}
		return tx.QueryRow(ctx, `SELECT count(*) FROM `+b.S.Table(part)).Scan(&rows)
	})
	if err != nil {
		return nil, err
	}
	if rows == int64(len(items)) && !b.rowsOnly {
		return [][]purgeItem{items}, nil
	}
	var out [][]purgeItem
	for len(items) > 0 {
		k := min(len(items), size)
		out = append(out, items[:k:k])
		items = items[k:]
	}
	return out, nil
}

// purge removes items in one transaction that re-reads the holds first,
// and records one retention.purge event per tenant it purges from. The
// events are written before purge_event_ids, counted from the named events
// still there (a plan's events are sealed, so purge_event_ids removes
// exactly those): their row in this month's partition also keeps a purge of
// the current month from dropping the partition under them.
func (b *Postgres) purge(ctx context.Context, items []purgeItem) (int64, error) {
	ri := runOf(ctx)
	a := auditor{t: b.Transform, now: b.Now}
	if err := a.warmPurge(ctx, items); err != nil {
		return 0, err
	}
	if err := b.S.EnsurePartitions(ctx, []trail.Event{{OccurredAt: a.now()}}); err != nil {
		return 0, fmt.Errorf("trailarchive: %w", err)
	}
	var n int64
	err := b.S.RetentionTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE `+b.S.Table("retention_holds")+` IN SHARE MODE`); err != nil {
			return err
		}
		s, err := b.readSet(ctx, tx)
		if err != nil {
			return err
		}
		ids := make([]pgtype.UUID, len(items))
		archives := make([]string, len(items))
		for i, it := range items {
			if h, held := s.Held(it.leaf.Event); held {
				return fmt.Errorf("%w: tenant %s%s, event %s", ErrHeld, h.Tenant, subjectSuffix(h), it.leaf.EventID)
			}
			ids[i] = pgtype.UUID{Bytes: it.leaf.EventID, Valid: true}
			archives[i] = it.archive
		}
		// The sealed events still there: what purge_event_ids removes.
		// The leaf's occurred_at names the month partition; LATERAL … LIMIT
		// 1 keeps it one probe of that partition's id key per event.
		rows, err := tx.Query(ctx, `SELECT DISTINCT u.id FROM unnest($1::uuid[]) u(id)
			JOIN `+b.S.Table("seal_leaves")+` l ON l.event_id = u.id
			CROSS JOIN LATERAL (SELECT 1 FROM `+b.S.Table("events")+` e WHERE e.occurred_at = l.occurred_at AND e.id = u.id LIMIT 1) e`, ids)
		if err != nil {
			return err
		}
		present, err := pgx.CollectRows(rows, pgx.RowTo[pgtype.UUID])
		if err != nil {
			return err
		}
		there := make(map[[16]byte]bool, len(present))
		for _, id := range present {
			there[id.Bytes] = true
		}
		stats := map[string]*purgeStats{}
		for _, it := range items {
			if there[it.leaf.EventID] {
				delete(there, it.leaf.EventID)
				newStats(stats, trailseal.LogName(it.leaf.Event.Tenant)).add(s, it.leaf, it.archive)
			}
		}
		want := int64(len(present))
		evs, err := a.prepareAll(ctx, purgeEvents(ri, partOf(items), stats))
		if err != nil {
			return err
		}
		if len(evs) > 0 {
			if err := b.record(ctx, tx, evs...); err != nil {
				return err
			}
		}
		n, err = b.S.PurgeEventIDs(ctx, tx, ids, archives, b.Now(), !b.rowsOnly)
		if err == nil && n != want {
			err = fmt.Errorf("trailarchive: purge removed %d events, %d were there (nothing removed)", n, want)
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Purged implements Backend.
func (b *Postgres) Purged(ctx context.Context, log string) ([]PurgedRange, error) {
	rs, err := b.S.PurgedBatches(ctx, log)
	if err != nil {
		return nil, fmt.Errorf("trailarchive: %w", err)
	}
	out := make([]PurgedRange, len(rs))
	for i, r := range rs {
		out[i] = PurgedRange{From: r.From, To: r.To, Archive: r.Archive}
	}
	return out, nil
}

package trailpgx

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/hashrange"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/tlog"
)

// The Store implements trailseal.Store over the tables of migration
// 0004_seal: the pending queue is filled by a statement trigger on events
// (0016; on event_ids before), so an event is queued in the statement that
// stores it; sealing writes leaves, stored hashes,
// log sizes and checkpoints into their own tables, never the events, under a
// lease row whose fencing epoch every sealing transaction checks (no
// advisory locks).
var (
	_ trailseal.Store     = (*Store)(nil)
	_ trailseal.LogStater = (*Store)(nil)
)

// qualified prefixes each of selectColumns with "e.".
var qualifiedColumns = func() string {
	parts := strings.Split(selectColumns, ",")
	for i, c := range parts {
		parts[i] = "e." + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}()

func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.with(ctx, func(c *pgx.Conn) error {
		return pgx.BeginFunc(ctx, c, fn)
	})
}

// Lease implements trailseal.Store on the database's clock. Taking or
// renewing is one statement (the sealer renews at every step): an upsert
// that, on the existing row, changes it only when the lease is free,
// expired or already this holder's — the row is locked either way — and
// returns nothing when another holder's lease runs.
func (s *Store) Lease(ctx context.Context, name, holder string, ttl time.Duration) (epoch int64, ok bool, err error) {
	if name == "" || holder == "" {
		return 0, false, errors.New("trailpgx: lease name and holder must not be empty")
	}
	if ttl <= 0 {
		return s.releaseLease(ctx, name, holder)
	}
	err = s.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `INSERT INTO `+s.schema+`.seal_leases AS l (name, holder, epoch, expires_at)
			VALUES ($1, $2, 1, clock_timestamp() + $3 * interval '1 microsecond')
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,
				epoch = CASE WHEN l.holder = excluded.holder AND l.expires_at > clock_timestamp() THEN l.epoch ELSE l.epoch + 1 END
			WHERE l.holder = excluded.holder OR l.holder = '' OR l.expires_at <= clock_timestamp()
			RETURNING l.epoch`, name, holder, ttl.Microseconds()).Scan(&epoch)
	})
	switch {
	case err == nil:
		return epoch, true, nil
	case errors.Is(err, pgx.ErrNoRows): // another holder's lease runs
		epoch, err = s.leaseEpoch(ctx, name)
		if err == nil {
			return epoch, false, nil
		}
	}
	return 0, false, fmt.Errorf("trailpgx: lease %q: %w", name, err)
}

// leaseEpoch returns the current epoch of the lease called name (0 when it
// was never taken).
func (s *Store) leaseEpoch(ctx context.Context, name string) (epoch int64, err error) {
	err = s.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT epoch FROM `+s.schema+`.seal_leases WHERE name = $1`, name).Scan(&epoch)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return epoch, err
}

// releaseLease ends holder's lease called name now, if holder holds it.
func (s *Store) releaseLease(ctx context.Context, name, holder string) (epoch int64, ok bool, err error) {
	err = s.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `UPDATE `+s.schema+`.seal_leases SET expires_at = clock_timestamp()
			WHERE name = $1 AND holder = $2 AND expires_at > clock_timestamp() RETURNING epoch`, name, holder).Scan(&epoch)
	})
	if errors.Is(err, pgx.ErrNoRows) { // not this holder's (or not running): nothing to release
		epoch, err = s.leaseEpoch(ctx, name)
	}
	if err != nil {
		return 0, false, fmt.Errorf("trailpgx: lease %q: %w", name, err)
	}
	return epoch, false, nil
}

// checkFence fails with trailseal.ErrFenced unless f is the lease's current
// epoch. It holds the lease row (FOR SHARE) until the transaction ends, so
// a takeover, which updates that row, waits for this write to finish and
// the next write of the stale sealer sees the new epoch.
func (s *Store) checkFence(ctx context.Context, tx pgx.Tx, f trailseal.Fence) error {
	var epoch int64
	err := tx.QueryRow(ctx, `SELECT epoch FROM `+s.schema+`.seal_leases WHERE name = $1 FOR SHARE`, f.Lease).Scan(&epoch)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && epoch != f.Epoch) {
		return trailseal.ErrFenced
	}
	return err
}

// headJoin selects the events columns cols of the first $1 pending events,
// oldest first: the queue in its key's order, each row's event by an index
// probe into the one partition its time names, stopping at $1 events found
// (a pending row whose event is gone is skipped). A plain join let the
// planner hash the whole queue against every event and sort: a second per
// call with a backlog of 90,000, and growing with it. The LIMIT 1 keeps the
// lateral subquery from being flattened into such a join. A pending row
// whose ID already has a leaf is skipped: a second event under a sealed ID
// (possible only in a race with the sealer, see the seal queue's trigger in
// migration 0016) would otherwise stop the sealer at its leaf's unique key;
// it stays queued, and verify reports it (unsealed).
func (s *Store) headJoin(cols string) string {
	return `SELECT ` + cols + ` FROM ` + s.schema + `.seal_pending p
		CROSS JOIN LATERAL (SELECT ` + cols + ` FROM ` + s.schema + `.events e
			WHERE e.tenant = p.tenant AND e.occurred_at = p.occurred_at AND e.id = p.event_id LIMIT 1) e
		LEFT JOIN LATERAL (SELECT true AS sealed FROM ` + s.schema + `.seal_leaves l WHERE l.event_id = p.event_id LIMIT 1) l ON true
		WHERE l.sealed IS NULL
		ORDER BY p.pos LIMIT $1`
}

// Pending implements trailseal.Store.
func (s *Store) Pending(ctx context.Context, limit int) ([]trail.Event, error) {
	var out []trail.Event
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, s.headJoin(qualifiedColumns), limit)
		if err != nil {
			return err
		}
		out, err = scanRows(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("trailpgx: pending: %w", err)
	}
	return out, nil
}

var _ trailseal.PendingSkipper = (*Store)(nil)

// PendingExcept implements trailseal.PendingSkipper in two statements on
// one connection: the queue's first limit+len(skip) rows in key order,
// without their events (an index scan of the queue alone), of which the
// rows of skip are dropped here; then the events of the rows left, one
// index probe each, in queue order, up to limit (a row whose event is gone
// does not shorten the batch, as in Pending). The sealer calls it while the
// batch skip commits, so the first rows of the queue are mostly skip's: a
// NOT IN over them is one hash or one scan per row depending on the plan
// PostgreSQL picks for a bound array, a set in Go is neither.
func (s *Store) PendingExcept(ctx context.Context, limit int, skip []uuid.UUID) ([]trail.Event, error) {
	if len(skip) == 0 {
		return s.Pending(ctx, limit)
	}
	skipped := make(map[uuid.UUID]struct{}, len(skip))
	for _, id := range skip {
		skipped[id] = struct{}{}
	}
	var out []trail.Event
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, s.pendingHeadSQL(), limit+len(skip))
		if err != nil {
			return err
		}
		var (
			tenants []string
			ats     []time.Time
			ids     []pgtype.UUID
		)
		for rows.Next() {
			var tenant string
			var at time.Time
			var id pgtype.UUID
			if err := rows.Scan(&tenant, &at, &id); err != nil {
				rows.Close()
				return err
			}
			if _, ok := skipped[uuid.UUID(id.Bytes)]; ok {
				continue
			}
			tenants, ats, ids = append(tenants, tenant), append(ats, at), append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(ids) == 0 {
			return err
		}
		rows, err = c.Query(ctx, `SELECT `+qualifiedColumns+` FROM unnest($1::text[], $2::timestamptz[], $3::uuid[])
				WITH ORDINALITY AS p(tenant, occurred_at, event_id, n)
			CROSS JOIN LATERAL (SELECT `+qualifiedColumns+` FROM `+s.schema+`.events e
				WHERE e.tenant = p.tenant AND e.occurred_at = p.occurred_at AND e.id = p.event_id LIMIT 1) e
			ORDER BY p.n LIMIT $4`, tenants, ats, ids, limit)
		if err != nil {
			return err
		}
		out, err = scanRows(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("trailpgx: pending: %w", err)
	}
	return out, nil
}

// pendingHeadSQL selects the queue's first $1 rows, without their events,
// less those whose ID already has a leaf (see headJoin). The LIMIT is
// taken first, in a subquery, and each row's leaf is probed by a LATERAL …
// LIMIT 1: with a NOT EXISTS the planner anti-joined the whole queue against
// every leaf, a cost that grew with the log (23–72 ms per call up to 100k
// leaves, 300–480 ms past 500k; TestAttachEventsPlan).
func (s *Store) pendingHeadSQL() string {
	return `SELECT p.tenant, p.occurred_at, p.event_id FROM (SELECT tenant, occurred_at, event_id, pos FROM ` + s.schema + `.seal_pending
			ORDER BY pos LIMIT $1) p
		LEFT JOIN LATERAL (SELECT true AS sealed FROM ` + s.schema + `.seal_leaves l WHERE l.event_id = p.event_id LIMIT 1) l ON true
		WHERE l.sealed IS NULL
		ORDER BY p.pos`
}

// OldestPending returns the RecordedAt of the oldest unsealed event, and
// false when nothing waits: the sealing lag is now minus that time.
func (s *Store) OldestPending(ctx context.Context) (time.Time, bool, error) {
	var at time.Time
	err := s.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, s.headJoin("e.recorded_at"), 1).Scan(&at)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("trailpgx: oldest pending: %w", err)
	}
	return at.UTC(), true, nil
}

// Seal implements trailseal.Store: one transaction, its statements sent in
// one round trip (pipelined). The fence and the logs' sizes are read first
// in it (the lease row FOR SHARE, the size rows FOR UPDATE in a fixed
// order) and checked before COMMIT; when either check fails the transaction
// is rolled back, so nothing the later statements wrote remains. Round trips,
// not rows, were a step's cost on a loaded machine.
func (s *Store) Seal(ctx context.Context, fence trailseal.Fence, b trailseal.SealBatch) error {
	var (
		logs     = make([]string, len(b.Sizes))
		newSizes = make([]int64, len(b.Sizes))
		lLog     = make([]string, len(b.Leaves))
		lSeq     = make([]int64, len(b.Leaves))
		lID      = make([]pgtype.UUID, len(b.Leaves))
		lHash    = make([][]byte, len(b.Leaves))
		lAt      = make([]pgtype.Timestamptz, len(b.Leaves))
		hLog     = make([]string, len(b.Hashes))
		hIdx     = make([]int64, len(b.Hashes))
		hHash    = make([][]byte, len(b.Hashes))
		done     = make([]pgtype.UUID, len(b.Done))
	)
	for i, ls := range b.Sizes {
		logs[i], newSizes[i] = ls.Log, ls.NewSize
	}
	for i := range b.Leaves {
		l := &b.Leaves[i]
		lLog[i], lSeq[i], lID[i], lHash[i] = l.Log, l.Seq, pgtype.UUID{Bytes: l.EventID, Valid: true}, l.Hash[:]
		lAt[i] = pgtype.Timestamptz{Time: l.OccurredAt, Valid: !l.OccurredAt.IsZero()}
	}
	for i := range b.Hashes {
		h := &b.Hashes[i]
		hLog[i], hIdx[i], hHash[i] = h.Log, h.Index, h.Hash[:]
	}
	for i, id := range b.Done {
		done[i] = pgtype.UUID{Bytes: id, Valid: true}
	}
	q := &pgx.Batch{}
	q.Queue(`SELECT epoch FROM `+s.schema+`.seal_leases WHERE name = $1 FOR SHARE`, fence.Lease)
	// A log without a size row is new.
	q.Queue(`SELECT log, size FROM `+s.schema+`.seal_logs WHERE log = ANY($1) ORDER BY log FOR UPDATE`, logs)
	q.Queue(`INSERT INTO `+s.schema+`.seal_leaves (log, seq, event_id, hash, occurred_at)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::uuid[], $4::bytea[], $5::timestamptz[])`, lLog, lSeq, lID, lHash, lAt)
	q.Queue(`INSERT INTO `+s.schema+`.seal_hashes (log, idx, hash)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[])`, hLog, hIdx, hHash)
	q.Queue(`INSERT INTO `+s.schema+`.seal_logs (log, size)
		SELECT * FROM unnest($1::text[], $2::bigint[])
		ON CONFLICT (log) DO UPDATE SET size = excluded.size`, logs, newSizes)
	q.Queue(`DELETE FROM `+s.schema+`.seal_pending WHERE event_id = ANY($1::uuid[])`, done)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		br := tx.SendBatch(ctx, q)
		defer br.Close()
		var epoch int64
		err := br.QueryRow().Scan(&epoch)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && epoch != fence.Epoch) {
			return trailseal.ErrFenced
		}
		if err != nil {
			return err
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		sizes := map[string]int64{}
		for rows.Next() {
			var l string
			var n int64
			if err := rows.Scan(&l, &n); err != nil {
				rows.Close()
				return err
			}
			sizes[l] = n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, ls := range b.Sizes {
			if sizes[ls.Log] != ls.OldSize {
				return fmt.Errorf("%w: log %q has %d leaves, batch extends %d", trailseal.ErrConflict, ls.Log, sizes[ls.Log], ls.OldSize)
			}
		}
		if _, err := br.Exec(); err != nil { // leaves
			if isUniqueViolation(err) {
				return fmt.Errorf("%w: %v", trailseal.ErrConflict, err)
			}
			return err
		}
		for range 3 { // hashes, sizes, pending
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		return br.Close()
	})
	if err != nil {
		if errors.Is(err, trailseal.ErrFenced) || errors.Is(err, trailseal.ErrConflict) {
			return err
		}
		return fmt.Errorf("trailpgx: seal: %w", err)
	}
	return nil
}

// TreeSize implements trailseal.Store.
func (s *Store) TreeSize(ctx context.Context, log string) (int64, error) {
	var n int64
	err := s.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT size FROM `+s.schema+`.seal_logs WHERE log = $1`, log).Scan(&n)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("trailpgx: tree size of %q: %w", log, err)
	}
	return n, nil
}

// ReadHashes implements trailseal.Store.
func (s *Store) ReadHashes(ctx context.Context, log string, indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	if len(indexes) == 0 {
		return out, nil
	}
	got := make(map[int64]tlog.Hash, len(indexes))
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT idx, hash FROM `+s.schema+`.seal_hashes WHERE log = $1 AND idx = ANY($2)`, log, indexes)
		if err != nil {
			return err
		}
		defer rows.Close()
		sc := newRawScanner(rows) // scanrow.go
		for rows.Next() {
			var x int64
			var h []byte
			if err := sc.scan(rows, &x, &h); err != nil {
				return err
			}
			if len(h) != tlog.HashSize {
				return fmt.Errorf("stored hash %d has %d bytes", x, len(h))
			}
			got[x] = tlog.Hash(h)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("trailpgx: read hashes of %q: %w", log, err)
	}
	for i, x := range indexes {
		h, ok := got[x]
		if !ok {
			return nil, fmt.Errorf("trailpgx: log %q has no stored hash %d", log, x)
		}
		out[i] = h
	}
	return out, nil
}

// Leaves implements trailseal.Store.
func (s *Store) Leaves(ctx context.Context, log string, from, to int64) ([]trailseal.SealedEvent, error) {
	var out []trailseal.SealedEvent
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT seq, event_id, hash, occurred_at FROM `+s.schema+`.seal_leaves
			WHERE log = $1 AND seq >= $2 AND seq < $3 ORDER BY seq`, log, from, to)
		if err != nil {
			return err
		}
		sc := newRawScanner(rows) // scanrow.go
		for rows.Next() {
			var se trailseal.SealedEvent
			var h []byte
			if err := sc.scan(rows, &se.Seq, &se.EventID, &h, &se.OccurredAt); err != nil {
				rows.Close()
				return err
			}
			if len(h) != tlog.HashSize {
				rows.Close()
				return fmt.Errorf("malformed leaf row at seq %d", se.Seq)
			}
			se.Log, se.Hash = log, tlog.Hash(h)
			out = append(out, se)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(out) == 0 {
			return err
		}
		return s.attachEvents(ctx, c, out)
	})
	if err != nil {
		return nil, fmt.Errorf("trailpgx: leaves of %q: %w", log, err)
	}
	return out, nil
}

// attachEventsSQL reads the events whose IDs and times are $1 and $2 (the
// leaves' occurred_at, which prunes to one partition at run time), one
// probe of that partition's id key per event: LATERAL … LIMIT 1 pins the
// plan. A plain JOIN let the planner, which expects one row from it,
// hash-join against a sequential scan of the whole month's partition: 177
// ms per 1,000 events at 100k events, growing with the partition
// (TestAttachEventsPlan).
func (s *Store) attachEventsSQL() string {
	return `SELECT ` + qualifiedColumns + ` FROM unnest($1::uuid[], $2::timestamptz[]) AS i(id, occurred_at)
		CROSS JOIN LATERAL (SELECT ` + qualifiedColumns + ` FROM ` + s.schema + `.events e
			WHERE e.occurred_at = i.occurred_at AND e.id = i.id LIMIT 1) e`
}

// attachEvents sets the Event of each leaf whose event still exists.
func (s *Store) attachEvents(ctx context.Context, c *pgx.Conn, ses []trailseal.SealedEvent) error {
	if len(ses) == 0 {
		return nil
	}
	// pgtype.UUID encodes natively (binary uuid[]); []uuid.UUID went
	// through reflection and driver.Valuer, a quarter of verify's CPU.
	ids := make([]pgtype.UUID, len(ses))
	ats := make([]pgtype.Timestamptz, len(ses))
	for i := range ses {
		ids[i] = pgtype.UUID{Bytes: ses[i].EventID, Valid: true}
		ats[i] = pgtype.Timestamptz{Time: ses[i].OccurredAt, Valid: !ses[i].OccurredAt.IsZero()}
	}
	rows, err := c.Query(ctx, s.attachEventsSQL(), ids, ats)
	if err != nil {
		return err
	}
	evs, err := scanRows(rows)
	if err != nil {
		return err
	}
	byID := make(map[uuid.UUID]*trail.Event, len(evs))
	for i := range evs {
		byID[evs[i].ID] = &evs[i]
	}
	for i := range ses {
		ses[i].Event = byID[ses[i].EventID]
	}
	return s.attachMoved(ctx, c, ses) // verify_moved.go: an edited occurred_at is modified, not missing
}

// LeafOf implements trailseal.Store.
func (s *Store) LeafOf(ctx context.Context, id uuid.UUID) (trailseal.Leaf, error) {
	l := trailseal.Leaf{EventID: id}
	var found, stored bool
	err := s.with(ctx, func(c *pgx.Conn) error {
		var h []byte
		var at pgtype.Timestamptz
		err := c.QueryRow(ctx, `SELECT log, seq, hash, occurred_at FROM `+s.schema+`.seal_leaves WHERE event_id = $1`, id).Scan(&l.Log, &l.Seq, &h, &at)
		switch {
		case err == nil:
			if len(h) != tlog.HashSize {
				return errors.New("malformed leaf hash")
			}
			l.Hash, found = tlog.Hash(h), true
			if at.Valid {
				l.OccurredAt = at.Time.UTC()
			}
			return nil
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		return c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+s.schema+`.events WHERE id = $1)`, id).Scan(&stored)
	})
	switch {
	case err != nil:
		return l, fmt.Errorf("trailpgx: leaf of %s: %w", id, err)
	case found:
		return l, nil
	case stored:
		return l, trailseal.ErrNotSealed
	}
	return l, trailseal.ErrUnknownEvent
}

// LeafIndexes returns the leaf index (tenant sequence) of each of ids that
// is sealed; unsealed and unknown IDs are absent from the map.
func (s *Store) LeafIndexes(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]int64, error) {
	out := make(map[uuid.UUID]int64, len(ids))
	err := s.with(ctx, func(c *pgx.Conn) error {
		return queryMap(ctx, c, out, `SELECT event_id, seq FROM `+s.schema+`.seal_leaves WHERE event_id = ANY($1)`, ids)
	})
	if err != nil {
		return nil, fmt.Errorf("trailpgx: leaf indexes: %w", err)
	}
	return out, nil
}

// Unsealed implements trailseal.Store.
func (s *Store) Unsealed(ctx context.Context, log string) ([]uuid.UUID, error) {
	tenant := trailseal.TenantOf(log)
	byTenant, err := s.unsealed(ctx, []string{tenant})
	if err != nil {
		return nil, fmt.Errorf("trailpgx: unsealed of %q: %w", log, err)
	}
	return byTenant[tenant], nil
}

// unsealed returns the IDs of the events of tenants neither pending nor
// sealed, per tenant, in recording order; and the events queued under an
// ID that already has a leaf (a second event under a sealed ID, which the
// sealer skips: see headJoin).
func (s *Store) unsealed(ctx context.Context, tenants []string) (map[string][]uuid.UUID, error) {
	out := map[string][]uuid.UUID{}
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT e.tenant, e.id, e.recorded_at FROM `+s.schema+`.events e
			WHERE e.tenant = ANY($1)
			  AND NOT EXISTS (SELECT 1 FROM `+s.schema+`.seal_pending p WHERE p.event_id = e.id)
			  AND NOT EXISTS (SELECT 1 FROM `+s.schema+`.seal_leaves l WHERE l.event_id = e.id)
			UNION ALL
			SELECT e.tenant, e.id, e.recorded_at FROM `+s.schema+`.seal_pending p
			JOIN `+s.schema+`.seal_leaves l ON l.event_id = p.event_id
			JOIN `+s.schema+`.events e ON e.tenant = p.tenant AND e.occurred_at = p.occurred_at AND e.id = p.event_id
			WHERE p.tenant = ANY($1)
			ORDER BY 3, 2`, tenants)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var tenant string
			var id uuid.UUID
			var at time.Time
			if err := rows.Scan(&tenant, &id, &at); err != nil {
				return err
			}
			out[tenant] = append(out[tenant], id)
		}
		return rows.Err()
	})
	return out, err
}

// SaveCheckpoint implements trailseal.Store.
func (s *Store) SaveCheckpoint(ctx context.Context, fence trailseal.Fence, cp trailseal.Checkpoint) error {
	err := s.saveCheckpoints(ctx, fence, []trailseal.Checkpoint{cp})
	if err != nil && !errors.Is(err, trailseal.ErrFenced) {
		return fmt.Errorf("trailpgx: save checkpoint of %q: %w", cp.Log, err)
	}
	return err
}

var _ trailseal.BatchCheckpointSaver = (*Store)(nil)

// SaveCheckpoints implements trailseal.BatchCheckpointSaver: one
// transaction, one INSERT.
func (s *Store) SaveCheckpoints(ctx context.Context, fence trailseal.Fence, cps []trailseal.Checkpoint) error {
	err := s.saveCheckpoints(ctx, fence, cps)
	if err != nil && !errors.Is(err, trailseal.ErrFenced) {
		return fmt.Errorf("trailpgx: save %d checkpoints: %w", len(cps), err)
	}
	return err
}

func (s *Store) saveCheckpoints(ctx context.Context, fence trailseal.Fence, cps []trailseal.Checkpoint) error {
	var (
		logs  = make([]string, len(cps))
		sizes = make([]int64, len(cps))
		roots = make([][]byte, len(cps))
		notes = make([]string, len(cps))
		times = make([]time.Time, len(cps))
	)
	for i, cp := range cps {
		logs[i], sizes[i], roots[i], notes[i], times[i] = cp.Log, cp.Size, cp.Root[:], cp.Note, cp.Time
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if err := s.checkFence(ctx, tx, fence); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO `+s.schema+`.seal_checkpoints (log, size, root, note, created_at)
			SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::text[], $5::timestamptz[])`, logs, sizes, roots, notes, times)
		return err
	})
}

func scanCheckpoint(scan func(dest ...any) error) (trailseal.Checkpoint, error) {
	var cp trailseal.Checkpoint
	var root []byte
	if err := scan(&cp.Log, &cp.Size, &root, &cp.Note, &cp.Time); err != nil {
		return cp, err
	}
	if len(root) == tlog.HashSize {
		cp.Root = tlog.Hash(root)
	} // else a damaged row: the verifier reports it against its signed text
	cp.Time = cp.Time.UTC()
	return cp, nil
}

// Checkpoints implements trailseal.Store.
func (s *Store) Checkpoints(ctx context.Context, log string) ([]trailseal.Checkpoint, error) {
	byLog, err := s.checkpoints(ctx, []string{log})
	if err != nil {
		return nil, fmt.Errorf("trailpgx: checkpoints of %q: %w", log, err)
	}
	return byLog[log], nil
}

// LatestCheckpoint implements trailseal.Store.
func (s *Store) LatestCheckpoint(ctx context.Context, log string) (trailseal.Checkpoint, error) {
	var cp trailseal.Checkpoint
	err := s.with(ctx, func(c *pgx.Conn) error {
		var err error
		cp, err = scanCheckpoint(c.QueryRow(ctx, `SELECT log, size, root, note, created_at FROM `+s.schema+`.seal_checkpoints
			WHERE log = $1 ORDER BY id DESC LIMIT 1`, log).Scan)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return cp, trailseal.ErrNoCheckpoint
	}
	if err != nil {
		return cp, fmt.Errorf("trailpgx: latest checkpoint of %q: %w", log, err)
	}
	return cp, nil
}

func (s *Store) logNames() string {
	return `SELECT log FROM ` + s.schema + `.seal_logs WHERE size > 0
		UNION SELECT DISTINCT log FROM ` + s.schema + `.seal_leaves
		UNION SELECT DISTINCT log FROM ` + s.schema + `.seal_checkpoints`
}

// Logs implements trailseal.Store.
func (s *Store) Logs(ctx context.Context) ([]string, error) {
	var out []string
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT log FROM (`+s.logNames()+`) x ORDER BY log COLLATE "C"`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("trailpgx: logs: %w", err)
	}
	return out, nil
}

// LogStates implements trailseal.LogStater in one query.
func (s *Store) LogStates(ctx context.Context) ([]trailseal.LogState, error) {
	var out []trailseal.LogState
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `WITH names AS (`+s.logNames()+`)
			SELECT n.log, coalesce(l.size, 0), coalesce(c.size, 0), c.created_at
			FROM names n
			LEFT JOIN `+s.schema+`.seal_logs l ON l.log = n.log
			LEFT JOIN LATERAL (SELECT size, created_at FROM `+s.schema+`.seal_checkpoints x
				WHERE x.log = n.log ORDER BY x.id DESC LIMIT 1) c ON true
			ORDER BY n.log COLLATE "C"`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var st trailseal.LogState
			var at *time.Time
			if err := rows.Scan(&st.Log, &st.Size, &st.CheckpointSize, &at); err != nil {
				return err
			}
			if at != nil {
				st.CheckpointTime = at.UTC()
			}
			out = append(out, st)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("trailpgx: log states: %w", err)
	}
	return out, nil
}

// Verification's read paths for many small logs: one query per call for
// any number of logs, their names (or ranges) passed as arrays.
var (
	_ trailseal.BatchReader        = (*Store)(nil)
	_ trailseal.BatchPurgeRecorder = (*Store)(nil)
)

// CheckpointsOf implements trailseal.BatchReader.
func (s *Store) CheckpointsOf(ctx context.Context, logs []string) (map[string][]trailseal.Checkpoint, error) {
	out, err := s.checkpoints(ctx, logs)
	if err != nil {
		return nil, fmt.Errorf("trailpgx: checkpoints: %w", err)
	}
	return out, nil
}

// checkpoints returns the checkpoints of logs, per log, oldest first.
func (s *Store) checkpoints(ctx context.Context, logs []string) (map[string][]trailseal.Checkpoint, error) {
	out := map[string][]trailseal.Checkpoint{}
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT log, size, root, note, created_at FROM `+s.schema+`.seal_checkpoints
			WHERE log = ANY($1) ORDER BY log, id`, logs)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			cp, err := scanCheckpoint(rows.Scan)
			if err != nil {
				return err
			}
			out[cp.Log] = append(out[cp.Log], cp)
		}
		return rows.Err()
	})
	return out, err
}

// TreeSizes implements trailseal.BatchReader.
func (s *Store) TreeSizes(ctx context.Context, logs []string) (map[string]int64, error) {
	out := make(map[string]int64, len(logs))
	err := s.with(ctx, func(c *pgx.Conn) error {
		return queryMap(ctx, c, out, `SELECT log, size FROM `+s.schema+`.seal_logs WHERE log = ANY($1)`, logs)
	})
	if err != nil {
		return nil, fmt.Errorf("trailpgx: tree sizes: %w", err)
	}
	return out, nil
}

// queryMap adds each (key, value) row sql returns to out.
func queryMap[K comparable, V any](ctx context.Context, c *pgx.Conn, out map[K]V, sql string, args ...any) error {
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k K
		var v V
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		out[k] = v
	}
	return rows.Err()
}

// rangeScan: LeavesOf and HashesOf read each range through a LATERAL
// subquery that OFFSET 0 keeps from being flattened into a join. As a plain
// join, the planner (which guesses ~1,000 rows per range) hash-joined the
// ranges against a parallel sequential scan of the whole table once there
// were ~100 ranges: the sealer's edge read for 10 logs (180 single-hash
// ranges) took 9.9 s over 3.7 M stored hashes, 55 ms with the fence; a
// verify of many small logs did that once per group of logs.

// hashesOfSQL reads the stored hashes of ranges ($1 logs, $2 from, $3 to),
// one index range scan per range (rangeScan).
func (s *Store) hashesOfSQL() string {
	return `SELECT r.k, h.idx, h.hash
		FROM unnest($1::text[], $2::int8[], $3::int8[]) WITH ORDINALITY r(log, lo, hi, k)
		CROSS JOIN LATERAL (SELECT h.idx, h.hash FROM ` + s.schema + `.seal_hashes h
			WHERE h.log = r.log AND h.idx >= r.lo AND h.idx < r.hi OFFSET 0) h
		ORDER BY r.k, h.idx`
}

// rangeArgs returns ranges as three parallel arrays for unnest.
func rangeArgs(ranges []trailseal.LogRange) ([]string, []int64, []int64) {
	logs, from, to := make([]string, len(ranges)), make([]int64, len(ranges)), make([]int64, len(ranges))
	for i, r := range ranges {
		logs[i], from[i], to[i] = r.Log, r.From, r.To
	}
	return logs, from, to
}

// LeavesOf implements trailseal.BatchReader.
func (s *Store) LeavesOf(ctx context.Context, ranges []trailseal.LogRange) ([][]trailseal.SealedEvent, error) {
	out := make([][]trailseal.SealedEvent, len(ranges))
	if len(ranges) == 0 {
		return out, nil
	}
	logs, from, to := rangeArgs(ranges)
	err := s.with(ctx, func(c *pgx.Conn) error {
		// One index range scan per range (rangeScan).
		rows, err := c.Query(ctx, `SELECT r.k, l.seq, l.event_id, l.hash, l.occurred_at
			FROM unnest($1::text[], $2::int8[], $3::int8[]) WITH ORDINALITY r(log, lo, hi, k)
			CROSS JOIN LATERAL (SELECT l.seq, l.event_id, l.hash, l.occurred_at FROM `+s.schema+`.seal_leaves l
				WHERE l.log = r.log AND l.seq >= r.lo AND l.seq < r.hi OFFSET 0) l
			ORDER BY r.k, l.seq`, logs, from, to)
		if err != nil {
			return err
		}
		var all []trailseal.SealedEvent
		var keys []int64
		sc := newRawScanner(rows) // scanrow.go
		for rows.Next() {
			var k int64
			var se trailseal.SealedEvent
			var h []byte
			if err := sc.scan(rows, &k, &se.Seq, &se.EventID, &h, &se.OccurredAt); err != nil {
				rows.Close()
				return err
			}
			if k < 1 || int(k) > len(ranges) || len(h) != tlog.HashSize {
				rows.Close()
				return fmt.Errorf("malformed leaf row at seq %d", se.Seq)
			}
			se.Log, se.Hash = ranges[k-1].Log, tlog.Hash(h)
			all, keys = append(all, se), append(keys, k-1)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if err := s.attachEvents(ctx, c, all); err != nil {
			return err
		}
		for i, se := range all {
			out[keys[i]] = append(out[keys[i]], se)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("trailpgx: leaves: %w", err)
	}
	return out, nil
}

// HashesOf implements trailseal.BatchReader.
func (s *Store) HashesOf(ctx context.Context, ranges []trailseal.LogRange) ([][]tlog.Hash, error) {
	hc := hashrange.New(ranges)
	if len(ranges) == 0 {
		return hc.Hashes(), nil
	}
	logs, from, to := rangeArgs(ranges)
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, s.hashesOfSQL(), logs, from, to)
		if err != nil {
			return err
		}
		defer rows.Close()
		sc := newRawScanner(rows) // scanrow.go
		for rows.Next() {
			var k, x int64
			var h []byte
			if err := sc.scan(rows, &k, &x, &h); err != nil {
				return err
			}
			if err := hc.Add(k-1, x, h); err != nil { // ORDINALITY counts from 1
				return err
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("trailpgx: hashes: %w", err)
	}
	return hc.Hashes(), nil
}

// UnsealedOf implements trailseal.BatchReader.
func (s *Store) UnsealedOf(ctx context.Context, logs []string) (map[string][]uuid.UUID, error) {
	tenants := make([]string, len(logs))
	for i, l := range logs {
		tenants[i] = trailseal.TenantOf(l)
	}
	byTenant, err := s.unsealed(ctx, tenants)
	if err != nil {
		return nil, fmt.Errorf("trailpgx: unsealed: %w", err)
	}
	out := make(map[string][]uuid.UUID, len(byTenant))
	for tenant, ids := range byTenant {
		out[trailseal.LogName(tenant)] = ids
	}
	return out, nil
}

// PurgedRangesOf implements trailseal.BatchPurgeRecorder.
func (s *Store) PurgedRangesOf(ctx context.Context, logs []string) (map[string][]trailseal.SeqRange, error) {
	out := map[string][]trailseal.SeqRange{}
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT p.log, lower(r), upper(r) FROM `+s.schema+`.seal_purges p, unnest(p.seqs) r
			WHERE p.log = ANY($1) ORDER BY 1, 2`, logs)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var l string
			var r trailseal.SeqRange
			if err := rows.Scan(&l, &r.From, &r.To); err != nil {
				return err
			}
			out[l] = append(out[l], r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("trailpgx: purged ranges: %w", err)
	}
	return out, nil
}

package trailpgx

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/trailhq/trail"
)

// The column list of the binary COPY stream (copybin.go).
var eventColumns = strings.Join(insertColumns, ", ")

// Every insert skips an ID its month's partition already holds (the
// partition's unique id key, migration 0016): a retry carries the event's
// ID and occurred_at, so it meets the first copy there.
type statements struct {
	insertOne    string // one event
	insertUnnest string // any batch size, from arrays
	held         string // the identity of stored events, by ID (HeldSQL)
	get          string
}

func newStatements(schema string) statements {
	cols := strings.Join(insertColumns, ", ")
	// u's columns: every insert column but changed_fields, which is derived
	// from changes in SQL (so that any writer, including a trigger, gets the
	// same array).
	var ucols, sel []string
	var params []string
	types := map[string]string{"id": "uuid", "occurred_at": "timestamptz", "recorded_at": "timestamptz",
		"schema_version": "smallint", "on_behalf_of": "jsonb", "changes": "jsonb", "metadata": "jsonb",
		"actor_name_digest": "bytea", "actor_email_digest": "bytea"}
	for _, c := range insertColumns {
		if c == "changed_fields" {
			sel = append(sel, "(SELECT array_agg(x->>'field') FROM jsonb_array_elements(u.changes) x)")
			continue
		}
		t := types[c]
		if t == "" {
			t = "text"
		}
		ucols = append(ucols, c)
		params = append(params, fmt.Sprintf("$%d::%s[]", len(params)+1, t))
		sel = append(sel, "u."+c)
	}
	var one []string
	for i, c := range insertColumns {
		t := types[c]
		if t == "" {
			t = "text"
		}
		if c == "changed_fields" {
			t = "text[]"
		}
		one = append(one, fmt.Sprintf("$%d::%s", i+1, t))
	}
	return statements{
		insertOne: "INSERT INTO " + schema + ".events (" + cols + ") VALUES (" + strings.Join(one, ", ") + ") ON CONFLICT DO NOTHING RETURNING id",
		insertUnnest: "INSERT INTO " + schema + ".events (" + cols + ") SELECT " + strings.Join(sel, ", ") +
			" FROM unnest(" + strings.Join(params, ", ") + ") AS u(" + strings.Join(ucols, ", ") + ") ON CONFLICT DO NOTHING RETURNING id",
		held: "SELECT e.id, e.tenant, e.action, e.actor_type, e.actor_id, e.target_type, e.target_id, e.outcome FROM " + schema + ".events e WHERE e.id = ANY($1::uuid[])",
		get:  "SELECT " + selectColumns + " FROM " + schema + ".events e WHERE e.id = $1",
	}
}

// batch is a set of events ready to write: stamped, deduplicated, encoded.
type batch struct {
	events  []trail.Event // the events as stamped, in batch order
	results []trail.Result
	rows    []row             // the first occurrence of each ID
	index   map[uuid.UUID]int // ID -> position in rows
	first   []int             // position in rows -> position in results
}

func (s *Store) prepare(events []trail.Event) (*batch, error) {
	if len(events) == 0 {
		return nil, fmt.Errorf("trailpgx: no events to append")
	}
	events = slices.Clone(events) // stamping RecordedAt must not touch the caller's slice
	b := &batch{events: events, results: make([]trail.Result, len(events)), index: make(map[uuid.UUID]int, len(events))}
	now := time.Time{}
	for i := range events {
		ev := &events[i]
		if ev.RecordedAt.IsZero() {
			if now.IsZero() {
				now = s.cfg.Now().UTC().Truncate(time.Microsecond)
			}
			ev.RecordedAt = now
		}
		if err := check(ev); err != nil {
			return nil, fmt.Errorf("trailpgx: append: event %d: %w", i, err)
		}
		b.results[i] = trail.Result{ID: ev.ID, Duplicate: true}
		if _, dup := b.index[ev.ID]; dup {
			continue
		}
		r, err := encode(ev)
		if err != nil {
			if len(events) > 1 {
				return nil, fmt.Errorf("event %d: %w", i, err)
			}
			return nil, err
		}
		b.index[ev.ID] = len(b.rows)
		b.rows = append(b.rows, r)
		b.first = append(b.first, i)
	}
	return b, nil
}

// HeldSQL is the query that reads the identity (SameEvent's fields) of the
// stored events whose IDs are in the uuid[] $1, as ScanHeld scans it.
func (s *Store) HeldSQL() string { return s.sql.held }

// ScanHeld scans one row of HeldSQL.
func ScanHeld(scan func(dest ...any) error) (trail.Event, error) {
	var ev trail.Event
	var actorType, outcome string
	if err := scan(&ev.ID, &ev.Tenant, &ev.Action, &actorType, &ev.Actor.ID, &ev.Target.Type, &ev.Target.ID, &outcome); err != nil {
		return ev, err
	}
	ev.Actor.Type, ev.Outcome = trail.ActorType(actorType), trail.Outcome(outcome)
	return ev, nil
}

// CheckDuplicates applies trail.CheckDuplicates to a batch whose results
// are final: held reads the stored events of the IDs the batch did not
// write (HeldSQL, in the same transaction). It costs nothing when the
// batch has no duplicate.
func CheckDuplicates(events []trail.Event, results []trail.Result, held func(ids []uuid.UUID) (map[uuid.UUID]trail.Event, error)) error {
	var dup []bool
	for i, r := range results {
		if r.Duplicate {
			if dup == nil {
				dup = make([]bool, len(results))
			}
			dup[i] = true
		}
	}
	if dup == nil {
		return nil
	}
	return trail.CheckDuplicates(events, dup, held)
}

// checkDuplicates is CheckDuplicates in tx.
func (s *Store) checkDuplicates(ctx context.Context, tx pgx.Tx, b *batch) error {
	return CheckDuplicates(b.events, b.results, func(ids []uuid.UUID) (map[uuid.UUID]trail.Event, error) {
		rows, err := tx.Query(ctx, s.sql.held, ids)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out := make(map[uuid.UUID]trail.Event, len(ids))
		for rows.Next() {
			ev, err := ScanHeld(rows.Scan)
			if err != nil {
				return nil, err
			}
			out[ev.ID] = ev
		}
		return out, rows.Err()
	})
}

// resetResults forgets what a rolled-back try marked stored.
func (b *batch) resetResults() {
	for i := range b.results {
		b.results[i] = trail.Result{ID: b.events[i].ID, Duplicate: true}
	}
}

// storedAll marks every row newly written.
func (b *batch) storedAll() {
	for i := range b.rows {
		b.stored(b.rows[i].ev.ID)
	}
}

// stored marks id as newly written.
func (b *batch) stored(id uuid.UUID) {
	if j, ok := b.index[id]; ok {
		b.results[b.first[j]] = trail.Result{ID: id, RecordedAt: b.rows[j].ev.RecordedAt}
	}
}

// statement returns the single statement that writes b and its arguments:
// plain parameters for one event, arrays for more.
func (b *batch) statement(s *Store) (string, []any) {
	if len(b.rows) == 1 {
		return s.sql.insertOne, b.rows[0].copyValues()
	}
	return s.sql.insertUnnest, b.unnestArgs()
}

// unnestArgs are the arrays of insertUnnest.
func (b *batch) unnestArgs() []any {
	n := len(b.rows)
	ids := make([]pgtype.UUID, n)
	occ, rec := make([]time.Time, n), make([]time.Time, n)
	sv := make([]int16, n)
	txt := make([][]string, 18)
	for i := range txt {
		txt[i] = make([]string, n)
	}
	obo, ch, meta := make([]*string, n), make([]*string, n), make([]*string, n)
	nameDigest, emailDigest := make([][]byte, n), make([][]byte, n)
	for i := range b.rows {
		r := &b.rows[i]
		ev := r.ev
		ids[i] = pgtype.UUID{Bytes: ev.ID, Valid: true}
		occ[i], rec[i], sv[i] = ev.OccurredAt, ev.RecordedAt, int16(ev.SchemaVersion)
		for k, v := range []string{ev.Tenant, string(ev.Actor.Type), ev.Actor.ID, ev.Actor.Name, ev.Actor.Email, ev.Actor.IP, ev.Actor.UserAgent,
			ev.Action, ev.Target.Type, ev.Target.ID, ev.Target.Name, string(ev.Outcome), ev.Description, ev.RequestID, ev.TraceID, ev.Source, ev.SpanID} {
			txt[k][i] = v
		}
		obo[i], ch[i], meta[i] = r.obo, r.changes, r.meta
		nameDigest[i], emailDigest[i] = digestValue(ev.Lookup.ActorName), digestValue(ev.Lookup.ActorEmail)
	}
	return []any{ids, occ, rec, sv, txt[0], txt[1], txt[2], txt[3], txt[4], txt[5], txt[6], obo,
		txt[7], txt[8], txt[9], txt[10], txt[11], txt[12], ch, meta, txt[13], txt[14], txt[15], txt[16], nameDigest, emailDigest}
}

// Append stores events in one transaction of its own: all or none.
func (s *Store) Append(ctx context.Context, events []trail.Event) ([]trail.Result, error) {
	for attempt := 0; ; attempt++ {
		b, err := s.prepare(events) // afresh on a retry: no result may survive a rolled-back try
		if err != nil {
			return nil, err
		}
		if err := s.ensureFor(ctx, events); err != nil {
			return nil, err
		}
		if len(b.rows) >= s.cfg.CopyThreshold {
			err = s.copyOwn(ctx, b)
		} else {
			err = s.with(ctx, func(c *pgx.Conn) error {
				err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error { return s.write(ctx, tx, b) })
				if !isUniqueViolation(err) {
					return err
				}
				// An ID stored in another month (a retry stamped again):
				// the seal queue refused it.
				return s.writeCarefully(ctx, c, b)
			})
		}
		if err != nil && attempt == 0 && isNoPartition(err) {
			s.parts.reset() // a partition was dropped behind our back
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("trailpgx: append: %w", err)
		}
		return b.results, nil
	}
}

// copyOwn writes a large batch in a transaction of its own: BEGIN, COPY
// events, COMMIT — three round trips whatever the batch's size, the stream
// encoded before the connection is taken. The IDs are assumed new, as they
// almost always are; a unique violation (an ID the month's partition holds
// already) rolls the transaction back and the batch goes the careful way
// (copyNew) in a second one. Unlike AppendTx it needs no savepoint: the
// transaction is its own.
func (s *Store) copyOwn(ctx context.Context, b *batch) error {
	evs := b.copyEvents(nil)
	return s.with(ctx, func(c *pgx.Conn) error {
		err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			if err := s.copyBinary(ctx, tx, "events", eventColumns, evs); err != nil {
				return err
			}
			b.storedAll()
			return s.checkDuplicates(ctx, tx, b) // copies within the batch
		})
		if !isUniqueViolation(err) {
			return err
		}
		return s.writeCarefully(ctx, c, b)
	})
}

// writeCarefully writes b in a transaction of its own on c, after a try
// that met a stored ID was rolled back: copyNew, then the duplicates'
// check.
func (s *Store) writeCarefully(ctx context.Context, c *pgx.Conn, b *batch) error {
	b.resetResults()
	return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		if err := s.copyNew(ctx, tx, b); err != nil {
			return err
		}
		return s.checkDuplicates(ctx, tx, b)
	})
}

// AppendTx stores events inside tx, the caller's transaction: they exist if
// and only if tx commits. Up to Config.CopyThreshold events take one
// statement, so one round trip on the caller's connection; larger batches
// go through COPY.
func (s *Store) AppendTx(ctx context.Context, tx pgx.Tx, events []trail.Event) ([]trail.Result, error) {
	if tx == nil {
		return nil, fmt.Errorf("trailpgx: AppendTx: tx is nil")
	}
	b, err := s.prepare(events)
	if err != nil {
		return nil, err
	}
	if err := s.ensureFor(ctx, events); err != nil {
		return nil, err
	}
	if err := s.write(ctx, tx, b); err != nil {
		if isNoPartition(err) {
			s.parts.reset()
		}
		return nil, fmt.Errorf("trailpgx: append: %w", TxAppendError(err))
	}
	return b.results, nil
}

// TxAppendError is err, an error of the statement a transactional append
// sends (AppendTx here, trailsql's AppendTx), with a unique violation
// explained: the statement met an ID stored under an occurred_at in another
// month (a retry whose time was stamped again, or an ID reused), which
// Append, in a transaction of its own, would have looked up and reported as
// a duplicate or a conflict. Here the caller's transaction is aborted and
// nothing is stored. The error matches trail.ErrIDConflict and still wraps
// PostgreSQL's *pgconn.PgError (code 23505).
func TxAppendError(err error) error {
	if !isUniqueViolation(err) {
		return err
	}
	return &idElsewhereError{err}
}

type idElsewhereError struct{ err error }

func (e *idElsewhereError) Error() string {
	return "an event's ID is already stored, under an occurred_at in another month (a retry whose time was stamped again, or an ID reused); the transaction is aborted: " + e.err.Error()
}
func (e *idElsewhereError) Unwrap() error        { return e.err }
func (e *idElsewhereError) Is(target error) bool { return target == trail.ErrIDConflict }

// write inserts b in tx.
func (s *Store) write(ctx context.Context, tx pgx.Tx, b *batch) error {
	if len(b.rows) < s.cfg.CopyThreshold {
		q, args := b.statement(s)
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[pgtype.UUID])
		if err != nil {
			return err
		}
		for _, id := range ids {
			b.stored(id.Bytes)
		}
		return s.checkDuplicates(ctx, tx, b)
	}
	// Large batches: COPY. Optimistically first — the IDs are new, as they
	// almost always are — under a savepoint; a unique violation rolls back
	// to the savepoint and the batch goes the careful way.
	sp, err := tx.Begin(ctx)
	if err != nil {
		return err
	}
	if err := s.copyBinary(ctx, sp, "events", eventColumns, b.copyEvents(nil)); err == nil {
		if err := sp.Commit(ctx); err != nil {
			return err
		}
		b.storedAll()
		return s.checkDuplicates(ctx, tx, b) // copies within the batch
	} else if !isUniqueViolation(err) {
		sp.Rollback(ctx)
		return err
	}
	if err := sp.Rollback(ctx); err != nil {
		return err
	}
	if err := s.copyNew(ctx, tx, b); err != nil {
		return err
	}
	return s.checkDuplicates(ctx, tx, b)
}

// copyNew writes a batch that holds stored IDs, the careful way: it looks
// the batch's IDs up in every partition (a retry whose occurred_at was
// stamped again, in another month, is a duplicate too, not a second event),
// then inserts the others with INSERT … ON CONFLICT DO NOTHING, which skips
// any that a concurrent writer stores meanwhile.
func (s *Store) copyNew(ctx context.Context, tx pgx.Tx, b *batch) error {
	ids := make([]pgtype.UUID, len(b.rows))
	for i := range b.rows {
		ids[i] = pgtype.UUID{Bytes: b.rows[i].ev.ID, Valid: true}
	}
	rows, err := tx.Query(ctx, "SELECT id FROM "+s.schema+".events WHERE id = ANY($1)", ids)
	if err != nil {
		return err
	}
	held, err := pgx.CollectRows(rows, pgx.RowTo[pgtype.UUID])
	if err != nil {
		return err
	}
	nb := b
	if len(held) > 0 {
		stored := make(map[uuid.UUID]bool, len(held))
		for _, id := range held {
			stored[id.Bytes] = true
		}
		nb = &batch{}
		for _, r := range b.rows {
			if !stored[r.ev.ID] {
				nb.rows = append(nb.rows, r)
			}
		}
		if len(nb.rows) == 0 {
			return nil
		}
	}
	rows, err = tx.Query(ctx, s.sql.insertUnnest, nb.unnestArgs()...)
	if err != nil {
		return err
	}
	fresh, err := pgx.CollectRows(rows, pgx.RowTo[pgtype.UUID])
	if err != nil {
		return err
	}
	for _, id := range fresh {
		b.stored(id.Bytes)
	}
	return nil
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// InsertSQL returns the single statement that appends events, with its
// arguments: it inserts into events, skipping IDs already stored, and
// returns the IDs it wrote. trailsql runs it inside a
// *sql.Tx; it is exported for drivers that cannot hand over a pgx.Tx.
// Partitions must exist (EnsurePartitions) before it runs.
func (s *Store) InsertSQL(events []trail.Event) (query string, args []any, finish func(stored []uuid.UUID) []trail.Result, err error) {
	b, err := s.prepare(events)
	if err != nil {
		return "", nil, nil, err
	}
	q, args := b.statement(s)
	return q, args, func(stored []uuid.UUID) []trail.Result {
		for _, id := range stored {
			b.stored(id)
		}
		return b.results
	}, nil
}

// EnsurePartitions creates, on a connection of its own, the monthly
// partitions that events need and the store has not seen yet.
func (s *Store) EnsurePartitions(ctx context.Context, events []trail.Event) error {
	return s.ensureFor(ctx, events)
}

// check rejects what a store must never write (trail.CheckStorable).
func check(ev *trail.Event) error { return trail.CheckStorable(ev) }

package trailsqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/tlog"
	sqlite "modernc.org/sqlite"
)

// The Store implements trailseal.Store over the tables of migration
// 0002_seal: events are never updated; sealing writes leaves, stored hashes,
// log sizes and checkpoints into their own tables, under a lease row whose
// fencing epoch every sealing transaction checks (no advisory locks).
var (
	_ trailseal.Store     = (*Store)(nil)
	_ trailseal.LogStater = (*Store)(nil)
)

// queuePending adds the events just inserted, whose seqs list is the JSON
// array seqList made, to the pending queue, in the caller's transaction: an
// event is queued if and only if it commits.
func queuePending(ctx context.Context, tx *sql.Tx, list string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO trail_seal_pending (seq, id)
		SELECT seq, id FROM trail_events WHERE seq IN (SELECT value FROM json_each(?))`, list)
	if err != nil {
		return fmt.Errorf("trailsqlite: append: queue for sealing: %w", err)
	}
	return nil
}

func micros(t time.Time) int64 { return t.UnixMicro() }

// Lease implements trailseal.Store on the store's clock (Config.Now).
func (s *Store) Lease(ctx context.Context, name, holder string, ttl time.Duration) (epoch int64, ok bool, err error) {
	if name == "" || holder == "" {
		return 0, false, errors.New("trailsqlite: lease name and holder must not be empty")
	}
	err = s.sealTx(ctx, func(tx *sql.Tx) error {
		now := s.cfg.Now()
		var cur string
		var exp int64
		err := tx.QueryRowContext(ctx, `SELECT holder, epoch, expires_at FROM trail_seal_leases WHERE name = ?`, name).
			Scan(&cur, &epoch, &exp)
		if errors.Is(err, sql.ErrNoRows) {
			cur, epoch, exp, err = "", 0, 0, nil
		}
		if err != nil {
			return err
		}
		held := cur != "" && micros(now) < exp
		if ttl <= 0 {
			ok = false
			if held && cur == holder {
				_, err = tx.ExecContext(ctx, `UPDATE trail_seal_leases SET expires_at = ? WHERE name = ?`, micros(now), name)
			}
			return err
		}
		switch {
		case held && cur == holder:
			ok = true
		case held:
			ok = false
			return nil
		default:
			epoch++
			ok = true
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO trail_seal_leases (name, holder, epoch, expires_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, epoch = excluded.epoch, expires_at = excluded.expires_at`,
			name, holder, epoch, micros(now.Add(ttl)))
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("trailsqlite: lease %q: %w", name, err)
	}
	return epoch, ok, nil
}

// sealTx runs f in one IMMEDIATE transaction of the sealer (Lease, Seal,
// SaveCheckpoints). Writers wait for SQLite's write lock in its busy handler,
// which sleeps 1, 2, 5 … 100 ms between tries; a sealer waiting the same way
// lost most races to a few busy writers and spent two thirds of its time
// waiting for the lock (issue 13), so the queue grew as long as ingest ran.
// The sealer's BEGIN IMMEDIATE instead tries every millisecond (its
// connection's busy timeout is 0 until it has the lock), taking the lock as
// soon as the writer holding it commits; it holds the lock only to write
// what it computed beforehand. It gives up after Config.BusyTimeout, as a
// writer does. Before all that it takes its turn behind the store's other
// writers (writer.go), so the loop competes only with other processes.
func (s *Store) sealTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	if err := s.wq.acquire(ctx, sealWriter); err != nil {
		return err
	}
	defer s.wq.release()
	c, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	restore := fmt.Sprintf("PRAGMA busy_timeout = %d", s.cfg.BusyTimeout.Milliseconds())
	restored := false
	defer func() {
		if !restored {
			if _, err := c.ExecContext(context.WithoutCancel(ctx), restore); err != nil {
				// Never hand writers a connection that does not wait.
				c.Raw(func(any) error { return driver.ErrBadConn })
			}
		}
		c.Close()
	}()
	if _, err := c.ExecContext(ctx, "PRAGMA busy_timeout = 0"); err != nil {
		return err
	}
	var tx *sql.Tx
	for deadline := time.Now().Add(s.cfg.BusyTimeout); ; {
		if tx, err = c.BeginTx(ctx, nil); err == nil || !isBusy(err) || time.Now().After(deadline) {
			break
		}
		t := time.NewTimer(time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	if err != nil {
		return err
	}
	if _, err := c.ExecContext(ctx, restore); err != nil {
		tx.Rollback()
		return err
	}
	restored = true
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// isBusy reports whether err is SQLITE_BUSY (or one of its extended codes).
func isBusy(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == 5 // SQLITE_BUSY
}

// checkFence fails with trailseal.ErrFenced unless f is the lease's current
// epoch. Called inside the writing transaction, which holds SQLite's write
// lock, so no takeover can slip in between the check and the writes.
func checkFence(ctx context.Context, tx *sql.Tx, f trailseal.Fence) error {
	var epoch int64
	err := tx.QueryRowContext(ctx, `SELECT epoch FROM trail_seal_leases WHERE name = ?`, f.Lease).Scan(&epoch)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && epoch != f.Epoch) {
		return trailseal.ErrFenced
	}
	return err
}

// Pending implements trailseal.Store.
func (s *Store) Pending(ctx context.Context, limit int) ([]trail.Event, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+prefixed("e.", selectCols)+`
		FROM trail_seal_pending p JOIN trail_events e ON e.seq = p.seq AND e.id = p.id
		ORDER BY p.seq LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("trailsqlite: pending: %w", err)
	}
	defer rows.Close()
	var out []trail.Event
	for rows.Next() {
		ev, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("trailsqlite: pending: %w", err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trailsqlite: pending: %w", err)
	}
	return out, nil
}

// prefixed qualifies a comma-separated column list with p.
func prefixed(p, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// OldestPending returns the RecordedAt of the oldest unsealed event, and
// false when nothing waits: the sealing lag is now minus that time.
func (s *Store) OldestPending(ctx context.Context) (time.Time, bool, error) {
	var rec int64
	err := s.db.QueryRowContext(ctx, `SELECT e.recorded_at FROM trail_seal_pending p
		JOIN trail_events e ON e.seq = p.seq AND e.id = p.id ORDER BY p.seq LIMIT 1`).Scan(&rec)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("trailsqlite: oldest pending: %w", err)
	}
	return time.UnixMicro(rec).UTC(), true, nil
}

// rowsPerStmt bounds the rows of one multi-row statement (5 parameters a
// row at most, far below SQLite's parameter limit).
const rowsPerStmt = 500

// execRows runs head + "(?,…),(?,…)" for rows of width parameters each, in
// chunks.
func execRows(ctx context.Context, tx *sql.Tx, head string, width int, args []any) error {
	return execRowsTail(ctx, tx, head, "", width, args)
}

// execRowsTail is execRows with tail after the rows (an ON CONFLICT clause).
func execRowsTail(ctx context.Context, tx *sql.Tx, head, tail string, width int, args []any) error {
	row := "(?" + strings.Repeat(",?", width-1) + ")"
	for lo := 0; lo < len(args); lo += rowsPerStmt * width {
		a := args[lo:min(lo+rowsPerStmt*width, len(args))]
		n := len(a) / width
		q := head + row + strings.Repeat(","+row, n-1) + tail
		if _, err := tx.ExecContext(ctx, q, a...); err != nil {
			return err
		}
	}
	return nil
}

// treeSizes returns the sizes of logs (absent: 0) in one statement.
func treeSizes(ctx context.Context, tx *sql.Tx, logs []string) (map[string]int64, error) {
	list, err := jsonList(logs)
	if err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT log, size FROM trail_seal_logs WHERE log IN (SELECT value FROM json_each(?))`, list)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]int64, len(logs))
	for rows.Next() {
		var l string
		var n int64
		if err := rows.Scan(&l, &n); err != nil {
			return nil, err
		}
		out[l] = n
	}
	return out, rows.Err()
}

// Seal implements trailseal.Store.
func (s *Store) Seal(ctx context.Context, fence trailseal.Fence, b trailseal.SealBatch) error {
	err := s.sealTx(ctx, func(tx *sql.Tx) error {
		if err := checkFence(ctx, tx, fence); err != nil {
			return err
		}
		logs := make([]string, len(b.Sizes))
		for i, ls := range b.Sizes {
			logs[i] = ls.Log
		}
		sizes, err := treeSizes(ctx, tx, logs)
		if err != nil {
			return err
		}
		for _, ls := range b.Sizes {
			if sizes[ls.Log] != ls.OldSize {
				return fmt.Errorf("%w: log %q has %d leaves, batch extends %d", trailseal.ErrConflict, ls.Log, sizes[ls.Log], ls.OldSize)
			}
		}
		args := make([]any, 0, 4*len(b.Leaves))
		for _, l := range b.Leaves {
			args = append(args, l.Log, l.Seq, l.EventID[:], l.Hash[:])
		}
		if err := execRows(ctx, tx, `INSERT INTO trail_seal_leaves (log, seq, event_id, hash) VALUES `, 4, args); err != nil {
			if strings.Contains(err.Error(), "UNIQUE") {
				return fmt.Errorf("%w: %v", trailseal.ErrConflict, err)
			}
			return err
		}
		args = make([]any, 0, 3*len(b.Hashes))
		for _, h := range b.Hashes {
			args = append(args, h.Log, h.Index, h.Hash[:])
		}
		if err := execRows(ctx, tx, `INSERT INTO trail_seal_hashes (log, idx, hash) VALUES `, 3, args); err != nil {
			return err
		}
		args = make([]any, 0, 2*len(b.Sizes))
		for _, ls := range b.Sizes {
			args = append(args, ls.Log, ls.NewSize)
		}
		if err := execRowsTail(ctx, tx, `INSERT INTO trail_seal_logs (log, size) VALUES `,
			` ON CONFLICT (log) DO UPDATE SET size = excluded.size`, 2, args); err != nil {
			return err
		}
		for lo := 0; lo < len(b.Done); lo += rowsPerStmt {
			ids := b.Done[lo:min(lo+rowsPerStmt, len(b.Done))]
			a := make([]any, len(ids))
			for i := range ids {
				a[i] = ids[i][:]
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM trail_seal_pending WHERE seq IN
				(SELECT seq FROM trail_events WHERE id IN (?`+strings.Repeat(",?", len(ids)-1)+`))`, a...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, trailseal.ErrFenced) || errors.Is(err, trailseal.ErrConflict) {
			return err
		}
		return fmt.Errorf("trailsqlite: seal: %w", err)
	}
	return nil
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func treeSize(ctx context.Context, q queryer, log string) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, `SELECT size FROM trail_seal_logs WHERE log = ?`, log).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, err
}

// TreeSize implements trailseal.Store.
func (s *Store) TreeSize(ctx context.Context, log string) (int64, error) {
	n, err := treeSize(ctx, s.db, log)
	if err != nil {
		return 0, fmt.Errorf("trailsqlite: tree size of %q: %w", log, err)
	}
	return n, nil
}

// ReadHashes implements trailseal.Store.
func (s *Store) ReadHashes(ctx context.Context, log string, indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	if len(indexes) == 0 {
		return out, nil
	}
	lo, hi := indexes[0], indexes[0]
	for _, x := range indexes {
		lo, hi = min(lo, x), max(hi, x)
	}
	got := make(map[int64]tlog.Hash, len(indexes))
	var rows *sql.Rows
	var err error
	if hi-lo < int64(4*len(indexes))+64 { // dense (verification, sealing): a range
		rows, err = s.db.QueryContext(ctx, `SELECT idx, hash FROM trail_seal_hashes WHERE log = ? AND idx BETWEEN ? AND ?`, log, lo, hi)
	} else { // sparse (proofs): the indexes themselves
		a := []any{log}
		for _, x := range indexes {
			a = append(a, x)
		}
		rows, err = s.db.QueryContext(ctx, `SELECT idx, hash FROM trail_seal_hashes WHERE log = ? AND idx IN (?`+
			strings.Repeat(",?", len(indexes)-1)+`)`, a...)
	}
	if err != nil {
		return nil, fmt.Errorf("trailsqlite: read hashes of %q: %w", log, err)
	}
	defer rows.Close()
	for rows.Next() {
		var x int64
		var h []byte
		if err := rows.Scan(&x, &h); err != nil {
			return nil, fmt.Errorf("trailsqlite: read hashes of %q: %w", log, err)
		}
		if len(h) != tlog.HashSize {
			return nil, fmt.Errorf("trailsqlite: log %q: stored hash %d has %d bytes", log, x, len(h))
		}
		got[x] = tlog.Hash(h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trailsqlite: read hashes of %q: %w", log, err)
	}
	for i, x := range indexes {
		h, ok := got[x]
		if !ok {
			return nil, fmt.Errorf("trailsqlite: log %q has no stored hash %d", log, x)
		}
		out[i] = h
	}
	return out, nil
}

// Leaves implements trailseal.Store: each leaf with its event in one row,
// through the leaves' primary key and the events' id index (an event
// retention purged has no row; its leaf keeps a nil Event).
func (s *Store) Leaves(ctx context.Context, log string, from, to int64) ([]trailseal.SealedEvent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+leafEventCols+` FROM trail_seal_leaves l
		LEFT JOIN trail_events e ON e.id = l.event_id
		WHERE l.log = ? AND l.seq >= ? AND l.seq < ? ORDER BY l.seq`, log, from, to)
	if err != nil {
		return nil, fmt.Errorf("trailsqlite: leaves of %q: %w", log, err)
	}
	defer rows.Close()
	var out []trailseal.SealedEvent
	sc := newLeafScanner(0)
	for rows.Next() {
		se, err := sc.scan(rows, 0, log)
		if err != nil {
			return nil, fmt.Errorf("trailsqlite: leaves of %q: %w", log, err)
		}
		out = append(out, se)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trailsqlite: leaves of %q: %w", log, err)
	}
	return out, nil
}

// LeafOf implements trailseal.Store.
func (s *Store) LeafOf(ctx context.Context, id uuid.UUID) (trailseal.Leaf, error) {
	l := trailseal.Leaf{EventID: id}
	var h []byte
	err := s.db.QueryRowContext(ctx, `SELECT log, seq, hash FROM trail_seal_leaves WHERE event_id = ?`, id[:]).Scan(&l.Log, &l.Seq, &h)
	if err == nil {
		if len(h) != tlog.HashSize {
			return l, fmt.Errorf("trailsqlite: leaf of %s: malformed hash", id)
		}
		l.Hash = tlog.Hash(h)
		return l, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return l, fmt.Errorf("trailsqlite: leaf of %s: %w", id, err)
	}
	var one int
	err = s.db.QueryRowContext(ctx, `SELECT 1 FROM trail_events WHERE id = ?`, id[:]).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return l, trailseal.ErrUnknownEvent
	case err != nil:
		return l, fmt.Errorf("trailsqlite: leaf of %s: %w", id, err)
	}
	return l, trailseal.ErrNotSealed
}

// LeafIndexes returns the leaf index (tenant sequence) of each of ids that
// is sealed; unsealed and unknown IDs are absent from the map.
func (s *Store) LeafIndexes(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]int64, error) {
	out := make(map[uuid.UUID]int64, len(ids))
	for lo := 0; lo < len(ids); lo += rowsPerStmt {
		part := ids[lo:min(lo+rowsPerStmt, len(ids))]
		a := make([]any, len(part))
		for i := range part {
			a[i] = part[i][:]
		}
		rows, err := s.db.QueryContext(ctx, `SELECT event_id, seq FROM trail_seal_leaves WHERE event_id IN (?`+
			strings.Repeat(",?", len(part)-1)+`)`, a...)
		if err != nil {
			return nil, fmt.Errorf("trailsqlite: leaf indexes: %w", err)
		}
		for rows.Next() {
			var id []byte
			var seq int64
			if err := rows.Scan(&id, &seq); err != nil {
				rows.Close()
				return nil, fmt.Errorf("trailsqlite: leaf indexes: %w", err)
			}
			if len(id) == 16 {
				out[uuid.UUID(id)] = seq
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("trailsqlite: leaf indexes: %w", err)
		}
	}
	return out, nil
}

// Unsealed implements trailseal.Store.
func (s *Store) Unsealed(ctx context.Context, log string) ([]uuid.UUID, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT e.id FROM trail_events e
		WHERE e.tenant = ?
		  AND NOT EXISTS (SELECT 1 FROM trail_seal_pending p WHERE p.seq = e.seq AND p.id = e.id)
		  AND NOT EXISTS (SELECT 1 FROM trail_seal_leaves l WHERE l.event_id = e.id)
		ORDER BY e.seq`, trailseal.TenantOf(log))
	if err != nil {
		return nil, fmt.Errorf("trailsqlite: unsealed of %q: %w", log, err)
	}
	defer rows.Close()
	var out []uuid.UUID
	for rows.Next() {
		var id []byte
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("trailsqlite: unsealed of %q: %w", log, err)
		}
		if len(id) == 16 {
			out = append(out, uuid.UUID(id))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trailsqlite: unsealed of %q: %w", log, err)
	}
	return out, nil
}

// SaveCheckpoint implements trailseal.Store.
func (s *Store) SaveCheckpoint(ctx context.Context, fence trailseal.Fence, cp trailseal.Checkpoint) error {
	err := s.saveCheckpoints(ctx, fence, []trailseal.Checkpoint{cp})
	if err != nil && !errors.Is(err, trailseal.ErrFenced) {
		return fmt.Errorf("trailsqlite: save checkpoint of %q: %w", cp.Log, err)
	}
	return err
}

var _ trailseal.BatchCheckpointSaver = (*Store)(nil)

// SaveCheckpoints implements trailseal.BatchCheckpointSaver: one
// transaction, multi-row INSERTs.
func (s *Store) SaveCheckpoints(ctx context.Context, fence trailseal.Fence, cps []trailseal.Checkpoint) error {
	err := s.saveCheckpoints(ctx, fence, cps)
	if err != nil && !errors.Is(err, trailseal.ErrFenced) {
		return fmt.Errorf("trailsqlite: save %d checkpoints: %w", len(cps), err)
	}
	return err
}

func (s *Store) saveCheckpoints(ctx context.Context, fence trailseal.Fence, cps []trailseal.Checkpoint) error {
	args := make([]any, 0, 5*len(cps))
	for _, cp := range cps {
		args = append(args, cp.Log, cp.Size, cp.Root[:], cp.Note, cp.Time.UnixMicro())
	}
	return s.sealTx(ctx, func(tx *sql.Tx) error {
		if err := checkFence(ctx, tx, fence); err != nil {
			return err
		}
		return execRows(ctx, tx, `INSERT INTO trail_seal_checkpoints (log, size, root, note, created_at) VALUES `, 5, args)
	})
}

func scanCheckpoint(sc interface{ Scan(...any) error }) (trailseal.Checkpoint, error) {
	var cp trailseal.Checkpoint
	var root []byte
	var at int64
	if err := sc.Scan(&cp.Log, &cp.Size, &root, &cp.Note, &at); err != nil {
		return cp, err
	}
	if len(root) != tlog.HashSize {
		// A damaged row: keep it, so the verifier reports it against its
		// signed text instead of the read failing.
		root = make([]byte, tlog.HashSize)
	}
	cp.Root = tlog.Hash(root)
	cp.Time = time.UnixMicro(at).UTC()
	return cp, nil
}

// Checkpoints implements trailseal.Store.
func (s *Store) Checkpoints(ctx context.Context, log string) ([]trailseal.Checkpoint, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT log, size, root, note, created_at FROM trail_seal_checkpoints
		WHERE log = ? ORDER BY id`, log)
	if err != nil {
		return nil, fmt.Errorf("trailsqlite: checkpoints of %q: %w", log, err)
	}
	defer rows.Close()
	var out []trailseal.Checkpoint
	for rows.Next() {
		cp, err := scanCheckpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("trailsqlite: checkpoints of %q: %w", log, err)
		}
		out = append(out, cp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trailsqlite: checkpoints of %q: %w", log, err)
	}
	return out, nil
}

// LatestCheckpoint implements trailseal.Store.
func (s *Store) LatestCheckpoint(ctx context.Context, log string) (trailseal.Checkpoint, error) {
	cp, err := scanCheckpoint(s.db.QueryRowContext(ctx, `SELECT log, size, root, note, created_at FROM trail_seal_checkpoints
		WHERE log = ? ORDER BY id DESC LIMIT 1`, log))
	if errors.Is(err, sql.ErrNoRows) {
		return cp, trailseal.ErrNoCheckpoint
	}
	if err != nil {
		return cp, fmt.Errorf("trailsqlite: latest checkpoint of %q: %w", log, err)
	}
	return cp, nil
}

// Logs implements trailseal.Store.
func (s *Store) Logs(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT log FROM trail_seal_logs WHERE size > 0
		UNION SELECT DISTINCT log FROM trail_seal_leaves
		UNION SELECT DISTINCT log FROM trail_seal_checkpoints ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("trailsqlite: logs: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			return nil, fmt.Errorf("trailsqlite: logs: %w", err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trailsqlite: logs: %w", err)
	}
	return out, nil
}

// LogStates implements trailseal.LogStater in one query.
func (s *Store) LogStates(ctx context.Context) ([]trailseal.LogState, error) {
	rows, err := s.db.QueryContext(ctx, `WITH names AS (
			SELECT log FROM trail_seal_logs WHERE size > 0
			UNION SELECT DISTINCT log FROM trail_seal_leaves
			UNION SELECT DISTINCT log FROM trail_seal_checkpoints),
		latest AS (SELECT log, max(id) AS id FROM trail_seal_checkpoints GROUP BY log)
		SELECT n.log, coalesce(l.size, 0), coalesce(c.size, 0), c.created_at
		FROM names n
		LEFT JOIN trail_seal_logs l ON l.log = n.log
		LEFT JOIN latest ON latest.log = n.log
		LEFT JOIN trail_seal_checkpoints c ON c.id = latest.id
		ORDER BY n.log`)
	if err != nil {
		return nil, fmt.Errorf("trailsqlite: log states: %w", err)
	}
	defer rows.Close()
	var out []trailseal.LogState
	for rows.Next() {
		var st trailseal.LogState
		var at sql.NullInt64
		if err := rows.Scan(&st.Log, &st.Size, &st.CheckpointSize, &at); err != nil {
			return nil, fmt.Errorf("trailsqlite: log states: %w", err)
		}
		if at.Valid {
			st.CheckpointTime = time.UnixMicro(at.Int64).UTC()
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trailsqlite: log states: %w", err)
	}
	return out, nil
}

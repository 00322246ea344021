package trailsqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

// The live tail's reader (trailserver.SeqTailer). SQLite runs one write
// transaction at a time, and a row's seq (its rowid) is assigned inside it:
// seq order is commit order, so "seq greater than the last one read" is an
// exact cursor, whichever handle or process wrote the row (trail record, a
// second trail serve, a service's AppendTx).

// TailHead returns the seq and ID of the newest event, or 0 and uuid.Nil in
// an empty store.
func (s *Store) TailHead(ctx context.Context) (int64, uuid.UUID, error) {
	var seq int64
	var id []byte
	err := s.db.QueryRowContext(ctx, `SELECT seq, id FROM trail_events ORDER BY seq DESC LIMIT 1`).Scan(&seq, &id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, uuid.Nil, nil
	}
	if err != nil {
		return 0, uuid.Nil, fmt.Errorf("trailsqlite: tail head: %w", err)
	}
	u, err := uuid.FromBytes(id)
	if err != nil {
		return 0, uuid.Nil, fmt.Errorf("trailsqlite: tail head: %w", err)
	}
	return seq, u, nil
}

// TailAfter returns up to limit events whose seq is greater than after, in
// seq order, and the seq of the last one (after when there is none). It
// reads the rowid's B-tree: no index needed.
func (s *Store) TailAfter(ctx context.Context, after int64, limit int) ([]trail.Event, int64, error) {
	if limit <= 0 || limit > trail.MaxLimit {
		limit = trail.MaxLimit
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+selectCols+` FROM trail_events WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, after, fmt.Errorf("trailsqlite: tail: %w", err)
	}
	defer rows.Close()
	var evs []trail.Event
	for rows.Next() {
		ev, err := scanEvent(rows)
		if err != nil {
			return nil, after, fmt.Errorf("trailsqlite: tail: %w", err)
		}
		evs = append(evs, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, after, fmt.Errorf("trailsqlite: tail: %w", err)
	}
	if len(evs) == 0 {
		return nil, after, nil
	}
	// The last row's seq, through the id index: events are append-only, so
	// it is the seq the row was read at (unless retention just removed it,
	// an error the next poll retries from the same cursor).
	last := evs[len(evs)-1].ID
	if err := s.db.QueryRowContext(ctx, `SELECT seq FROM trail_events WHERE id = ?`, last[:]).Scan(&after); err != nil {
		return nil, after, fmt.Errorf("trailsqlite: tail: seq of %s: %w", last, err)
	}
	return evs, after, nil
}

package trailpgx

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/trailhq/trail"
)

// tailChunk bounds the IDs one TailRecorded fetch sends.
const tailChunk = 1000

// TailRecorded is the live tail's reader (trailserver.RecordedTailer): the
// events recorded at or after since that seen does not know, in
// (recorded_at, id) order.
//
// recorded_at is stamped before commit (by the writer's clock, or now() in
// a capture trigger), so a transaction that commits late adds rows behind
// newer ones: no position in the table is a cursor. The caller re-reads a
// window (since = now - lookback) on every poll and remembers what it has
// sent. To keep that re-read cheap, the window is read in two steps: the
// IDs and recorded_at of every row in it (through the events_recorded_at
// BRIN index), then whole rows only for the IDs seen reports as new.
func (s *Store) TailRecorded(ctx context.Context, since time.Time, seen func(id uuid.UUID, recordedAt time.Time) bool) ([]trail.Event, error) {
	var evs []trail.Event
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT id, recorded_at FROM `+s.schema+`.events WHERE recorded_at >= $1`, since.UTC())
		if err != nil {
			return err
		}
		var fresh []pgtype.UUID
		var id pgtype.UUID
		var rec time.Time
		_, err = pgx.ForEachRow(rows, []any{&id, &rec}, func() error {
			if !seen(uuid.UUID(id.Bytes), rec.UTC()) {
				fresh = append(fresh, id)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for chunk := range slices.Chunk(fresh, tailChunk) {
			rows, err := c.Query(ctx, `SELECT `+selectColumns+` FROM `+s.schema+`.events
				WHERE recorded_at >= $1 AND id = ANY($2)`, since.UTC(), chunk)
			if err != nil {
				return err
			}
			for rows.Next() {
				ev, err := scanEvent(rows.Scan)
				if err != nil {
					rows.Close()
					return err
				}
				evs = append(evs, ev)
			}
			if err := rows.Err(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("trailpgx: tail: %w", err)
	}
	slices.SortFunc(evs, func(a, b trail.Event) int {
		if c := a.RecordedAt.Compare(b.RecordedAt); c != 0 {
			return c
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
	return evs, nil
}

package trailpgx

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
)

// attachMoved finds the events of ses that attachEvents' join missed
// although event_ids still names them: an event whose occurred_at was
// edited no longer meets event_ids on (tenant, occurred_at, id) — and may
// have moved to another month's partition — yet it is there, edited, and
// verify must report it as modified, not missing (issue 14). This runs
// only when a leaf's event was not found, so the normal path keeps its
// partition pruning; a purged event has no event_ids row and costs one
// empty lookup.
func (s *Store) attachMoved(ctx context.Context, c *pgx.Conn, ses []trailseal.SealedEvent) error {
	var ids []pgtype.UUID
	for i := range ses {
		if ses[i].Event == nil {
			ids = append(ids, pgtype.UUID{Bytes: ses[i].EventID, Valid: true})
		}
	}
	if len(ids) == 0 {
		return nil
	}
	rows, err := c.Query(ctx, `SELECT `+qualifiedColumns+` FROM `+s.schema+`.event_ids i
		JOIN `+s.schema+`.events e ON e.tenant = i.tenant AND e.id = i.id
		WHERE i.id = ANY($1)`, ids)
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
		if ses[i].Event == nil {
			ses[i].Event = byID[ses[i].EventID]
		}
	}
	return nil
}

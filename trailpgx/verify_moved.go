package trailpgx

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
)

// attachMoved finds the events of ses that attachEvents' lookup missed:
// an event whose occurred_at was edited is no longer where its leaf's
// occurred_at points — it may have moved to another month's partition — yet
// it is there, edited, and verify must report it as modified, not missing
// (issue 14). The lookup is by ID alone, one probe of every partition's id
// key, and it runs only for leaves whose event was not found and whose seq
// retention did not purge (seal_purges), so the normal path keeps its
// partition pruning and a purged range costs no probe.
func (s *Store) attachMoved(ctx context.Context, c *pgx.Conn, ses []trailseal.SealedEvent) error {
	var (
		ids  []pgtype.UUID
		logs []string
		seqs []int64
	)
	for i := range ses {
		if ses[i].Event == nil {
			ids = append(ids, pgtype.UUID{Bytes: ses[i].EventID, Valid: true})
			logs, seqs = append(logs, ses[i].Log), append(seqs, ses[i].Seq)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	rows, err := c.Query(ctx, `SELECT `+qualifiedColumns+` FROM unnest($1::uuid[], $2::text[], $3::int8[]) AS m(id, log, seq)
		JOIN `+s.schema+`.events e ON e.id = m.id
		WHERE NOT EXISTS (SELECT 1 FROM `+s.schema+`.seal_purges p WHERE p.log = m.log AND p.seqs @> m.seq)`, ids, logs, seqs)
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

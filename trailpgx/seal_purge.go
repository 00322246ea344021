package trailpgx

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail/trailseal"
)

// Retention and the sealed log: purge_events (migration 0005_seal_guard)
// removes events and their pending rows but never leaves or stored hashes,
// and records, in the same statement, the seqs of the sealed events it
// removed (seal_purges, one int8multirange per log and purge). So every
// checkpoint still verifies over a purged range, and the verifier tells a
// purged event from a deleted one.
var _ trailseal.PurgeRecorder = (*Store)(nil)

// PurgedRanges implements trailseal.PurgeRecorder: the seqs of log whose
// events purge_events removed.
func (s *Store) PurgedRanges(ctx context.Context, log string) ([]trailseal.SeqRange, error) {
	var out []trailseal.SeqRange
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT lower(r), upper(r) FROM `+s.schema+`.seal_purges p, unnest(p.seqs) r
			WHERE p.log = $1 ORDER BY 1`, log)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (trailseal.SeqRange, error) {
			var r trailseal.SeqRange
			err := row.Scan(&r.From, &r.To)
			return r, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("trailpgx: purged ranges of %q: %w", log, err)
	}
	return out, nil
}

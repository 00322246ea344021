package trailsqlite

import (
	"context"
	"fmt"

	"github.com/trailhq/trail/trailseal"
)

// Retention removes sealed events (package trailarchive, migration
// 0003_retention) and records their seqs in trail_seal_purges in the same
// transaction, so that the verifier reports them as purged, not missing.
var _ trailseal.PurgeRecorder = (*Store)(nil)

// PurgedRanges implements trailseal.PurgeRecorder.
func (s *Store) PurgedRanges(ctx context.Context, log string) ([]trailseal.SeqRange, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq_from, seq_to FROM trail_seal_purges WHERE log = ? ORDER BY seq_from`, log)
	if err != nil {
		return nil, fmt.Errorf("trailsqlite: purged ranges of %q: %w", log, err)
	}
	defer rows.Close()
	var out []trailseal.SeqRange
	for rows.Next() {
		var r trailseal.SeqRange
		if err := rows.Scan(&r.From, &r.To); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

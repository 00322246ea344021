package trailpgx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/trailhq/trail/trailseal"
)

// Retention (migration 0006_retention): the policy and hold tables, and
// purge_event_ids, the one controlled path by which a retention run removes
// events. The policies themselves are package server/trailarchive's; these
// are the few primitives it needs from the store. They run as the connecting
// role, which must be the schema's owner (the tables are owner-only).

// RetentionTx runs fn in one transaction on a connection of the store.
func (s *Store) RetentionTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return s.inTx(ctx, fn)
}

// Table returns the quoted, schema-qualified name of the store's table name,
// for SQL run through RetentionTx.
func (s *Store) Table(name string) string {
	return s.schema + "." + pgx.Identifier{name}.Sanitize()
}

// PurgeEventIDs removes, in tx, the sealed events ids through
// purge_event_ids: archives[i] is the manifest key of the batch that
// archived ids[i] ("" for a delete), recorded with the purged seqs in
// seal_purges; cutoff is recorded as the purge's cutoff. A partition whose
// every row is named is detached and dropped (unless dropPartitions is
// false) once tx commits; other rows are deleted by ID. Unsealed events and
// IDs already gone are skipped. It returns the number of events removed.
func (s *Store) PurgeEventIDs(ctx context.Context, tx pgx.Tx, ids []pgtype.UUID, archives []string, cutoff time.Time, dropPartitions bool) (int64, error) {
	if len(ids) != len(archives) {
		return 0, fmt.Errorf("trailpgx: purge: %d ids, %d archives", len(ids), len(archives))
	}
	var n int64
	if err := tx.QueryRow(ctx, "SELECT "+s.schema+".purge_event_ids($1, $2, $3, $4)", ids, archives, cutoff, dropPartitions).Scan(&n); err != nil {
		return 0, fmt.Errorf("trailpgx: purge: %w", err)
	}
	return n, nil
}

// PurgedBatch is a run of seqs [From, To) of one log removed by retention,
// with the manifest key of the archive batch holding the events ("" when
// they were deleted).
type PurgedBatch struct {
	trailseal.SeqRange
	Archive string
}

// PurgedBatches is PurgedRanges with each range's archive key, sorted by
// From. On a schema older than migration 0006 (no archive column: nothing
// was ever archived there) it is PurgedRanges with empty keys, so a newer
// `trail verify` still reads an older deployment without migrating it.
func (s *Store) PurgedBatches(ctx context.Context, log string) ([]PurgedBatch, error) {
	var out []PurgedBatch
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT lower(r), upper(r), p.archive FROM `+s.schema+`.seal_purges p, unnest(p.seqs) r
			WHERE p.log = $1 ORDER BY 1`, log)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (PurgedBatch, error) {
			var r PurgedBatch
			err := row.Scan(&r.From, &r.To, &r.Archive)
			return r, err
		})
		return err
	})
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "42703" { // undefined_column
		rs, err := s.PurgedRanges(ctx, log)
		if err != nil {
			return nil, err
		}
		out = make([]PurgedBatch, len(rs))
		for i, r := range rs {
			out[i] = PurgedBatch{SeqRange: r}
		}
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("trailpgx: purged ranges of %q: %w", log, err)
	}
	return out, nil
}

// Partitions returns the names of the events table's partitions
// (events_pYYYYMM), sorted.
func (s *Store) Partitions(ctx context.Context) ([]string, error) {
	var out []string
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = to_regclass($1) ORDER BY 1`, s.cfg.Schema+".events")
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("trailpgx: list partitions: %w", err)
	}
	return out, nil
}

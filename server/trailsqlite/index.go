package trailsqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
)

// indexChunk writes what one chunk's new events need beside their rows, in
// the caller's transaction: their descriptions into the FTS5 index, their
// changed field paths into trail_event_fields, their days into
// trail_tenant_days and trail_days, and their pending rows into the seal
// queue, one statement each for the chunk.
//
// The first two used to come from the trail_events_ai row trigger, removed by
// migration 0006. SQLite gives a statement that may abort half-way a
// statement journal, and an insert into a virtual table (FTS5) or any SQL
// function call (json_extract) in a trigger counts: every multi-row event
// INSERT copied into that journal each index page it dirtied for the first
// time, which once the random-key indexes (target, actor, action) have more
// leaves than a chunk has rows is one page per row per index, about a fifth
// of ingest CPU (BENCHMARKS.md, "SQLite ingest as the file grows"). Now the
// event INSERT has no trigger and needs no journal; these statements touch
// few pages (FTS5 appends segments; the field table's keys lead with one of
// a few field names). Both read the rows back, so they index exactly what is
// stored, as the delete trigger that removes them expects.
func indexChunk(ctx context.Context, tx *sql.Tx, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	list := seqList(seqs)
	if _, err := tx.ExecContext(ctx, `INSERT INTO trail_events_fts (rowid, description)
		SELECT seq, description FROM trail_events
		WHERE seq IN (SELECT value FROM json_each(?1)) AND description <> ''`, list); err != nil {
		return fmt.Errorf("trailsqlite: append: index descriptions: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO trail_event_fields (field, seq)
		SELECT json_extract(c.value, '$.field'), e.seq
		FROM trail_events e, json_each(e.changes) c
		WHERE e.seq IN (SELECT value FROM json_each(?1)) AND e.changes IS NOT NULL`, list); err != nil {
		return fmt.Errorf("trailsqlite: append: index changed fields: %w", err)
	}
	// The days the chunk's events fall on, which reads through the day-led
	// subject indexes probe (migration 0009).
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO trail_tenant_days (tenant, day)
		SELECT DISTINCT tenant, utc_day FROM trail_events
		WHERE seq IN (SELECT value FROM json_each(?1))`, list); err != nil {
		return fmt.Errorf("trailsqlite: append: index days: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO trail_days (day)
		SELECT DISTINCT utc_day FROM trail_events
		WHERE seq IN (SELECT value FROM json_each(?1))`, list); err != nil {
		return fmt.Errorf("trailsqlite: append: index days: %w", err)
	}
	return queuePending(ctx, tx, list)
}

// seqList returns seqs as a JSON array, one parameter for json_each.
func seqList(seqs []int64) string {
	b := make([]byte, 0, len(seqs)*8)
	b = append(b, '[')
	for i, q := range seqs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, q, 10)
	}
	return string(append(b, ']'))
}

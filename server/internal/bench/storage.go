package bench

import (
	"context"
	"fmt"
)

// storage measures the bytes per event of the store W2 (or the load) filled:
// every partition with its indexes (the id key among them) and TOAST, plus
// the seal queue (empty once sealed; W2 does not seal), over the rows. The
// sealed log's tables (leaves, stored hashes) are reported beside it, not
// in it: W2 does not seal, so they are empty here.
func (r *run) storage(ctx context.Context) error {
	schema := r.store.Schema()
	var n int64
	if err := r.pool.QueryRow(ctx, "SELECT count(*) FROM "+schema+".events").Scan(&n); err != nil {
		return fmt.Errorf("bench: storage: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("bench: storage: no events")
	}
	var total, heap, queue int64
	err := r.pool.QueryRow(ctx, `SELECT coalesce(sum(pg_total_relation_size(i.inhrelid)), 0)::bigint,
			coalesce(sum(pg_table_size(i.inhrelid)), 0)::bigint,
			pg_total_relation_size(to_regclass($2))
		FROM pg_inherits i WHERE i.inhparent = to_regclass($1)`,
		schema+".events", schema+".seal_pending").Scan(&total, &heap, &queue)
	if err != nil {
		return fmt.Errorf("bench: storage: %w", err)
	}
	// Per index of the partitioned table, summed over its partitions; the
	// partitions' own id keys (events_pYYYYMM_id) as events_id.
	rows, err := r.pool.Query(ctx, `SELECT p.relname, sum(pg_relation_size(i.inhrelid))::bigint
		FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
		WHERE p.relkind = 'I' AND p.relnamespace = to_regnamespace($1)
		GROUP BY 1
		UNION ALL
		SELECT 'events_id', sum(pg_relation_size(c.oid))::bigint FROM pg_class c JOIN pg_index x ON x.indexrelid = c.oid
		WHERE c.relnamespace = to_regnamespace($1) AND x.indisunique AND c.relname LIKE 'events\_p%\_id'
		HAVING count(*) > 0
		ORDER BY 2 DESC`, schema)
	if err != nil {
		return fmt.Errorf("bench: storage: %w", err)
	}
	per := map[string]any{}
	for rows.Next() {
		var name string
		var size int64
		if err := rows.Scan(&name, &size); err != nil {
			rows.Close()
			return err
		}
		per[name] = float64(size) / float64(n)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	per["heap_and_toast"] = float64(heap) / float64(n)
	per["seal_pending"] = float64(queue) / float64(n)
	res := Result{Workload: "storage", Name: "bytes_per_event", Events: int(n),
		BytesPerEvent: float64(total+queue) / float64(n), Baseline: "seed_model_348_bytes",
		Extra: map[string]any{"total_bytes": total + queue, "per_event_by_relation": per},
		Note:  "pg_total_relation_size of every partition (heap, TOAST, indexes, the id key) plus the seal queue, after VACUUM ANALYZE; ratio > 1 means more than the seed model"}
	if r.cfg.Load == LoadSQL {
		res.Note += "; sql load: indexes built once after the rows are denser than those Append grows, so this is less than the ingest path stores"
	}
	v := res.BytesPerEvent / SeedModelBytesPerEvent
	res.Ratio = &v
	r.emit(res)
	return nil
}

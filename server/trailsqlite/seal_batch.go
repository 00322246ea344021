package trailsqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/hashrange"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/tlog"
)

// Verification's read paths: many small logs per query (a JSON array of
// logs or ranges, expanded by json_each, so that one statement serves any
// number of them), and each leaf with its event in one LEFT JOIN row,
// decoded from the driver's values without database/sql's conversions.
var (
	_ trailseal.BatchReader        = (*Store)(nil)
	_ trailseal.BatchPurgeRecorder = (*Store)(nil)
)

func jsonList(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// rangesJSON encodes ranges as [[log, from, to], …].
func rangesJSON(rs []trailseal.LogRange) (string, error) {
	a := make([][3]any, len(rs))
	for i, r := range rs {
		a[i] = [3]any{r.Log, r.From, r.To}
	}
	return jsonList(a)
}

// ranges joins json_each(?) r with a table by (log, key in [from, to)), r
// as the outer loop (CROSS JOIN keeps that order).
const rangeJoin = `json_each(?) r CROSS JOIN %s ON %[2]s.log = json_extract(r.value, '$[0]')
	AND %[2]s.%[3]s >= json_extract(r.value, '$[1]') AND %[2]s.%[3]s < json_extract(r.value, '$[2]')`

// leafEventCols are a leaf and its event; the event's columns are NULL when
// the event is gone.
var leafEventCols = `l.seq, l.event_id, l.hash, ` + prefixed("e.", selectCols)

// leafScanner reads rows of leafEventCols (after skip leading columns) into
// SealedEvents, reusing its value slots across rows.
type leafScanner struct {
	vals []any
	ptrs []any
}

func newLeafScanner(skip int) *leafScanner {
	n := skip + 3 + nSelectCols
	sc := &leafScanner{vals: make([]any, n), ptrs: make([]any, n)}
	for i := range sc.vals {
		sc.ptrs[i] = &sc.vals[i]
	}
	return sc
}

// scan reads one row: the leading columns stay in sc.vals[:skip].
func (sc *leafScanner) scan(rows *sql.Rows, skip int, log string) (trailseal.SealedEvent, error) {
	var se trailseal.SealedEvent
	if err := rows.Scan(sc.ptrs...); err != nil {
		return se, err
	}
	v := sc.vals[skip:]
	seq, ok1 := v[0].(int64)
	id, ok2 := v[1].([]byte)
	h, ok3 := v[2].([]byte)
	if !ok1 || !ok2 || !ok3 || len(id) != 16 || len(h) != tlog.HashSize {
		return se, fmt.Errorf("malformed leaf row at seq %v", v[0])
	}
	se.Log, se.Seq, se.EventID, se.Hash = log, seq, uuid.UUID(id), tlog.Hash(h)
	if v[3] == nil {
		return se, nil // the event is gone
	}
	ev, err := eventFromValues(v[3:])
	if err != nil {
		return se, fmt.Errorf("event of seq %d: %w", seq, err)
	}
	se.Event = &ev
	return se, nil
}

// eventFromValues is scanEvent over the driver's values of selectCols,
// with database/sql's conversion rules for the types SQLite can hold.
func eventFromValues(v []any) (trail.Event, error) {
	var ev trail.Event
	var err error
	str := func(i int) string {
		switch x := v[i].(type) {
		case string:
			return x
		case []byte:
			return string(x)
		case int64:
			return strconv.FormatInt(x, 10)
		case float64:
			return strconv.FormatFloat(x, 'g', -1, 64)
		case nil:
			if err == nil {
				err = fmt.Errorf("column %d is NULL", i)
			}
		default:
			if err == nil {
				err = fmt.Errorf("column %d has type %T", i, x)
			}
		}
		return ""
	}
	num := func(i int) int64 {
		switch x := v[i].(type) {
		case int64:
			return x
		case string, []byte:
			n, e := strconv.ParseInt(str(i), 10, 64)
			if e != nil && err == nil {
				err = fmt.Errorf("column %d: %w", i, e)
			}
			return n
		}
		if err == nil {
			err = fmt.Errorf("column %d has type %T", i, v[i])
		}
		return 0
	}
	// JSON columns: nil when NULL.
	raw := func(i int) []byte {
		switch x := v[i].(type) {
		case nil:
			return nil
		case []byte:
			return x
		}
		return []byte(str(i))
	}
	id, ok := v[0].([]byte)
	if !ok || len(id) != 16 {
		return ev, fmt.Errorf("stored id is not 16 bytes")
	}
	ev.ID = uuid.UUID(id)
	ev.OccurredAt = time.UnixMicro(num(1)).UTC()
	ev.RecordedAt = time.UnixMicro(num(2)).UTC()
	ev.Tenant = str(3)
	ev.Actor.Type = trail.ActorType(str(4))
	ev.Actor.ID, ev.Actor.Name, ev.Actor.Email, ev.Actor.IP, ev.Actor.UserAgent = str(5), str(6), str(7), str(8), str(9)
	onBehalf := raw(10)
	ev.Action = str(11)
	ev.Target.Type, ev.Target.ID, ev.Target.Name = str(12), str(13), str(14)
	ev.Outcome = trail.Outcome(str(15))
	ev.Description = str(16)
	changes, metadata := raw(17), raw(18)
	ev.RequestID, ev.TraceID, ev.Source = str(19), str(20), str(21)
	ev.SchemaVersion = int(num(22))
	ev.SpanID = str(23)
	if err != nil {
		return ev, err
	}
	if onBehalf != nil {
		ev.Actor.OnBehalfOf = new(trail.Actor)
		if err := json.Unmarshal(onBehalf, ev.Actor.OnBehalfOf); err != nil {
			return ev, fmt.Errorf("event %s: on_behalf_of: %w", ev.ID, err)
		}
	}
	if changes != nil {
		if err := json.Unmarshal(changes, &ev.Changes); err != nil {
			return ev, fmt.Errorf("event %s: changes: %w", ev.ID, err)
		}
	}
	if metadata != nil {
		m, err := trail.DecodeMetadata(metadata)
		if err != nil {
			return ev, fmt.Errorf("event %s: %w", ev.ID, err)
		}
		ev.Metadata = m
	}
	return ev, nil
}

// CheckpointsOf implements trailseal.BatchReader.
func (s *Store) CheckpointsOf(ctx context.Context, logs []string) (map[string][]trailseal.Checkpoint, error) {
	list, err := jsonList(logs)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT log, size, root, note, created_at FROM trail_seal_checkpoints
		WHERE log IN (SELECT value FROM json_each(?)) ORDER BY log, id`, list)
	if err != nil {
		return nil, fmt.Errorf("trailsqlite: checkpoints: %w", err)
	}
	defer rows.Close()
	out := map[string][]trailseal.Checkpoint{}
	for rows.Next() {
		cp, err := scanCheckpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("trailsqlite: checkpoints: %w", err)
		}
		out[cp.Log] = append(out[cp.Log], cp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trailsqlite: checkpoints: %w", err)
	}
	return out, nil
}

// TreeSizes implements trailseal.BatchReader.
func (s *Store) TreeSizes(ctx context.Context, logs []string) (map[string]int64, error) {
	list, err := jsonList(logs)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT log, size FROM trail_seal_logs WHERE log IN (SELECT value FROM json_each(?))`, list)
	if err != nil {
		return nil, fmt.Errorf("trailsqlite: tree sizes: %w", err)
	}
	defer rows.Close()
	out := make(map[string]int64, len(logs))
	for rows.Next() {
		var l string
		var n int64
		if err := rows.Scan(&l, &n); err != nil {
			return nil, fmt.Errorf("trailsqlite: tree sizes: %w", err)
		}
		out[l] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trailsqlite: tree sizes: %w", err)
	}
	return out, nil
}

// LeavesOf implements trailseal.BatchReader.
func (s *Store) LeavesOf(ctx context.Context, ranges []trailseal.LogRange) ([][]trailseal.SealedEvent, error) {
	out := make([][]trailseal.SealedEvent, len(ranges))
	if len(ranges) == 0 {
		return out, nil
	}
	list, err := rangesJSON(ranges)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT r.key, `+leafEventCols+` FROM `+
		fmt.Sprintf(rangeJoin, "trail_seal_leaves l", "l", "seq")+`
		LEFT JOIN trail_events e ON e.id = l.event_id ORDER BY r.key, l.seq`, list)
	if err != nil {
		return nil, fmt.Errorf("trailsqlite: leaves: %w", err)
	}
	defer rows.Close()
	sc := newLeafScanner(1)
	for rows.Next() {
		se, err := sc.scan(rows, 1, "")
		if err != nil {
			return nil, fmt.Errorf("trailsqlite: leaves: %w", err)
		}
		k, ok := sc.vals[0].(int64)
		if !ok || k < 0 || int(k) >= len(ranges) {
			return nil, fmt.Errorf("trailsqlite: leaves: bad range key %v", sc.vals[0])
		}
		se.Log = ranges[k].Log
		out[k] = append(out[k], se)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trailsqlite: leaves: %w", err)
	}
	return out, nil
}

// HashesOf implements trailseal.BatchReader.
func (s *Store) HashesOf(ctx context.Context, ranges []trailseal.LogRange) ([][]tlog.Hash, error) {
	hc := hashrange.New(ranges)
	if len(ranges) == 0 {
		return hc.Hashes(), nil
	}
	list, err := rangesJSON(ranges)
	if err != nil {
		return nil, err
	}
	var rows *sql.Rows
	if len(ranges) == 1 { // a large log's batch: the primary key's range, no JSON
		rows, err = s.db.QueryContext(ctx, `SELECT 0, idx, hash FROM trail_seal_hashes
			WHERE log = ? AND idx >= ? AND idx < ? ORDER BY idx`, ranges[0].Log, ranges[0].From, ranges[0].To)
	} else {
		rows, err = s.db.QueryContext(ctx, `SELECT r.key, h.idx, h.hash FROM `+
			fmt.Sprintf(rangeJoin, "trail_seal_hashes h", "h", "idx")+` ORDER BY r.key, h.idx`, list)
	}
	if err != nil {
		return nil, fmt.Errorf("trailsqlite: hashes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, x int64
		var h sql.RawBytes
		if err := rows.Scan(&k, &x, &h); err != nil {
			return nil, fmt.Errorf("trailsqlite: hashes: %w", err)
		}
		if err := hc.Add(k, x, h); err != nil {
			return nil, fmt.Errorf("trailsqlite: hashes: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trailsqlite: hashes: %w", err)
	}
	return hc.Hashes(), nil
}

// UnsealedOf implements trailseal.BatchReader.
func (s *Store) UnsealedOf(ctx context.Context, logs []string) (map[string][]uuid.UUID, error) {
	tenants := make([]string, len(logs))
	for i, l := range logs {
		tenants[i] = trailseal.TenantOf(l)
	}
	list, err := jsonList(tenants)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT e.tenant, e.id FROM trail_events e
		WHERE e.tenant IN (SELECT value FROM json_each(?))
		  AND NOT EXISTS (SELECT 1 FROM trail_seal_pending p WHERE p.seq = e.seq AND p.id = e.id)
		  AND NOT EXISTS (SELECT 1 FROM trail_seal_leaves l WHERE l.event_id = e.id)
		ORDER BY e.seq`, list)
	if err != nil {
		return nil, fmt.Errorf("trailsqlite: unsealed: %w", err)
	}
	defer rows.Close()
	out := map[string][]uuid.UUID{}
	for rows.Next() {
		var tenant string
		var id []byte
		if err := rows.Scan(&tenant, &id); err != nil {
			return nil, fmt.Errorf("trailsqlite: unsealed: %w", err)
		}
		if len(id) == 16 {
			log := trailseal.LogName(tenant)
			out[log] = append(out[log], uuid.UUID(id))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trailsqlite: unsealed: %w", err)
	}
	return out, nil
}

// PurgedRangesOf implements trailseal.BatchPurgeRecorder.
func (s *Store) PurgedRangesOf(ctx context.Context, logs []string) (map[string][]trailseal.SeqRange, error) {
	list, err := jsonList(logs)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT log, seq_from, seq_to FROM trail_seal_purges
		WHERE log IN (SELECT value FROM json_each(?)) ORDER BY log, seq_from`, list)
	if err != nil {
		return nil, fmt.Errorf("trailsqlite: purged ranges: %w", err)
	}
	defer rows.Close()
	out := map[string][]trailseal.SeqRange{}
	for rows.Next() {
		var l string
		var r trailseal.SeqRange
		if err := rows.Scan(&l, &r.From, &r.To); err != nil {
			return nil, fmt.Errorf("trailsqlite: purged ranges: %w", err)
		}
		out[l] = append(out[l], r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trailsqlite: purged ranges: %w", err)
	}
	return out, nil
}

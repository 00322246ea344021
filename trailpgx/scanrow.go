package trailpgx

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/storedjson"
	"github.com/trailhq/trail/trailseal"
)

// Reading rows back into events was ~71 % of `trail verify`'s and `trail
// seal`'s CPU in this process (BENCHMARKS.md, issue 14 item 7): pgx's Scan
// dispatch per column, a string allocation per text column, encoding/json's
// reflection over the changes and the metadata. rowDecoder reads the wire
// bytes of a row of selectColumns directly: binary uuid, timestamptz and
// int2, every text column copied into one string per row, and the JSON
// columns through internal/storedjson. A row it does not expect (a NULL
// where the schema has NOT NULL, an infinite time) goes through scanEvent,
// which decides it as before.

// selectTypes are the PostgreSQL types of selectColumns, in order.
var selectTypes = [...]uint32{
	pgtype.UUIDOID, pgtype.TimestamptzOID, pgtype.TimestamptzOID, pgtype.Int2OID, pgtype.TextOID,
	pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.JSONBOID,
	pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID,
	pgtype.JSONBOID, pgtype.JSONBOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID,
}

// rowDecoder decodes rows of one result of selectColumns.
type rowDecoder struct {
	raw  bool // the columns arrive as decode reads them
	text []int
	buf  []byte
}

// newRowDecoder checks the result's columns once: their types, and binary
// format where decode reads binary.
func newRowDecoder(fds []pgconn.FieldDescription) *rowDecoder {
	d := &rowDecoder{}
	if len(fds) != len(selectTypes) {
		return d
	}
	for i, fd := range fds {
		if fd.DataTypeOID != selectTypes[i] {
			return d
		}
		switch fd.DataTypeOID {
		case pgtype.UUIDOID, pgtype.TimestamptzOID, pgtype.Int2OID:
			if fd.Format != pgtype.BinaryFormatCode {
				return d
			}
		case pgtype.TextOID:
			d.text = append(d.text, i) // text is the same bytes in either format
		}
	}
	d.raw = true
	return d
}

// pgEpoch is 2000-01-01 UTC, where binary timestamptz counts from, in Unix
// microseconds.
const pgEpoch = 946684800 * 1000000

// binaryTime decodes an 8-byte binary timestamptz; false for ±infinity,
// which no time.Time holds.
func binaryTime(b []byte) (time.Time, bool) {
	us := int64(binary.BigEndian.Uint64(b))
	if us == math.MaxInt64 || us == math.MinInt64 || us > math.MaxInt64-pgEpoch {
		return time.Time{}, false
	}
	us += pgEpoch
	return time.Unix(us/1000000, us%1000000*1000).UTC(), true
}

// decodeRaw decodes one row's values; ok is false when the row is not of
// the expected form (the caller then scans it).
func (d *rowDecoder) decodeRaw(vals [][]byte, jsonb []bool) (ev trail.Event, ok bool, err error) {
	if !d.raw || len(vals) != len(selectTypes) {
		return ev, false, nil
	}
	if len(vals[0]) != 16 || len(vals[1]) != 8 || len(vals[2]) != 8 || len(vals[3]) != 2 {
		return ev, false, nil
	}
	var okO, okR bool
	ev.ID = uuid.UUID(vals[0])
	ev.OccurredAt, okO = binaryTime(vals[1])
	ev.RecordedAt, okR = binaryTime(vals[2])
	if !okO || !okR {
		return ev, false, nil
	}
	ev.SchemaVersion = int(int16(binary.BigEndian.Uint16(vals[3])))
	// Every text column into one string.
	d.buf = d.buf[:0]
	for _, i := range d.text {
		if vals[i] == nil {
			return ev, false, nil // NULL: scanEvent says what is wrong
		}
		d.buf = append(d.buf, vals[i]...)
	}
	all := string(d.buf)
	var off int
	str := func(i int) string {
		s := all[off : off+len(vals[i])]
		off += len(vals[i])
		return s
	}
	ev.Tenant = str(4)
	ev.Actor.Type = trail.ActorType(str(5))
	ev.Actor.ID, ev.Actor.Name, ev.Actor.Email = str(6), str(7), str(8)
	ev.Actor.IP, ev.Actor.UserAgent = str(9), str(10)
	ev.Action, ev.Target.Type, ev.Target.ID, ev.Target.Name = str(12), str(13), str(14), str(15)
	ev.Outcome, ev.Description = trail.Outcome(str(16)), str(17)
	ev.RequestID, ev.TraceID, ev.Source, ev.SpanID = str(20), str(21), str(22), str(23)
	j := func(i int) ([]byte, bool) {
		b := vals[i]
		if b == nil || !jsonb[i] {
			return b, true
		}
		if len(b) == 0 || b[0] != 1 { // binary jsonb: version 1, then the text
			return nil, false
		}
		return b[1:], true
	}
	obo, ok1 := j(11)
	changes, ok2 := j(18)
	meta, ok3 := j(19)
	if !ok1 || !ok2 || !ok3 {
		return ev, false, nil
	}
	return ev, true, decodeJSONColumns(&ev, obo, changes, meta)
}

// scanRows reads every row of a result of selectColumns.
func scanRows(rows pgx.Rows) ([]trail.Event, error) {
	defer rows.Close()
	fds := rows.FieldDescriptions()
	d := newRowDecoder(fds)
	jsonb := make([]bool, len(fds))
	for i, fd := range fds {
		jsonb[i] = fd.DataTypeOID == pgtype.JSONBOID && fd.Format == pgtype.BinaryFormatCode
	}
	var out []trail.Event
	for rows.Next() {
		ev, ok, err := d.decodeRaw(rows.RawValues(), jsonb)
		if !ok && err == nil {
			ev, err = scanEvent(rows.Scan)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, rows.Err()
}

// decodeJSONColumns sets ev's on-behalf-of actor, changes and metadata from
// their stored JSON (nil: NULL). jsonb keeps values, not their text: they
// come back in canonical form (storedjson for the usual shapes, the general
// path for the rest).
func decodeJSONColumns(ev *trail.Event, obo, changes, meta []byte) error {
	if obo != nil {
		var a trail.Actor
		if err := json.Unmarshal(obo, &a); err != nil {
			return fmt.Errorf("trailpgx: event %s: on_behalf_of: %w", ev.ID, err)
		}
		ev.Actor.OnBehalfOf = &a
	}
	if changes != nil {
		var ok bool
		if ev.Changes, ok = storedjson.Changes(changes); !ok {
			if err := json.Unmarshal(changes, &ev.Changes); err != nil {
				return fmt.Errorf("trailpgx: event %s: changes: %w", ev.ID, err)
			}
			for i := range ev.Changes {
				c := &ev.Changes[i]
				for _, v := range []*json.RawMessage{&c.Old, &c.New} {
					if *v == nil {
						continue
					}
					b, err := trail.CanonicalJSON(*v)
					if err != nil {
						return fmt.Errorf("trailpgx: event %s: changes: %w", ev.ID, err)
					}
					*v = b
				}
			}
		}
	}
	if meta != nil {
		var ok bool
		if ev.Metadata, ok = storedjson.Metadata(meta); !ok {
			b, err := trail.CanonicalJSON(meta)
			if err == nil {
				ev.Metadata, err = trail.DecodeMetadata(b)
			}
			if err != nil {
				return fmt.Errorf("trailpgx: event %s: metadata: %w", ev.ID, err)
			}
		}
	}
	return nil
}

// rawScanner reads rows of int8, uuid and bytea columns from their binary
// wire bytes instead of through Scan, whose per-value dispatch (and, for a
// uuid.UUID, a detour through text) cost more than the rest of reading a
// stored leaf or hash: a verify reads about three such rows per event. A
// result in another form, or a value of unexpected length, is scanned.
type rawScanner struct{ binary bool }

func newRawScanner(rows pgx.Rows) rawScanner {
	for _, fd := range rows.FieldDescriptions() {
		switch fd.DataTypeOID {
		case pgtype.Int8OID, pgtype.UUIDOID, pgtype.ByteaOID, pgtype.TimestamptzOID:
		default:
			return rawScanner{}
		}
		if fd.Format != pgtype.BinaryFormatCode {
			return rawScanner{}
		}
	}
	return rawScanner{binary: true}
}

// scan sets dst, one *int64, *uuid.UUID, *[]byte or *time.Time per column
// as Scan would, except that a []byte is valid only until the next row:
// callers copy it (into a tlog.Hash), and that a NULL time is the zero
// time.
func (r rawScanner) scan(rows pgx.Rows, dst ...any) error {
	vals := rows.RawValues()
	if !r.binary || len(vals) != len(dst) {
		return rows.Scan(dst...)
	}
	for i, d := range dst {
		v := vals[i]
		switch p := d.(type) {
		case *int64:
			if len(v) != 8 {
				return rows.Scan(dst...)
			}
			*p = int64(binary.BigEndian.Uint64(v))
		case *uuid.UUID:
			if len(v) != 16 {
				return rows.Scan(dst...)
			}
			*p = uuid.UUID(v)
		case *[]byte:
			if v == nil {
				return rows.Scan(dst...)
			}
			*p = v
		case *time.Time:
			switch {
			case v == nil:
				*p = time.Time{}
			case len(v) == 8:
				t, ok := binaryTime(v)
				if !ok {
					return rows.Scan(dst...)
				}
				*p = t
			default:
				return rows.Scan(dst...)
			}
		default:
			return rows.Scan(dst...)
		}
	}
	return nil
}

var _ trailseal.ReadConcurrency = (*Store)(nil)

// VerifyReads implements trailseal.ReadConcurrency: twice GOMAXPROCS reads
// in flight, so that the server works on some while this process decodes
// and hashes others (four against two cut verify's wall time by 20–35 %
// on two cores; eight did no better than four).
func (s *Store) VerifyReads() int { return 2 * runtime.GOMAXPROCS(0) }

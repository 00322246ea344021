package trailpgx

import (
	"bytes"
	"context"
	"encoding/binary"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail"
)

// Bulk appends send PostgreSQL's binary COPY format, encoded here in one
// pass over the batch before a connection is taken: no per-value trip
// through pgx's type map, and no Describe round trip per COPY (pgx's
// CopyFrom asks the server for the column types first; the types of
// Trail's own tables are known). The columns and their types are those of
// migrations 0001 and 0011; TestCopyBinaryMatchesPgx checks the bytes
// against pgx's own encoding.

// copyHeader starts a binary COPY stream: the signature, no flags, no
// header extension.
var copyHeader = []byte("PGCOPY\n\377\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

const (
	textOID = 25
	// microseconds from the Unix epoch to PostgreSQL's, 2000-01-01 UTC.
	pgEpochMicros = 946_684_800_000_000
)

// copyBuf accumulates one binary COPY stream.
type copyBuf struct{ b []byte }

func newCopyBuf(size int) *copyBuf {
	c := &copyBuf{b: make([]byte, 0, size)}
	c.b = append(c.b, copyHeader...)
	return c
}

func (c *copyBuf) row(n int) { c.b = binary.BigEndian.AppendUint16(c.b, uint16(n)) }

func (c *copyBuf) null() { c.b = binary.BigEndian.AppendUint32(c.b, 0xffffffff) }

func (c *copyBuf) text(s string) {
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(len(s)))
	c.b = append(c.b, s...)
}

func (c *copyBuf) uuid(id [16]byte) {
	c.b = binary.BigEndian.AppendUint32(c.b, 16)
	c.b = append(c.b, id[:]...)
}

func (c *copyBuf) time(t time.Time) {
	c.b = binary.BigEndian.AppendUint32(c.b, 8)
	us := t.Unix()*1_000_000 + int64(t.Nanosecond())/1000 - pgEpochMicros
	c.b = binary.BigEndian.AppendUint64(c.b, uint64(us))
}

func (c *copyBuf) int2(v int16) {
	c.b = binary.BigEndian.AppendUint32(c.b, 2)
	c.b = binary.BigEndian.AppendUint16(c.b, uint16(v))
}

// jsonb is the binary jsonb form: a version byte (1), then the JSON text.
func (c *copyBuf) jsonb(s *string) {
	if s == nil {
		c.null()
		return
	}
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(len(*s)+1))
	c.b = append(c.b, 1)
	c.b = append(c.b, *s...)
}

// textArray is a one-dimensional text[] without NULLs; nil is NULL.
func (c *copyBuf) textArray(a []string) {
	if a == nil {
		c.null()
		return
	}
	if len(a) == 0 { // an empty array has no dimensions
		c.b = binary.BigEndian.AppendUint32(c.b, 12)
		c.b = binary.BigEndian.AppendUint32(c.b, 0)
		c.b = binary.BigEndian.AppendUint32(c.b, 0)
		c.b = binary.BigEndian.AppendUint32(c.b, textOID)
		return
	}
	size := 20
	for _, s := range a {
		size += 4 + len(s)
	}
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(size))
	c.b = binary.BigEndian.AppendUint32(c.b, 1) // dimensions
	c.b = binary.BigEndian.AppendUint32(c.b, 0) // no NULLs
	c.b = binary.BigEndian.AppendUint32(c.b, textOID)
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(len(a)))
	c.b = binary.BigEndian.AppendUint32(c.b, 1) // lower bound
	for _, s := range a {
		c.text(s)
	}
}

// end closes the stream with the trailer.
func (c *copyBuf) end() []byte {
	c.b = binary.BigEndian.AppendUint16(c.b, 0xffff)
	return c.b
}

// eventRow appends r as one row of insertColumns.
func (c *copyBuf) eventRow(r *row) {
	ev := r.ev
	c.row(len(insertColumns))
	c.uuid(ev.ID)
	c.time(ev.OccurredAt)
	c.time(ev.RecordedAt)
	c.int2(int16(ev.SchemaVersion))
	c.text(ev.Tenant)
	c.text(string(ev.Actor.Type))
	c.text(ev.Actor.ID)
	c.text(ev.Actor.Name)
	c.text(ev.Actor.Email)
	c.text(ev.Actor.IP)
	c.text(ev.Actor.UserAgent)
	c.jsonb(r.obo)
	c.text(ev.Action)
	c.text(ev.Target.Type)
	c.text(ev.Target.ID)
	c.text(ev.Target.Name)
	c.text(string(ev.Outcome))
	c.text(ev.Description)
	c.jsonb(r.changes)
	c.textArray(r.fields)
	c.jsonb(r.meta)
	c.text(ev.RequestID)
	c.text(ev.TraceID)
	c.text(ev.Source)
	c.text(ev.SpanID)
	c.digest(ev.Lookup.ActorName)
	c.digest(ev.Lookup.ActorEmail)
}

// digest appends a bytea of 16 bytes, or NULL for the zero Digest.
func (c *copyBuf) digest(d trail.Digest) {
	if d.IsZero() {
		c.null()
		return
	}
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(len(d)))
	c.b = append(c.b, d[:]...)
}

// rowSize estimates r's bytes in the stream, to size the buffer once.
func rowSize(r *row) int {
	ev := r.ev
	n := 2 + 27*4 + 16 + 8 + 8 + 2 + 2*16 + len(ev.Tenant) + len(ev.Actor.Type) + len(ev.Actor.ID) + len(ev.Actor.Name) +
		len(ev.Actor.Email) + len(ev.Actor.IP) + len(ev.Actor.UserAgent) + len(ev.Action) + len(ev.Target.Type) +
		len(ev.Target.ID) + len(ev.Target.Name) + len(ev.Outcome) + len(ev.Description) + len(ev.RequestID) +
		len(ev.TraceID) + len(ev.Source) + len(ev.SpanID)
	for _, s := range []*string{r.obo, r.changes, r.meta} {
		if s != nil {
			n += 1 + len(*s)
		}
	}
	n += 20 + len(r.fields)*4
	for _, f := range r.fields {
		n += len(f)
	}
	return n
}

// copyEvents is the binary COPY stream of b's rows into events, of those
// for which keep is true (every row when keep is nil), in batch order.
// (Ordering the rows by tenant, for neighbouring insertions into the tenant
// b-trees, was measured slower: 12.4k against 14.7k events/s in one run of
// BenchmarkIngestPaths' kind — sorted insertions into the middle of a b-tree
// split its pages half full.)
func (b *batch) copyEvents(keep func(i int) bool) []byte {
	size := len(copyHeader) + 2
	for i := range b.rows {
		if keep == nil || keep(i) {
			size += rowSize(&b.rows[i])
		}
	}
	c := newCopyBuf(size)
	for i := range b.rows {
		if keep == nil || keep(i) {
			c.eventRow(&b.rows[i])
		}
	}
	return c.end()
}

// copyBinary runs one COPY … FROM STDIN (FORMAT binary) of stream into
// table's columns.
func (s *Store) copyBinary(ctx context.Context, tx pgx.Tx, table string, columns string, stream []byte) error {
	_, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(stream),
		"COPY "+s.schema+"."+table+" ("+columns+") FROM STDIN (FORMAT binary)")
	return err
}

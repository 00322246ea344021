package trailpgx

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/trailhq/trail"
)

// pgxCopyRow is r as pgx itself encodes it for a binary COPY: each value of
// copyValues through pgx's type map under the column's type.
func pgxCopyRow(t testing.TB, r *row) []byte {
	t.Helper()
	oids := map[string]uint32{"id": pgtype.UUIDOID, "occurred_at": pgtype.TimestamptzOID, "recorded_at": pgtype.TimestamptzOID,
		"schema_version": pgtype.Int2OID, "on_behalf_of": pgtype.JSONBOID, "changes": pgtype.JSONBOID, "metadata": pgtype.JSONBOID,
		"changed_fields": pgtype.TextArrayOID}
	m := pgtype.NewMap()
	buf := binary.BigEndian.AppendUint16(nil, uint16(len(insertColumns)))
	for i, v := range r.copyValues() {
		oid, ok := oids[insertColumns[i]]
		if !ok {
			oid = pgtype.TextOID
		}
		at := len(buf)
		buf = append(buf, 0, 0, 0, 0)
		out, err := m.Encode(oid, pgtype.BinaryFormatCode, v, buf)
		if err != nil {
			t.Fatalf("pgx encode %s: %v", insertColumns[i], err)
		}
		if out == nil {
			buf = binary.BigEndian.AppendUint32(buf[:at], 0xffffffff)
			continue
		}
		buf = out
		binary.BigEndian.PutUint32(buf[at:], uint32(len(buf)-at-4))
	}
	return buf
}

func checkCopyRow(t testing.TB, ev trail.Event) {
	t.Helper()
	r, err := encode(&ev)
	if err != nil {
		return // refused before anything is sent, as on every path
	}
	c := &copyBuf{}
	c.eventRow(&r)
	if want := pgxCopyRow(t, &r); !bytes.Equal(c.b, want) {
		t.Fatalf("binary COPY row differs from pgx's encoding\n got %x\nwant %x", c.b, want)
	}
	if n := rowSize(&r); len(c.b) > n {
		t.Errorf("rowSize %d under the row's %d bytes", n, len(c.b))
	}
}

// TestCopyBinaryMatchesPgx: the hand-written binary COPY rows are byte for
// byte what pgx's own encoding of the same values gives, for every column
// type, NULLs, times before 1970 and 2000, and non-ASCII text.
func TestCopyBinaryMatchesPgx(t *testing.T) {
	full := trail.Event{
		ID: uuid.MustParse("0190a3c4-1234-7abc-8def-0123456789ab"), OccurredAt: time.Date(2026, 12, 7, 8, 1, 2, 345678000, time.UTC),
		RecordedAt: time.Date(2026, 12, 7, 8, 1, 3, 0, time.UTC), SchemaVersion: 2, Tenant: "acme",
		Actor: trail.Actor{Type: trail.ActorUser, ID: "42", Name: "Zoë Ünal", Email: "z@example.com", IP: "10.0.0.1", UserAgent: "curl/8",
			OnBehalfOf: &trail.Actor{Type: trail.ActorUser, ID: "7"}},
		Action: "subscription.update", Target: trail.Target{Type: "subscription", ID: "sub_1", Name: "Pro 🚀"}, Outcome: trail.OutcomeSuccess,
		Description: "Changed plan", Changes: []trail.Change{trail.Changed("plan", "free", "pro"), trail.Changed("seats", 5, 10)},
		Metadata: map[string]any{"k": []any{1, "x", map[string]any{"n": nil}}}, RequestID: "req-1", TraceID: "t", Source: "billing", SpanID: "s",
	}
	bare := trail.Event{ID: uuid.New(), OccurredAt: time.Date(1969, 7, 20, 20, 17, 40, 1000, time.UTC),
		RecordedAt: time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC), Actor: trail.Actor{Type: trail.ActorSystem}, Action: "x.y"}
	for _, ev := range []trail.Event{full, bare} {
		checkCopyRow(t, ev)
	}
	// The stream frame: header, trailer.
	c := newCopyBuf(0)
	if got := c.end(); !bytes.Equal(got, append([]byte("PGCOPY\n\xff\r\n\x00"), 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff)) {
		t.Errorf("empty stream %x", got)
	}
	var empty copyBuf
	empty.textArray([]string{})
	if want := []byte{0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25}; !bytes.Equal(empty.b, want) {
		t.Errorf("empty text[] %x, want %x", empty.b, want)
	}
}

func FuzzCopyBinaryRow(f *testing.F) {
	f.Add("acme", "user.update", "Zoë", "plan", `"free"`, `{"k":1}`, int64(1_700_000_000_123_456), int64(0))
	f.Add("", "a", "", "", "", "", int64(-1_000_000_000_000_000), int64(946_684_800_000_000))
	f.Fuzz(func(t *testing.T, tenant, action, name, field, value, meta string, occ, rec int64) {
		ev := trail.Event{ID: uuid.New(), OccurredAt: time.UnixMicro(occ).UTC(), RecordedAt: time.UnixMicro(rec).UTC(),
			SchemaVersion: 1, Tenant: tenant, Actor: trail.Actor{Type: trail.ActorUser, ID: "1", Name: name}, Action: action,
			Description: name + tenant, SpanID: field}
		if field != "" && json.Valid([]byte(value)) {
			ev.Changes = []trail.Change{{Field: field, New: json.RawMessage(value)}}
		}
		var m map[string]any
		if json.Unmarshal([]byte(meta), &m) == nil && len(m) > 0 {
			ev.Metadata = m
		}
		checkCopyRow(t, ev)
	})
}

package trailarchive

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/parquet-go/parquet-go"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
)

// Archive file formats, named by the file's "trail.format" key/value
// metadata. Trail writes FormatV2 and reads both (docs/archive-format.md).
const (
	// FormatV1: seq, times as plain int64 microseconds, action, and the
	// event's canonical bytes as an untyped binary column.
	FormatV1 = "trail-archive-v1"
	// FormatV2: one typed column per event member (timestamps, tenant,
	// actor, target, JSON-annotated changes and metadata), from which the
	// canonical bytes are rebuilt; the bytes themselves only for an event
	// the columns cannot rebuild.
	FormatV2 = "trail-archive-v2"
)

// FormatKey is the Parquet key/value metadata key naming the file's format.
const FormatKey = "trail.format"

// Row is one archived event as read back, whatever the file's format. Event
// holds the event's canonical bytes exactly as its leaf hashed them
// (docs/canonical-encoding.md), so an archived event is checked against its
// leaf by hashing them. It is also the on-disk row of FormatV1 files: times
// are unix microseconds, UTC.
type Row struct {
	Seq        int64  `parquet:"seq,delta"`
	RecordedAt int64  `parquet:"recorded_at,delta"`
	OccurredAt int64  `parquet:"occurred_at,delta"`
	Action     string `parquet:"action,dict"`
	Event      []byte `parquet:"event"`
}

// rowV2 is the on-disk row of FormatV2 files: any Parquet reader sees typed
// columns (docs/archive-format.md). Empty strings are written as nulls.
// The struct tags are for reading; files are written with schemaV2, which
// gives the JSON columns their logical type (parquet-go v0.32's "json" tag
// would marshal the string again, and panics with "optional").
// Event is null unless rebuilding the canonical bytes from the other
// columns would not give the leaf's bytes back.
type rowV2 struct {
	Seq             int64    `parquet:"seq,delta"`
	ID              [16]byte `parquet:"id,uuid"`
	RecordedAt      int64    `parquet:"recorded_at,timestamp(microsecond:utc),delta"`
	OccurredAt      int64    `parquet:"occurred_at,timestamp(microsecond:utc),delta"`
	Tenant          string   `parquet:"tenant,optional,dict"`
	ActorType       string   `parquet:"actor_type,dict"`
	ActorID         string   `parquet:"actor_id,optional,dict"`
	ActorName       string   `parquet:"actor_name,optional,dict"`
	ActorEmail      string   `parquet:"actor_email,optional,dict"`
	ActorIP         string   `parquet:"actor_ip,optional,dict"`
	ActorUserAgent  string   `parquet:"actor_user_agent,optional,dict"`
	ActorOnBehalfOf string   `parquet:"actor_on_behalf_of,optional"`
	Action          string   `parquet:"action,dict"`
	TargetType      string   `parquet:"target_type,optional,dict"`
	TargetID        string   `parquet:"target_id,optional,dict"`
	TargetName      string   `parquet:"target_name,optional,dict"`
	Outcome         string   `parquet:"outcome,dict"`
	Description     string   `parquet:"description,optional,dict"`
	Changes         string   `parquet:"changes,optional"`
	Metadata        string   `parquet:"metadata,optional"`
	RequestID       string   `parquet:"request_id,optional"`
	TraceID         string   `parquet:"trace_id,optional"`
	SpanID          string   `parquet:"span_id,optional"`
	Source          string   `parquet:"source,optional,dict"`
	SchemaVersion   int32    `parquet:"schema_version,dict"`
	Event           []byte   `parquet:"event,optional"`
}

// schemaV2 is FormatV2's schema (columns in name order, as a parquet.Group
// lays them out). Dictionaries on the columns of few distinct values, delta
// encoding on the ordered integers.
var schemaV2 = parquet.NewSchema("trail_event", parquet.Group{
	"seq":                parquet.Encoded(parquet.Leaf(parquet.Int64Type), &parquet.DeltaBinaryPacked),
	"id":                 parquet.UUID(),
	"recorded_at":        parquet.Encoded(parquet.Timestamp(parquet.Microsecond), &parquet.DeltaBinaryPacked),
	"occurred_at":        parquet.Encoded(parquet.Timestamp(parquet.Microsecond), &parquet.DeltaBinaryPacked),
	"tenant":             dictString(true),
	"actor_type":         dictString(false),
	"actor_id":           dictString(true),
	"actor_name":         dictString(true),
	"actor_email":        dictString(true),
	"actor_ip":           dictString(true),
	"actor_user_agent":   dictString(true),
	"actor_on_behalf_of": parquet.Optional(parquet.JSON()),
	"action":             dictString(false),
	"target_type":        dictString(true),
	"target_id":          dictString(true),
	"target_name":        dictString(true),
	"outcome":            dictString(false),
	"description":        dictString(true),
	"changes":            parquet.Optional(parquet.JSON()),
	"metadata":           parquet.Optional(parquet.JSON()),
	"request_id":         parquet.Optional(parquet.String()),
	"trace_id":           parquet.Optional(parquet.String()),
	"span_id":            parquet.Optional(parquet.String()),
	"source":             dictString(true),
	"schema_version":     parquet.Encoded(parquet.Leaf(parquet.Int32Type), &parquet.RLEDictionary),
	"event":              parquet.Optional(parquet.Leaf(parquet.ByteArrayType)),
})

func dictString(optional bool) parquet.Node {
	n := parquet.Encoded(parquet.String(), &parquet.RLEDictionary)
	if optional {
		return parquet.Optional(n)
	}
	return n
}

// unboundedColumns are the columns whose values can be long: they get no
// statistics, neither in page headers nor in the footer, so that no event's
// text is copied into the file's metadata.
var unboundedColumns = []string{"actor_name", "actor_email", "actor_user_agent", "actor_on_behalf_of",
	"target_name", "description", "changes", "metadata", "request_id", "trace_id", "event"}

// writerOptions are FormatV2's: zstd, dictionaries on the low-cardinality
// columns (struct tags), bounded statistics, 64 KiB dictionary cap per
// column chunk (a column of mostly distinct values falls back to plain).
func writerOptions() []parquet.WriterOption {
	opts := []parquet.WriterOption{
		parquet.Compression(&parquet.Zstd),
		parquet.KeyValueMetadata(FormatKey, FormatV2),
		parquet.CreatedBy("trail", "", ""),
		parquet.DictionaryMaxBytes(64 << 10),
		parquet.ColumnIndexSizeLimit(func([]string) int { return 16 }),
	}
	for _, c := range unboundedColumns {
		opts = append(opts, parquet.SkipPageBounds(c), parquet.SkipPageStatistics(c))
	}
	return opts
}

// encodeParquet writes the leaves' events as one FormatV2 file (runs write
// shared files with packBatches; this is the one-file form the tests and
// benchmarks use).
func encodeParquet(leaves []trailseal.SealedEvent) ([]byte, error) {
	rows := make([]rowV2, 0, len(leaves))
	for _, l := range leaves {
		r, err := newRowV2(l.Seq, l.Event)
		if err != nil {
			return nil, err
		}
		rows = append(rows, r)
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[rowV2](&buf, append(writerOptions(), schemaV2)...)
	if _, err := w.Write(rows); err != nil {
		return nil, fmt.Errorf("trailarchive: parquet: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("trailarchive: parquet: %w", err)
	}
	return buf.Bytes(), nil
}

// newRowV2 spreads ev over the columns. The JSON columns hold the canonical
// form of their member (cut from the canonical bytes); when the columns do
// not rebuild the canonical bytes exactly, the row carries them in Event.
func newRowV2(seq int64, ev *trail.Event) (rowV2, error) {
	b, err := trailseal.CanonicalBytes(ev)
	if err != nil {
		return rowV2{}, err
	}
	var members struct {
		Actor struct {
			OnBehalfOf json.RawMessage `json:"on_behalf_of"`
		} `json:"actor"`
		Changes  json.RawMessage `json:"changes"`
		Metadata json.RawMessage `json:"metadata"`
	}
	if err := json.Unmarshal(b, &members); err != nil {
		return rowV2{}, fmt.Errorf("trailarchive: seq %d: %w", seq, err)
	}
	r := rowV2{
		Seq: seq, ID: ev.ID, RecordedAt: ev.RecordedAt.UnixMicro(), OccurredAt: ev.OccurredAt.UnixMicro(),
		Tenant: ev.Tenant, ActorType: string(ev.Actor.Type), ActorID: ev.Actor.ID, ActorName: ev.Actor.Name,
		ActorEmail: ev.Actor.Email, ActorIP: ev.Actor.IP, ActorUserAgent: ev.Actor.UserAgent,
		ActorOnBehalfOf: string(members.Actor.OnBehalfOf),
		Action:          ev.Action, TargetType: ev.Target.Type, TargetID: ev.Target.ID, TargetName: ev.Target.Name,
		Outcome: string(ev.Outcome), Description: ev.Description,
		Changes: string(members.Changes), Metadata: string(members.Metadata),
		RequestID: ev.RequestID, TraceID: ev.TraceID, SpanID: ev.SpanID, Source: ev.Source,
		SchemaVersion: int32(ev.SchemaVersion),
	}
	if back, err := r.canonical(); err != nil || !bytes.Equal(back, b) {
		r.Event = b
	}
	return r, nil
}

// canonical returns the row's canonical event bytes: Event when the writer
// stored them, else rebuilt from the columns.
func (r *rowV2) canonical() ([]byte, error) {
	if r.Event != nil {
		return r.Event, nil
	}
	ev := trail.Event{
		ID: uuid.UUID(r.ID), RecordedAt: time.UnixMicro(r.RecordedAt).UTC(), OccurredAt: time.UnixMicro(r.OccurredAt).UTC(),
		Tenant: r.Tenant, Actor: trail.Actor{Type: trail.ActorType(r.ActorType), ID: r.ActorID, Name: r.ActorName,
			Email: r.ActorEmail, IP: r.ActorIP, UserAgent: r.ActorUserAgent},
		Action: r.Action, Target: trail.Target{Type: r.TargetType, ID: r.TargetID, Name: r.TargetName},
		Outcome: trail.Outcome(r.Outcome), Description: r.Description,
		RequestID: r.RequestID, TraceID: r.TraceID, SpanID: r.SpanID, Source: r.Source, SchemaVersion: int(r.SchemaVersion),
	}
	if r.ActorOnBehalfOf != "" {
		if err := strictJSON(r.ActorOnBehalfOf, &ev.Actor.OnBehalfOf); err != nil {
			return nil, fmt.Errorf("actor_on_behalf_of: %w", err)
		}
	}
	if r.Changes != "" {
		if err := strictJSON(r.Changes, &ev.Changes); err != nil {
			return nil, fmt.Errorf("changes: %w", err)
		}
	}
	if r.Metadata != "" {
		if err := strictJSON(r.Metadata, &ev.Metadata); err != nil {
			return nil, fmt.Errorf("metadata: %w", err)
		}
	}
	return trailseal.CanonicalBytes(&ev)
}

// strictJSON decodes s into v as ParseCanonical does: numbers kept as
// written, unknown members refused.
func strictJSON(s string, v any) error {
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	d.UseNumber()
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// decodeParquet reads every row of an archive file of either format.
func decodeParquet(data []byte) ([]Row, error) {
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("trailarchive: parquet: %w", err)
	}
	return decodeRange(f, 0, f.NumRows())
}

// decodeRange reads n rows of an open archive file of either format from row
// first on. A FormatV2 row whose columns do not rebuild an event gets the
// Event bytes "unreadable: ..." so that it fails its leaf check rather than
// the file.
func decodeRange(f *parquet.File, first, n int64) ([]Row, error) {
	format, _ := f.Lookup(FormatKey)
	switch format {
	case FormatV1, "": // files written before the key existed are FormatV1
		return readRange[Row](f, first, n)
	case FormatV2:
	default:
		return nil, fmt.Errorf("trailarchive: parquet: format %q is not %s or %s", format, FormatV1, FormatV2)
	}
	v2, err := readRange[rowV2](f, first, n)
	if err != nil {
		return nil, err
	}
	rows := make([]Row, len(v2))
	for i := range v2 {
		r := &v2[i]
		b, err := r.canonical()
		if err != nil {
			b = []byte("unreadable: " + err.Error())
		}
		rows[i] = Row{Seq: r.Seq, RecordedAt: r.RecordedAt, OccurredAt: r.OccurredAt, Action: r.Action, Event: b}
	}
	return rows, nil
}

// Decode parses the row's canonical bytes back into the event as stored.
func (r *Row) Decode() (trail.Event, error) {
	ev, err := trail.ParseCanonical(r.Event)
	if err != nil {
		return ev, fmt.Errorf("trailarchive: seq %d: %w", r.Seq, err)
	}
	return ev, nil
}

package trailarchive

import (
	"bytes"
	"fmt"

	"github.com/parquet-go/parquet-go"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
)

// Row is one archived event in a Parquet file. Event holds the event's
// canonical bytes exactly as its leaf hashed them (docs/canonical-encoding.md),
// so an archived event is checked against its leaf without re-encoding; the
// other columns are for readers that filter without parsing JSON (DuckDB,
// Spark): times are unix microseconds, UTC.
type Row struct {
	Seq        int64  `parquet:"seq,delta"`
	RecordedAt int64  `parquet:"recorded_at,delta"`
	OccurredAt int64  `parquet:"occurred_at,delta"`
	Action     string `parquet:"action,dict"`
	Event      []byte `parquet:"event"`
}

// encodeParquet writes the leaves' events as one zstd-compressed Parquet file.
func encodeParquet(leaves []trailseal.SealedEvent) ([]byte, error) {
	rows := make([]Row, 0, len(leaves))
	for _, l := range leaves {
		b, err := trailseal.CanonicalBytes(l.Event)
		if err != nil {
			return nil, err
		}
		rows = append(rows, Row{Seq: l.Seq, RecordedAt: l.Event.RecordedAt.UnixMicro(),
			OccurredAt: l.Event.OccurredAt.UnixMicro(), Action: l.Event.Action, Event: b})
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[Row](&buf, parquet.Compression(&parquet.Zstd),
		parquet.KeyValueMetadata("trail.format", "trail-archive-v1"))
	if _, err := w.Write(rows); err != nil {
		return nil, fmt.Errorf("trailarchive: parquet: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("trailarchive: parquet: %w", err)
	}
	return buf.Bytes(), nil
}

// decodeParquet reads every row of an archive file.
func decodeParquet(data []byte) ([]Row, error) {
	rows, err := parquet.Read[Row](bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("trailarchive: parquet: %w", err)
	}
	return rows, nil
}

// Event parses the row's canonical bytes back into the event as stored.
func (r *Row) Decode() (trail.Event, error) {
	ev, err := trail.ParseCanonical(r.Event)
	if err != nil {
		return ev, fmt.Errorf("trailarchive: seq %d: %w", r.Seq, err)
	}
	return ev, nil
}

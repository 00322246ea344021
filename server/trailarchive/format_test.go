package trailarchive

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/parquet-go/parquet-go"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/tlog"
)

// variedLeaves returns sealed events that use every member of the canonical
// form: platform events, impersonation, null and redacted changes, metadata
// with numbers as written and keys out of UTF-8 order, trace and span ids,
// both schema versions. IDs and times are fixed (golden files use them).
func variedLeaves(t testing.TB) []trailseal.SealedEvent {
	t.Helper()
	at := time.Date(2024, 11, 3, 9, 30, 0, 123456000, time.UTC)
	evs := []trail.Event{
		{Tenant: "acme", Actor: trail.Actor{Type: trail.ActorUser, ID: "u_1", Name: "Ada", Email: "ada@acme.test", IP: "192.0.2.7", UserAgent: "Mozilla/5.0"},
			Action: "subscription.update", Target: trail.Target{Type: "subscription", ID: "sub_acme", Name: "Acme Pro"},
			Description: "Changed plan to pro", Changes: []trail.Change{trail.Changed("plan", "free", "pro"),
				{Field: "coupon", Old: json.RawMessage(`null`), New: json.RawMessage(`"X1"`)}, {Field: "card", Redacted: true}},
			Metadata:  map[string]any{"seats": json.Number("1e3"), "ﬓ": "b", "😀": "a", "nested": map[string]any{"z": true, "a": nil}},
			RequestID: "req_1", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", Source: "billing-api", SchemaVersion: 2},
		{Actor: trail.Actor{Type: trail.ActorSystem}, Action: "retention.purge", Outcome: trail.OutcomeFailure, SchemaVersion: 1},
		{Tenant: "globex", Actor: trail.Actor{Type: trail.ActorUser, ID: "agent_7", OnBehalfOf: &trail.Actor{Type: trail.ActorUser, ID: "cust_9", Email: "c@globex.test"}},
			Action: "user.delete", Target: trail.Target{Type: "user", ID: "u_42"}, Outcome: trail.OutcomeDenied,
			Description: "line one\nline \"two\" \u00e9", SchemaVersion: 1},
		{Tenant: "acme", Actor: trail.Actor{Type: trail.ActorService, ID: "svc"}, Action: "invoice.paid",
			Target: trail.Target{Type: "invoice", ID: "inv_1"}, Metadata: map[string]any{"amount": json.Number("12.50")}, SchemaVersion: 1},
	}
	out := make([]trailseal.SealedEvent, len(evs))
	for i := range evs {
		ev := &evs[i]
		ev.ID = uuid.MustParse(fmt.Sprintf("0192f0c4-0000-7000-8000-%012d", i+1))
		ev.OccurredAt, ev.RecordedAt = at.Add(time.Duration(i)*time.Minute), at.Add(time.Duration(i)*time.Minute+time.Millisecond)
		if ev.Outcome == "" {
			ev.Outcome = trail.OutcomeSuccess
		}
		if err := ev.Normalize(); err != nil {
			t.Fatal(err)
		}
		b, err := trailseal.CanonicalBytes(ev)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = trailseal.SealedEvent{Leaf: trailseal.Leaf{Log: trailseal.LogName(ev.Tenant), Seq: int64(10 + i), EventID: ev.ID, Hash: tlog.RecordHash(b)}, Event: ev}
	}
	return out
}

// Every event survives FormatV2: the canonical bytes rebuilt from the
// columns hash to the leaf, and none needs its bytes stored.
func TestFormatV2RoundTrip(t *testing.T) {
	leaves := append(variedLeaves(t), benchLeaves(300)...)
	data, err := encodeParquet(leaves)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := decodeParquet(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(leaves) {
		t.Fatalf("%d rows for %d events", len(rows), len(leaves))
	}
	for i, r := range rows {
		if r.Seq != leaves[i].Seq || tlog.RecordHash(r.Event) != leaves[i].Hash {
			t.Fatalf("row %d (seq %d): %s does not hash to its leaf", i, r.Seq, r.Event)
		}
		if _, err := r.Decode(); err != nil {
			t.Fatal(err)
		}
	}
	v2, err := parquet.Read[rowV2](bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range v2 {
		if r.Event != nil {
			t.Errorf("seq %d stored its canonical bytes: the columns should rebuild them", r.Seq)
		}
	}
}

// An event the columns cannot rebuild (here: a member the columns do not
// have, simulated by a row whose rebuild differs) keeps its bytes, and an
// edited column is caught by the leaf hash.
func TestFormatV2FallbackAndEdit(t *testing.T) {
	leaves := variedLeaves(t)
	r, err := newRowV2(leaves[0].Seq, leaves[0].Event)
	if err != nil || r.Event != nil {
		t.Fatalf("%v %s", err, r.Event)
	}
	r.Description = "Changed plan to free"
	b, err := r.canonical()
	if err != nil || tlog.RecordHash(b) == leaves[0].Hash {
		t.Fatalf("an edited description still hashes to the leaf (%v)", err)
	}
	r.Event = []byte("stored")
	if b, _ := r.canonical(); string(b) != "stored" {
		t.Fatalf("stored bytes not preferred: %s", b)
	}
	r = rowV2{Changes: "[{"}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[rowV2](&buf, append(writerOptions(), schemaV2)...)
	if _, err := w.Write([]rowV2{r}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	rows, err := decodeParquet(buf.Bytes())
	if err != nil || len(rows) != 1 || !strings.HasPrefix(string(rows[0].Event), "unreadable: changes") {
		t.Fatalf("%v %v", err, rows)
	}
	if _, err := rows[0].Decode(); err == nil {
		t.Fatal("an unreadable row decoded")
	}
}

// An independent reading of a FormatV2 file: parquet-go's generic file API,
// no Trail struct, finds the columns, their physical and logical types, the
// format key, values of one row, and statistics that copy no long text.
func TestFormatV2Schema(t *testing.T) {
	leaves := variedLeaves(t)
	data, err := encodeParquet(leaves)
	if err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := f.Lookup("trail.format"); v != "trail-archive-v2" {
		t.Fatalf("trail.format %q", v)
	}
	want := map[string]string{ // column: physical type / logical type / repetition
		"seq": "INT64/INT(64,true)/required", "id": "FIXED_LEN_BYTE_ARRAY/UUID/required",
		"recorded_at": "INT64/TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)/required",
		"occurred_at": "INT64/TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)/required",
		"tenant":      "BYTE_ARRAY/STRING/optional", "actor_type": "BYTE_ARRAY/STRING/required",
		"actor_id": "BYTE_ARRAY/STRING/optional", "actor_name": "BYTE_ARRAY/STRING/optional",
		"actor_email": "BYTE_ARRAY/STRING/optional", "actor_ip": "BYTE_ARRAY/STRING/optional",
		"actor_user_agent": "BYTE_ARRAY/STRING/optional", "actor_on_behalf_of": "BYTE_ARRAY/JSON/optional",
		"action": "BYTE_ARRAY/STRING/required", "target_type": "BYTE_ARRAY/STRING/optional",
		"target_id": "BYTE_ARRAY/STRING/optional", "target_name": "BYTE_ARRAY/STRING/optional",
		"outcome": "BYTE_ARRAY/STRING/required", "description": "BYTE_ARRAY/STRING/optional",
		"changes": "BYTE_ARRAY/JSON/optional", "metadata": "BYTE_ARRAY/JSON/optional",
		"request_id": "BYTE_ARRAY/STRING/optional", "trace_id": "BYTE_ARRAY/STRING/optional",
		"span_id": "BYTE_ARRAY/STRING/optional", "source": "BYTE_ARRAY/STRING/optional",
		"schema_version": "INT32/INT(32,true)/required", "event": "BYTE_ARRAY//optional",
	}
	fields := f.Schema().Fields()
	if len(fields) != len(want) {
		t.Errorf("%d columns, want %d", len(fields), len(want))
	}
	for _, fd := range fields {
		lt := ""
		if l := fd.Type().LogicalType(); l != nil {
			lt = l.String()
			if strings.HasPrefix(lt, "STRING") {
				lt = "STRING"
			}
		}
		rep := "required"
		if fd.Optional() {
			rep = "optional"
		}
		got := fd.Type().Kind().String() + "/" + lt + "/" + rep
		got = strings.NewReplacer("ByteArray", "BYTE_ARRAY", "FixedLenByteArray", "FIXED_LEN_BYTE_ARRAY", "Int64", "INT64", "Int32", "INT32").Replace(got)
		if w, ok := want[fd.Name()]; !ok || w != got {
			t.Errorf("column %s: %s, want %s", fd.Name(), got, w)
		}
	}
	// Values of the first row, by column name, through the generic reader.
	cols := map[string]int{}
	for i, fd := range fields {
		cols[fd.Name()] = i
	}
	rows := make([]parquet.Row, len(leaves))
	rr := parquet.NewReader(f)
	n, _ := rr.ReadRows(rows)
	rr.Close()
	if n != len(leaves) {
		t.Fatalf("%d rows", n)
	}
	val := func(row parquet.Row, col string) parquet.Value {
		for _, v := range row {
			if v.Column() == cols[col] {
				return v
			}
		}
		t.Fatalf("no column %s", col)
		return parquet.Value{}
	}
	first, platform := rows[0], rows[1]
	if got := val(first, "recorded_at").Int64(); got != leaves[0].Event.RecordedAt.UnixMicro() {
		t.Errorf("recorded_at %d", got)
	}
	for col, w := range map[string]string{"tenant": "acme", "actor_id": "u_1", "target_id": "sub_acme", "action": "subscription.update",
		"changes": `[{"field":"plan","new":"pro","old":"free"},{"field":"coupon","new":"X1","old":null},{"field":"card","redacted":true}]`} {
		if got := val(first, col).String(); got != w {
			t.Errorf("%s %q, want %q", col, got, w)
		}
	}
	if !val(platform, "tenant").IsNull() || !val(platform, "event").IsNull() {
		t.Errorf("a platform event's tenant (or a rebuildable event's bytes) is not null")
	}
	// Statistics: nothing longer than 16 bytes in the footer or the
	// column index, and no bounds at all on the long columns.
	for _, rg := range f.Metadata().RowGroups {
		for _, cc := range rg.Columns {
			st := cc.MetaData.Statistics
			for _, b := range [][]byte{st.MinValue, st.MaxValue, st.Min, st.Max} {
				if len(b) > 16 {
					t.Errorf("column %v: a %d-byte statistic %q", cc.MetaData.PathInSchema, len(b), b)
				}
			}
		}
	}
	for _, ci := range f.ColumnIndexes() {
		for _, b := range append(ci.MinValues, ci.MaxValues...) {
			if len(b) > 16 {
				t.Errorf("a %d-byte column index bound %q", len(b), b)
			}
		}
	}
	if bytes.Count(data, []byte("Changed plan to pro")) > 1 {
		t.Error("the description is in the file more than once (copied into statistics)")
	}
}

// Files of the first format (trail-archive-v1: the canonical bytes in an
// untyped column) still read: a golden file written by that encoder.
func TestFormatV1Fixture(t *testing.T) {
	leaves := variedLeaves(t)
	path := filepath.Join("testdata", "format", "v1.parquet")
	if *updateGolden {
		data, err := encodeParquetV1(leaves)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := decodeParquet(data)
	if err != nil || len(rows) != len(leaves) {
		t.Fatalf("%d rows: %v", len(rows), err)
	}
	for i, r := range rows {
		if r.Seq != leaves[i].Seq || tlog.RecordHash(r.Event) != leaves[i].Hash {
			t.Fatalf("seq %d does not hash to its leaf", r.Seq)
		}
	}
	if _, err := decodeParquet(append([]byte(nil), data[:len(data)/2]...)); err == nil {
		t.Fatal("half a file read")
	}
}

// encodeParquetV1 is the encoder of trail-archive-v1 files, as it was.
func encodeParquetV1(leaves []trailseal.SealedEvent) ([]byte, error) {
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
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// The columns rebuild any event: fuzzed strings in every free-text member
// and metadata either round-trip through the columns or keep their bytes.
func FuzzFormatV2Row(f *testing.F) {
	f.Add("desc", "k", "v", "ua", "name")
	f.Add("é\u0000\"\\", "😀", "1e3", "", "\u2028")
	f.Fuzz(func(t *testing.T, desc, key, val, ua, name string) {
		ev := &trail.Event{ID: uuid.MustParse("0192f0c4-0000-7000-8000-000000000001"),
			OccurredAt: time.UnixMicro(1e15).UTC(), RecordedAt: time.UnixMicro(1e15 + 1).UTC(), Tenant: name,
			Actor: trail.Actor{Type: trail.ActorUser, ID: key, UserAgent: ua}, Action: "a.b", Outcome: trail.OutcomeSuccess,
			Description: desc, Metadata: map[string]any{key: val}, Changes: []trail.Change{trail.Changed(key, val, desc)}, SchemaVersion: 1}
		if ev.Normalize() != nil {
			return
		}
		want, err := trailseal.CanonicalBytes(ev)
		if err != nil {
			return
		}
		r, err := newRowV2(1, ev)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.canonical()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%v\n%s\n%s", err, got, want)
		}
	})
}

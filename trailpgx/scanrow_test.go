package trailpgx

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal/sealtest"
)

// TestScanRowsMatchesScan reads the same rows through rowDecoder (scanRows)
// and through pgx's Scan (scanEvent): every event must come back equal,
// for the usual events, for events of every optional field, and for rows
// written around Trail with JSON of other shapes, which take the general
// paths. It fails if the raw path decided no row at all.
func TestScanRowsMatchesScan(t *testing.T) {
	p := benchPool(t)
	s := benchStore(t, p)
	ctx := context.Background()
	evs := sealtest.Events(t, "acme", 0, 40)
	at := time.Date(2025, 3, 11, 1, 2, 3, 456789000, time.UTC)
	full := trail.Event{
		OccurredAt: at, RecordedAt: at.Add(time.Second), Tenant: "t-ü",
		Actor: trail.Actor{Type: trail.ActorUser, ID: "u1", Name: "Zoë \"Z\" \\ Ω", Email: "z@example.com", IP: "2001:db8::1",
			UserAgent: "curl/8", OnBehalfOf: &trail.Actor{Type: trail.ActorUser, ID: "c9", Name: "Cust"}},
		Action: "user.update", Target: trail.Target{Type: "user", ID: "u2", Name: "Bob"}, Outcome: trail.OutcomeFailure,
		Description: "line\nbreak\ttab", RequestID: "req-1", TraceID: "0123456789abcdef0123456789abcdef", SpanID: "0123456789abcdef",
		Changes: []trail.Change{
			trail.Changed("plan", "free", "pro"),
			{Field: "ssn", Redacted: true},
			{Field: "addr", Old: json.RawMessage(`{"z": [1, 2.50, "x"], "a": null}`), New: json.RawMessage(`null`)},
			{Field: "esc\"aped", New: json.RawMessage(`"\u00e9\n"`)},
		},
		Metadata: map[string]any{"n": 12, "f": 1.5, "b": true, "z": nil, "s": "ü\"", "nested": map[string]any{"k": []any{1, "x"}}},
	}
	if err := full.Normalize(); err != nil {
		t.Fatal(err)
	}
	plain := full
	plain.ID = [16]byte{}
	plain.Metadata = map[string]any{"only": "flat", "x": 1e3}
	plain.Actor.OnBehalfOf = nil
	if err := plain.Normalize(); err != nil {
		t.Fatal(err)
	}
	evs = append(evs, full, plain)
	if _, err := s.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	// Rows of other JSON shapes, written around Trail.
	ins := `INSERT INTO ` + s.schema + `.events (id, occurred_at, actor_type, action, changes, metadata)
		VALUES (gen_random_uuid(), $1, 'user', 'x.y', $2::jsonb, $3::jsonb)`
	for _, v := range [][2]string{
		{`[{"Field": "case"}]`, `{"a": {"b": 1}}`},
		{`[{"field": "p", "protect": "pii", "new": 1}]`, `{"k\"q": 1}`},
		{`[]`, `{}`},
		{`[{"field": "x", "new": 1.0E2, "old": -0.0}]`, `{"n": 1.0E2}`},
	} {
		if _, err := p.Exec(ctx, ins, at, v[0], v[1]); err != nil {
			t.Fatal(err)
		}
	}
	q := `SELECT ` + selectColumns + ` FROM ` + s.schema + `.events ORDER BY id`
	read := func(scan func(pgx.Rows) ([]trail.Event, error)) []trail.Event {
		rows, err := p.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		out, err := scan(rows)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	got := read(scanRows)
	want := read(func(rows pgx.Rows) ([]trail.Event, error) {
		defer rows.Close()
		var out []trail.Event
		for rows.Next() {
			ev, err := scanEvent(rows.Scan)
			if err != nil {
				return nil, err
			}
			out = append(out, ev)
		}
		return out, rows.Err()
	})
	if len(got) != len(evs)+4 || len(want) != len(got) {
		t.Fatalf("read %d and %d events, want %d", len(got), len(want), len(evs)+4)
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("event %s:\nraw  %#v\nscan %#v", want[i].ID, got[i], want[i])
		}
	}
	// The raw path must have decided the rows (not fallen back to Scan).
	rows, err := p.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	d := newRowDecoder(rows.FieldDescriptions())
	jsonb := make([]bool, len(selectTypes))
	for i, fd := range rows.FieldDescriptions() {
		jsonb[i] = fd.DataTypeOID == selectTypes[i] && fd.Format == 1 && i >= 11 && (i == 11 || i == 18 || i == 19)
	}
	raw := 0
	for rows.Next() {
		if _, ok, err := d.decodeRaw(rows.RawValues(), jsonb); ok && err == nil {
			raw++
		}
	}
	if raw != len(got) {
		t.Errorf("the raw path decided %d of %d rows", raw, len(got))
	}
}

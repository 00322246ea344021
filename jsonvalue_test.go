package trail

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestNormalizeDefaults(t *testing.T) {
	t.Parallel()
	before := time.Now()
	ev := Event{Action: "user.delete", Actor: Actor{Type: ActorSystem}}
	if err := ev.Normalize(); err != nil {
		t.Fatal(err)
	}
	if ev.ID == uuid.Nil || ev.ID.Version() != 7 {
		t.Errorf("ID = %s, want a UUIDv7", ev.ID)
	}
	if ev.OccurredAt.Before(before.Truncate(time.Microsecond)) || ev.OccurredAt.After(time.Now()) {
		t.Errorf("OccurredAt = %s, want now", ev.OccurredAt)
	}
	if ev.OccurredAt.Location() != time.UTC {
		t.Errorf("OccurredAt location %s, want UTC", ev.OccurredAt.Location())
	}
	if ev.Outcome != OutcomeSuccess {
		t.Errorf("Outcome = %q", ev.Outcome)
	}
	if ev.SchemaVersion != 1 {
		t.Errorf("SchemaVersion = %d, want 1: an event without span_id keeps version 1", ev.SchemaVersion)
	}
	if !ev.RecordedAt.IsZero() {
		t.Errorf("Normalize set RecordedAt: the store does that")
	}
	if err := ev.Validate(); err != nil {
		t.Errorf("normalized event invalid: %v", err)
	}
	// Two events get different IDs.
	other := Event{Action: "user.delete", Actor: Actor{Type: ActorSystem}}
	if err := other.Normalize(); err != nil {
		t.Fatal(err)
	}
	if other.ID == ev.ID {
		t.Error("two events got the same ID")
	}
}

func TestNormalizeKeepsCallerValues(t *testing.T) {
	t.Parallel()
	id := uuid.MustParse("01936c8e-7a00-7000-8000-000000000001")
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ev := Event{ID: id, OccurredAt: at, Outcome: OutcomeDenied, SchemaVersion: 1}
	if err := ev.Normalize(); err != nil {
		t.Fatal(err)
	}
	if ev.ID != id || !ev.OccurredAt.Equal(at) || ev.Outcome != OutcomeDenied || ev.SchemaVersion != 1 {
		t.Errorf("Normalize changed caller values: %+v", ev)
	}
}

func TestNormalizeTimes(t *testing.T) {
	t.Parallel()
	paris := time.FixedZone("CET", 3600)
	tests := []struct {
		name   string
		in     time.Time
		want   time.Time
		stored bool // RecordedAt too
	}{
		{"nanoseconds truncated", time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC), true},
		{"truncated not rounded", time.Date(2026, 1, 2, 3, 4, 5, 999999999, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 999999000, time.UTC), true},
		{"moved to UTC", time.Date(2026, 1, 2, 3, 4, 5, 0, paris), time.Date(2026, 1, 2, 2, 4, 5, 0, time.UTC), true},
		{"monotonic reading dropped", time.Now(), time.Now().Round(0).UTC(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev := Event{OccurredAt: tt.in, RecordedAt: tt.in}
			if err := ev.Normalize(); err != nil {
				t.Fatal(err)
			}
			for _, got := range []time.Time{ev.OccurredAt, ev.RecordedAt} {
				if got.Location() != time.UTC {
					t.Errorf("location %s", got.Location())
				}
				if got.Nanosecond()%1000 != 0 {
					t.Errorf("%s keeps sub-microsecond digits", got)
				}
				if got != got.Round(0) {
					t.Errorf("%s keeps a monotonic reading", got)
				}
				if tt.stored && !got.Equal(tt.want) {
					t.Errorf("got %s want %s", got, tt.want)
				}
			}
		})
	}
}

func TestNormalizeJSON(t *testing.T) {
	t.Parallel()
	ev := Event{
		Changes: []Change{
			{Field: "a", Old: json.RawMessage(` { "b" : 1.50, "a" : [ 1E2 ] } `), New: json.RawMessage(`"\u0041"`)},
			{Field: "b", Old: json.RawMessage(`null`)},
		},
		Metadata: map[string]any{
			"float":  2.50,
			"int":    42,
			"int64":  int64(-7),
			"number": json.Number("1e3"),
			"nested": map[string]any{"list": []any{1.0, "x", nil, true}},
			"struct": struct {
				B int    `json:"b"`
				A string `json:"a"`
			}{1, "z"},
			"raw":    json.RawMessage(`{"y":2,"x":1}`),
			"strmap": map[string]string{"k": "v"},
		},
	}
	if err := ev.Normalize(); err != nil {
		t.Fatal(err)
	}
	if got := string(ev.Changes[0].Old); got != `{"a":[100],"b":1.5}` {
		t.Errorf("old = %s", got)
	}
	if got := string(ev.Changes[0].New); got != `"A"` {
		t.Errorf("new = %s", got)
	}
	if got := string(ev.Changes[1].Old); got != `null` {
		t.Errorf("null old = %s", got)
	}
	if ev.Changes[1].New != nil {
		t.Errorf("absent new became %s", ev.Changes[1].New)
	}
	want := map[string]any{
		"float":  json.Number("2.5"),
		"int":    json.Number("42"),
		"int64":  json.Number("-7"),
		"number": json.Number("1000"),
		"nested": map[string]any{"list": []any{json.Number("1"), "x", nil, true}},
		"struct": map[string]any{"a": "z", "b": json.Number("1")},
		"raw":    map[string]any{"x": json.Number("1"), "y": json.Number("2")},
		"strmap": map[string]any{"k": "v"},
	}
	if !reflect.DeepEqual(ev.Metadata, want) {
		t.Errorf("metadata\n got %#v\nwant %#v", ev.Metadata, want)
	}
	// The normalized metadata is what a store reads back.
	b, err := canonicalValue(ev.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeMetadata(b)
	if err != nil || !reflect.DeepEqual(back, ev.Metadata) {
		t.Errorf("DecodeMetadata(canonical) = %#v, %v", back, err)
	}
}

func TestNormalizeIdempotent(t *testing.T) {
	t.Parallel()
	ev := validEvent()
	ev.OccurredAt = ev.OccurredAt.Add(321).In(time.FixedZone("X", 7200))
	ev.Metadata["f"] = 0.1
	ev.Changes[0].Old = json.RawMessage(`{"b":1,"a":2}`)
	if err := ev.Normalize(); err != nil {
		t.Fatal(err)
	}
	first := ev
	first.Changes = append([]Change(nil), ev.Changes...)
	b1, err := ev.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := ev.Normalize(); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(ev, first) {
		t.Errorf("second Normalize changed the event\n got %#v\nwant %#v", ev, first)
	}
	b2, err := ev.Canonical()
	if err != nil || !bytes.Equal(b1, b2) {
		t.Errorf("canonical bytes changed: %s vs %s (%v)", b1, b2, err)
	}
}

func TestNormalizeEmptyIsNil(t *testing.T) {
	t.Parallel()
	ev := Event{Metadata: map[string]any{}, Changes: []Change{}}
	if err := ev.Normalize(); err != nil {
		t.Fatal(err)
	}
	if ev.Metadata != nil {
		t.Errorf("empty metadata = %#v, want nil", ev.Metadata)
	}
	if ev.Changes != nil {
		t.Errorf("empty changes = %#v, want nil", ev.Changes)
	}
}

func TestNormalizeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		ev    Event
		field string
	}{
		{"invalid old", Event{Changes: []Change{{Field: "a", Old: json.RawMessage(`{`)}}}, "changes[0].old"},
		{"invalid new", Event{Changes: []Change{{Field: "a"}, {Field: "b", New: json.RawMessage(`01`)}}}, "changes[1].new"},
		{"empty raw", Event{Changes: []Change{{Field: "a", New: json.RawMessage{}}}}, "changes[0].new"},
		{"NaN metadata", Event{Metadata: map[string]any{"x": math.NaN()}}, "metadata"},
		{"Inf metadata", Event{Metadata: map[string]any{"x": []any{math.Inf(-1)}}}, "metadata"},
		{"huge int", Event{Metadata: map[string]any{"x": int64(math.MaxInt64)}}, "metadata"},
		{"huge uint", Event{Metadata: map[string]any{"x": uint64(1<<63 + 1)}}, "metadata"},
		{"bad number", Event{Metadata: map[string]any{"x": json.Number("1.2.3")}}, "metadata"},
		{"bad utf8 key", Event{Metadata: map[string]any{"\xff": 1}}, "metadata"},
		{"bad utf8 value", Event{Metadata: map[string]any{"x": "\xfe"}}, "metadata"},
		{"unmarshalable", Event{Metadata: map[string]any{"x": make(chan int)}}, "metadata"},
		{"too deep", Event{Metadata: deepMap(MaxJSONDepth)}, "metadata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.ev.Normalize()
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field || !errors.Is(err, ErrInvalid) {
				t.Errorf("Normalize = %v, want a ValidationError for %q", err, tt.field)
			}
		})
	}
	// One level less is fine.
	ev := Event{Metadata: deepMap(MaxJSONDepth - 1)}
	if err := ev.Normalize(); err != nil {
		t.Errorf("depth %d: %v", MaxJSONDepth-1, err)
	}
}

// deepMap returns metadata whose innermost object sits at depth levels below
// the metadata object.
func deepMap(levels int) map[string]any {
	m := map[string]any{"leaf": true}
	for range levels {
		m = map[string]any{"k": m}
	}
	return m
}

// TestNormalizeValueMatchesEncodingJSON checks the fast path against the
// definition: DecodeMetadata(CanonicalJSON(encoding/json of the value)).
func TestNormalizeValueMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	values := []any{
		nil, true, false, "", "x\u2028<>&", 0.0, math.Copysign(0, -1), 1.5, 1e21, 1e-7, 123456789.0, float32(0.1), float32(3e38),
		int(-5), int64(1 << 53), int32(7), uint64(1 << 53), int8(-3), uint(9),
		json.Number("-0"), json.Number("1E+2"), json.Number("0.000001"),
		[]any{}, []any{1.0, []any{}}, map[string]any{}, []string{"a"}, map[string]int{"b": 2, "a": 1},
		[]any(nil), map[string]any(nil), json.RawMessage(`[1, 2.0]`), struct{ X *int }{},
	}
	for _, v := range values {
		m := map[string]any{"v": v}
		got, err := normalizeMetadata(m)
		if err != nil {
			t.Errorf("%T %v: %v", v, v, err)
			continue
		}
		raw, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		c, err := CanonicalJSON(raw)
		if err != nil {
			t.Errorf("%T %v: CanonicalJSON(%s): %v", v, v, raw, err)
			continue
		}
		want, err := DecodeMetadata(c)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%T %v: normalize = %#v, want %#v", v, v, got, want)
		}
		fast, err := canonicalValue(m)
		if err != nil || !bytes.Equal(fast, c) {
			t.Errorf("%T %v: canonicalValue = %s, %v; want %s", v, v, fast, err, c)
		}
	}
}

func TestDecodeMetadata(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "null"} {
		m, err := DecodeMetadata([]byte(in))
		if m != nil || err != nil {
			t.Errorf("DecodeMetadata(%q) = %v, %v", in, m, err)
		}
	}
	m, err := DecodeMetadata([]byte(`{"n":1.5,"s":"x"}`))
	if err != nil || m["n"] != json.Number("1.5") || m["s"] != "x" {
		t.Errorf("DecodeMetadata = %#v, %v", m, err)
	}
	for _, in := range []string{`[1]`, `"s"`, `{`, `1`} {
		if _, err := DecodeMetadata([]byte(in)); err == nil || !strings.Contains(err.Error(), "metadata") {
			t.Errorf("DecodeMetadata(%s) error = %v", in, err)
		}
	}
}

func TestCanonicalNumberIntegers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"0", "0", true},
		{"-0", "0", true},
		{"123456789012345", "123456789012345", true},
		{"9007199254740991", "9007199254740991", true},
		{"9007199254740992", "9007199254740992", true},
		{"-9007199254740992", "-9007199254740992", true},
		{"9007199254740993", "", false},
		{"9007199254740994", "9007199254740994", true}, // exact in a double
		{"18446744073709551616", "18446744073709552000", true},
		{"18446744073709551615", "", false},
		{"1000000000000000000000", "1e+21", true},
		{"295147905179352830000", "295147905179352830000", true}, // already canonical
		{"9007199254740993.0", "9007199254740992", true},         // a fraction says "double"
		{"9007199254740993e0", "9007199254740992", true},
		{"100000000000000000000000", "1e+23", true}, // from 1e21 on, integers are doubles
		{"99999999999999991611392", "1e+23", true},
		{"999999999999999999999", "", false}, // below 1e21 and not exact
	}
	for _, tt := range tests {
		got, err := appendCanonicalNumber(nil, tt.in)
		if (err == nil) != tt.ok || (tt.ok && string(got) != tt.want) {
			t.Errorf("%s: got %s, %v; want %s ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// plainDecimal writes a JSON number without exponent, the way PostgreSQL's
// jsonb prints a numeric: 1e+23 becomes 100000000000000000000000.
func plainDecimal(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		e, err := strconv.Atoi(s[i+1:])
		if err != nil {
			panic(err)
		}
		exp = e
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := intPart + frac
	point := len(intPart) + exp // position of the decimal point in digits
	var out string
	switch {
	case point <= 0:
		out = "0." + strings.Repeat("0", -point) + digits
	case point >= len(digits):
		out = digits + strings.Repeat("0", point-len(digits))
	default:
		out = digits[:point] + "." + digits[point:]
	}
	out = strings.TrimLeft(out, "0")
	if out == "" || out[0] == '.' {
		out = "0" + out
	}
	if neg {
		out = "-" + out
	}
	return out
}

// TestCanonicalNumbersSurvivePlainDecimal checks that every canonical number
// is accepted again, and unchanged, when a store prints it back as a plain
// decimal (PostgreSQL jsonb does).
func TestCanonicalNumbersSurvivePlainDecimal(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	values := []float64{0, 1, -1, 0.1, 1e21, 1e23, 9.999999999999997e22, 295147905179352830000, 5e-324, math.MaxFloat64,
		9007199254740992, 1e-7, 123456789012345680000, 1.0000000000000001e23}
	for range 50000 {
		f := math.Float64frombits(r.Uint64())
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		values = append(values, f)
	}
	for range 20000 {
		values = append(values, float64(r.Int64N(1<<62))*float64(r.IntN(1000)+1))
	}
	for _, f := range values {
		c := string(appendES6Number(nil, f))
		plain := plainDecimal(c)
		got, err := CanonicalJSON([]byte(plain))
		if err != nil || string(got) != c {
			t.Fatalf("%v: canonical %s, printed %s, re-canonicalized %s (%v)", f, c, plain, got, err)
		}
		back, err := strconv.ParseFloat(c, 64)
		if err != nil || back != f && !(f == 0 && back == 0) {
			t.Fatalf("%v: canonical %s reads back as %v (%v)", f, c, back, err)
		}
	}
}

// TestPlainCanonicalFastPath checks the shortcut for decimals against the
// full conversion on edge cases and random literals.
func TestPlainCanonicalFastPath(t *testing.T) {
	t.Parallel()
	lits := []string{"0.5", "-0.5", "0.1", "1.5", "49.9", "0.000001", "0.0000012", "0.00000012", "123456789012345.6",
		"12345678901234.5", "1.234567890123456", "0.123456789012345", "0.1234567890123456", "100.25", "1.50", "0.0", "-0.0",
		"1.0", "9007199254740993.5", "999999999999999.9", "0.3333333333333333", "5.0e1", "1e5", "1.5E-3"}
	r := rand.New(rand.NewPCG(5, 6))
	for range 100000 {
		var b strings.Builder
		if r.IntN(2) == 0 {
			b.WriteByte('-')
		}
		if r.IntN(3) == 0 {
			b.WriteByte('0')
		} else {
			b.WriteString(strconv.Itoa(100000000 + r.IntN(900000000))[:1+r.IntN(9)])
		}
		b.WriteByte('.')
		for range 1 + r.IntN(20) {
			b.WriteByte(byte('0' + r.IntN(10)))
		}
		lits = append(lits, b.String())
	}
	for _, lit := range lits {
		got, err := appendCanonicalNumber(nil, lit)
		if err != nil {
			t.Fatalf("%s: %v", lit, err)
		}
		f, err := strconv.ParseFloat(lit, 64)
		if err != nil {
			t.Fatal(err)
		}
		if want := appendES6Number(nil, f); string(got) != string(want) {
			t.Fatalf("%s: got %s, want %s (fast path %v)", lit, got, want, plainCanonical(lit))
		}
	}
}

package trail

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/google/uuid"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/canonical")

// decodeEventJSON reads an event the way the API and CLI do, keeping numbers
// as json.Number so that the canonical number rules apply to their text.
func decodeEventJSON(b []byte) (Event, error) {
	var ev Event
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	d.DisallowUnknownFields()
	err := d.Decode(&ev)
	return ev, err
}

func goldenInputs(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/canonical/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 8 {
		t.Fatalf("found %d golden inputs, want at least 8", len(files))
	}
	return files
}

// goldenEvent reads a golden input event and normalizes it.
func goldenEvent(t *testing.T, path string) Event {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := decodeEventJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.Normalize(); err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestCanonicalGolden checks Canonical against the vectors in
// testdata/canonical: NAME.json is an input event, NAME.canonical its exact
// canonical bytes and NAME.sha256 their SHA-256 in sha256sum format.
// go test -run TestCanonicalGolden -update rewrites them.
func TestCanonicalGolden(t *testing.T) {
	for _, in := range goldenInputs(t) {
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		t.Run(name, func(t *testing.T) {
			ev := goldenEvent(t, in)
			if err := ev.Validate(); err != nil {
				t.Fatal(err)
			}
			got, err := ev.Canonical()
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(got)
			gotSum := hex.EncodeToString(sum[:]) + "  " + name + ".canonical\n"
			canonPath := strings.TrimSuffix(in, ".json") + ".canonical"
			sumPath := strings.TrimSuffix(in, ".json") + ".sha256"
			if *update {
				if err := os.WriteFile(canonPath, got, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(sumPath, []byte(gotSum), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(canonPath)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Canonical\n got %s\nwant %s", got, want)
			}
			wantSum, err := os.ReadFile(sumPath)
			if err != nil {
				t.Fatal(err)
			}
			if gotSum != string(wantSum) {
				t.Errorf("sha256 got %q want %q", gotSum, wantSum)
			}
			// The golden bytes parse back to the same event.
			back, err := ParseCanonical(want)
			if err != nil {
				t.Fatalf("ParseCanonical: %v", err)
			}
			if !reflect.DeepEqual(back, ev) {
				t.Errorf("ParseCanonical round trip:\n got %#v\nwant %#v", back, ev)
			}
			// Normalize is idempotent on the golden event.
			again := back
			if err := again.Normalize(); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(again, back) {
				t.Errorf("Normalize not idempotent")
			}
		})
	}
}

// TestCanonicalThirdParty rebuilds the canonical bytes from the event's JSON
// export (encoding/json of Event) with an independent implementation of the
// rules in docs/canonical-encoding.md, as a verifier without Trail's code
// would, and compares with the golden files.
func TestCanonicalThirdParty(t *testing.T) {
	t.Parallel()
	for _, in := range goldenInputs(t) {
		ev := goldenEvent(t, in)
		export, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		got, err := thirdPartyCanonical(export)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		want, err := os.ReadFile(strings.TrimSuffix(in, ".json") + ".canonical")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: third-party canonical form\n got %s\nwant %s\nexport %s", in, got, want, export)
		}
	}
}

// thirdPartyCanonical applies the spec to an exported event: keep the known
// members, drop empty ones, rewrite the two times, serialize with JCS. It
// shares no code with canonical.go or jsonvalue.go.
func thirdPartyCanonical(export []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(export))
	d.UseNumber()
	var v map[string]any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	actorKeys := []string{"type", "id", "name", "email", "ip", "user_agent", "on_behalf_of"}
	var clean func(obj map[string]any, keys []string) map[string]any
	clean = func(obj map[string]any, keys []string) map[string]any {
		out := map[string]any{}
		for _, k := range keys {
			x, ok := obj[k]
			if !ok || x == nil || x == "" || x == false {
				continue
			}
			switch k {
			case "actor", "on_behalf_of":
				x = clean(x.(map[string]any), actorKeys)
			case "target":
				x = clean(x.(map[string]any), []string{"type", "id", "name"})
			case "changes":
				var cs []any
				for _, c := range x.([]any) {
					cm := c.(map[string]any)
					nc := clean(cm, []string{"field", "redacted"})
					for _, ov := range []string{"old", "new"} {
						if val, ok := cm[ov]; ok { // null is a value here
							nc[ov] = val
						}
					}
					cs = append(cs, nc)
				}
				x = cs
			case "occurred_at", "recorded_at":
				tm, err := time.Parse(time.RFC3339Nano, x.(string))
				if err != nil {
					panic(err)
				}
				if tm.IsZero() {
					continue
				}
				x = tm.UTC().Format("2006-01-02T15:04:05.000000Z")
			}
			if m, ok := x.(map[string]any); ok && len(m) == 0 {
				continue
			}
			if a, ok := x.([]any); ok && len(a) == 0 {
				continue
			}
			out[k] = x
		}
		return out
	}
	top := clean(v, []string{"id", "occurred_at", "recorded_at", "tenant", "actor", "action", "target",
		"outcome", "description", "changes", "metadata", "request_id", "trace_id", "span_id", "source", "schema_version"})
	var buf strings.Builder
	if err := jcsWrite(&buf, top); err != nil {
		return nil, err
	}
	return []byte(buf.String()), nil
}

// jcsWrite is a deliberately plain RFC 8785 serializer for the test.
func jcsWrite(w *strings.Builder, v any) error {
	switch x := v.(type) {
	case nil:
		w.WriteString("null")
	case bool:
		w.WriteString(strconv.FormatBool(x))
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return err
		}
		if f == 0 {
			f = 0 // -0 prints as 0
		}
		b, err := json.Marshal(f) // encoding/json prints float64 as ECMAScript does
		if err != nil {
			return err
		}
		w.Write(b)
	case string:
		w.WriteByte('"')
		for _, r := range x {
			switch {
			case r == '"':
				w.WriteString(`\"`)
			case r == '\\':
				w.WriteString(`\\`)
			case r == '\b':
				w.WriteString(`\b`)
			case r == '\f':
				w.WriteString(`\f`)
			case r == '\n':
				w.WriteString(`\n`)
			case r == '\r':
				w.WriteString(`\r`)
			case r == '\t':
				w.WriteString(`\t`)
			case r < 0x20:
				fmt.Fprintf(w, `\u%04x`, r)
			default:
				w.WriteRune(r)
			}
		}
		w.WriteByte('"')
	case []any:
		w.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				w.WriteByte(',')
			}
			if err := jcsWrite(w, e); err != nil {
				return err
			}
		}
		w.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int {
			return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
		})
		w.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				w.WriteByte(',')
			}
			if err := jcsWrite(w, k); err != nil {
				return err
			}
			w.WriteByte(':')
			if err := jcsWrite(w, x[k]); err != nil {
				return err
			}
		}
		w.WriteByte('}')
	default:
		return fmt.Errorf("unexpected %T", v)
	}
	return nil
}

// TestCanonicalJSONRFC8785 runs the examples of RFC 8785 and of its reference
// implementation's test data.
func TestCanonicalJSONRFC8785(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"values",
			`{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`,
			`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`},
		{"sorting",
			`{"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control", "\u00f6": "Latin Small Letter O With Diaeresis"}`,
			"{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"},
		{"weird",
			`{"\u20ac": "Euro Sign", "1": "One", "\u0080": "Control\u007f", "\ud83d\ude02": "Smiley",
  "\u00f6": "Latin Small Letter O With Diaeresis", "\ufb33": "Hebrew Letter Dalet With Dagesh", "</script>": "Browser Challenge"}`,
			"{\"1\":\"One\",\"</script>\":\"Browser Challenge\",\"\u0080\":\"Control\u007f\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😂\":\"Smiley\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"},
		{"arrays", "[\n  56,\n  {\n    \"d\": true,\n    \"10\": null,\n    \"1\": [ ]\n  }\n]", `[56,{"1":[],"10":null,"d":true}]`},
		{"french", `{"peach": "This sorting order", "péché": "is wrong according to French", "pêche": "but canonicalization MUST", "sin":   "ignore locale"}`,
			`{"peach":"This sorting order","péché":"is wrong according to French","pêche":"but canonicalization MUST","sin":"ignore locale"}`},
		{"nested", `{"1":{"f":{"f":"hi","F":5},"\n":56.0},"10":{},"":"empty","a":{},"111":[{"e":"yes","E":"no"}],"A":{}}`,
			`{"":"empty","1":{"\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{"E":"no","e":"yes"}],"A":{},"a":{}}`},
		{"escapes kept minimal", `"\u2028\u2029<>&\u007f\/"`, "\"\u2028\u2029<>&\u007f/\""},
		{"controls", `"\u0001\u0008\u0009\u000a\u000b\u000c\u000d\u001f"`, `"\u0001\b\t\n\u000b\f\r\u001f"`},
		{"white space", " \t\r\n[ 1 , 2 ]\n", `[1,2]`},
		{"literals", `[true,false,null]`, `[true,false,null]`},
		{"big int exact", `1000000000000000000000`, `1e+21`},
		{"big int canonical", `295147905179352830000`, `295147905179352830000`},
		{"minus zero", `[-0,-0.0,0e5,-0E-3]`, `[0,0,0,0]`},
		{"exponents", `[1e-7,1.5E+300,-2e-310,12e20,123e19]`, `[1e-7,1.5e+300,-2e-310,1.2e+21,1.23e+21]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := CanonicalJSON([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			again, err := CanonicalJSON(got)
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("not idempotent: %s %v", again, err)
			}
		})
	}
}

// TestES6NumberAppendixB checks number serialization against RFC 8785
// Appendix B.
func TestES6NumberAppendixB(t *testing.T) {
	t.Parallel()
	tests := []struct {
		bits uint64
		want string
	}{
		{0x0000000000000000, "0"},
		{0x8000000000000000, "0"},
		{0x0000000000000001, "5e-324"},
		{0x8000000000000001, "-5e-324"},
		{0x7fefffffffffffff, "1.7976931348623157e+308"},
		{0xffefffffffffffff, "-1.7976931348623157e+308"},
		{0x4340000000000000, "9007199254740992"},
		{0xc340000000000000, "-9007199254740992"},
		{0x4430000000000000, "295147905179352830000"},
		{0x44b52d02c7e14af5, "9.999999999999997e+22"},
		{0x44b52d02c7e14af6, "1e+23"},
		{0x44b52d02c7e14af7, "1.0000000000000001e+23"},
		{0x444b1ae4d6e2ef4e, "999999999999999700000"},
		{0x444b1ae4d6e2ef4f, "999999999999999900000"},
		{0x444b1ae4d6e2ef50, "1e+21"},
		{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
		{0x3eb0c6f7a0b5ed8d, "0.000001"},
		{0x41b3de4355555553, "333333333.3333332"},
		{0x41b3de4355555554, "333333333.33333325"},
		{0x41b3de4355555555, "333333333.3333333"},
		{0x41b3de4355555556, "333333333.3333334"},
		{0x41b3de4355555557, "333333333.33333343"},
		{0xbecbf647612f3696, "-0.0000033333333333333333"},
		{0x43143ff3c1cb0959, "1424953923781206.2"},
	}
	for _, tt := range tests {
		f := math.Float64frombits(tt.bits)
		if got := string(appendES6Number(nil, f)); got != tt.want {
			t.Errorf("%016x: got %s want %s", tt.bits, got, tt.want)
		}
		// The same value written as a JSON literal canonicalizes the same,
		// through the parser and through a Go float64.
		lit := strconv.FormatFloat(f, 'g', -1, 64)
		if got, err := CanonicalJSON([]byte(lit)); err != nil || string(got) != tt.want {
			t.Errorf("%016x: CanonicalJSON(%s) = %s, %v; want %s", tt.bits, lit, got, err, tt.want)
		}
		if got, err := canonicalValue(f); err != nil || string(got) != tt.want {
			t.Errorf("%016x: canonicalValue = %s, %v; want %s", tt.bits, got, err, tt.want)
		}
	}
	// NaN and the infinities have no JSON form.
	for _, bits := range []uint64{0x7fffffffffffffff, 0x7ff0000000000000, 0xfff0000000000000} {
		if _, err := canonicalValue(math.Float64frombits(bits)); err == nil {
			t.Errorf("%016x: want an error", bits)
		}
	}
}

func TestCanonicalJSONErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"empty", ``, "empty"},
		{"space only", "  ", "empty"},
		{"two values", `1 2`, "more than one"},
		{"trailing comma array", `[1,]`, "invalid JSON"},
		{"trailing comma object", `{"a":1,}`, "invalid JSON"},
		{"duplicate key", `{"a":1,"a":2}`, "duplicate key"},
		{"duplicate key unsorted", `{"b":1,"a":2,"b":3}`, "duplicate key"},
		{"duplicate key by escape", `{"a":1,"\u0061":2}`, "duplicate key"},
		{"bad utf8", "\"\xff\"", "UTF-8"},
		{"lone high surrogate", `"\ud83d"`, "lone surrogate"},
		{"lone low surrogate", `"\ude00"`, "lone surrogate"},
		{"reversed surrogates", `"\ude00\ud83d"`, "lone surrogate"},
		{"bad escape", `"\x"`, "invalid escape"},
		{"short unicode escape", `"\u12"`, "malformed"},
		{"raw control", "\"a\nb\"", "control character"},
		{"NUL escape", `"a\u0000b"`, "NUL character"},
		{"NUL escape in key", `{"\u0000":1}`, "NUL character"},
		{"unterminated", `"abc`, "unterminated"},
		{"leading zero", `01`, "more than one"},
		{"plus sign", `+1`, "unexpected"},
		{"bare dot", `1.`, "malformed number"},
		{"bare exponent", `1e`, "malformed number"},
		{"nan", `NaN`, "unexpected"},
		{"infinity", `1e400`, "out of range"},
		{"int beyond double", `9007199254740993`, "does not fit a double"},
		{"negative int beyond double", `-12345678901234567891`, "does not fit a double"},
		{"too deep", strings.Repeat("[", MaxJSONDepth+1) + strings.Repeat("]", MaxJSONDepth+1), "nested deeper"},
		{"too deep objects", strings.Repeat(`{"a":`, MaxJSONDepth+1) + "1" + strings.Repeat("}", MaxJSONDepth+1), "nested deeper"},
		{"single quote", `'a'`, "unexpected"},
		{"unclosed", `{"a":1`, "unexpected end"},
		{"missing colon", `{"a" 1}`, "unexpected"},
		{"true prefix", `tru`, "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := CanonicalJSON([]byte(tt.in))
			if err == nil {
				t.Fatalf("CanonicalJSON(%q) = %s, want error containing %q", tt.in, got, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("CanonicalJSON(%q) error %q, want it to contain %q", tt.in, err, tt.want)
			}
		})
	}
	// MaxJSONDepth levels are fine.
	ok := strings.Repeat("[", MaxJSONDepth) + strings.Repeat("]", MaxJSONDepth)
	if _, err := CanonicalJSON([]byte(ok)); err != nil {
		t.Errorf("depth %d: %v", MaxJSONDepth, err)
	}
}

func TestCompareUTF16(t *testing.T) {
	t.Parallel()
	words := []string{"", "a", "ab", "b", "\u007f", "\u0080", "é", "\u07ff", "\u0800", "€", "\ud7ff",
		"\ue000", "\ufb33", "\uffff", "😀", "😂", "\U0010ffff", "a😀", "a\uffff", "aa", "\U00010000"}
	for _, a := range words {
		for _, b := range words {
			want := slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
			if got := compareUTF16(a, b); got != want {
				t.Errorf("compareUTF16(%q, %q) = %d, want %d", a, b, got, want)
			}
			if got := compareUTF16([]byte(a), []byte(b)); got != want {
				t.Errorf("compareUTF16 bytes(%q, %q) = %d, want %d", a, b, got, want)
			}
		}
	}
}

// validEvent returns a normalized, valid event with every field set.
func validEvent() Event {
	return Event{
		ID:         uuid.MustParse("01936c8e-7a00-7000-8000-0000000000aa"),
		OccurredAt: time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC),
		RecordedAt: time.Date(2026, 3, 1, 12, 0, 1, 0, time.UTC),
		Tenant:     "acme",
		Actor: Actor{Type: ActorUser, ID: "42", Name: "Ada", Email: "ada@acme.example", IP: "203.0.113.7",
			UserAgent: "curl/8", OnBehalfOf: &Actor{Type: ActorUser, ID: "7"}},
		Action:      "subscription.update",
		Target:      Target{Type: "subscription", ID: "sub_1", Name: "Pro"},
		Outcome:     OutcomeSuccess,
		Description: "Changed subscription plan to pro",
		Changes: []Change{
			{Field: "plan", Old: json.RawMessage(`"free"`), New: json.RawMessage(`"pro"`)},
			{Field: "secret", Redacted: true},
		},
		Metadata:      map[string]any{"n": json.Number("1.5"), "list": []any{"a", true, nil}, "obj": map[string]any{"k": "v"}},
		RequestID:     "req-1",
		TraceID:       "trace-1",
		Source:        "billing",
		SchemaVersion: 1,
	}
}

func TestCanonicalValidEventRoundTrip(t *testing.T) {
	t.Parallel()
	ev := validEvent()
	b, err := ev.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) {
		t.Fatalf("not JSON: %s", b)
	}
	back, err := ParseCanonical(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, ev) {
		t.Errorf("round trip\n got %#v\nwant %#v", back, ev)
	}
	// AppendCanonical appends to what is there.
	buf, err := ev.AppendCanonical([]byte("prefix:"))
	if err != nil || string(buf) != "prefix:"+string(b) {
		t.Errorf("AppendCanonical = %s, %v", buf, err)
	}
	// Canonical is the same for the same instant in another location, and
	// does not depend on the clock (an event in the future still encodes).
	local := ev
	local.OccurredAt = ev.OccurredAt.In(time.FixedZone("X", -7*3600))
	local.RecordedAt = ev.RecordedAt.In(time.FixedZone("Y", 5*3600+1800))
	lb, err := local.Canonical()
	if err != nil || !bytes.Equal(lb, b) {
		t.Errorf("other location: %s, %v", lb, err)
	}
	future := ev
	future.OccurredAt = time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	if err := future.Validate(); err == nil {
		t.Fatal("Validate accepted an event an hour in the future")
	}
	if _, err := future.Canonical(); err != nil {
		t.Errorf("Canonical depends on the clock: %v", err)
	}
}

func TestCanonicalRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		edit  func(*Event)
		field string
	}{
		{"nil id", func(e *Event) { e.ID = uuid.Nil }, "id"},
		{"zero occurred_at", func(e *Event) { e.OccurredAt = time.Time{} }, "occurred_at"},
		{"nanoseconds", func(e *Event) { e.OccurredAt = e.OccurredAt.Add(1) }, "occurred_at"},
		{"recorded nanoseconds", func(e *Event) { e.RecordedAt = e.RecordedAt.Add(999) }, "recorded_at"},
		{"recorded year 10000", func(e *Event) { e.RecordedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "recorded_at"},
		{"recorded before 1970", func(e *Event) { e.RecordedAt = time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC) }, "recorded_at"},
		{"empty outcome", func(e *Event) { e.Outcome = "" }, "outcome"},
		{"schema 0", func(e *Event) { e.SchemaVersion = 0 }, "schema_version"},
		{"bad action", func(e *Event) { e.Action = "Delete" }, "action"},
		{"bad tenant", func(e *Event) { e.Tenant = "a b" }, "tenant"},
		{"non-canonical old", func(e *Event) { e.Changes[0].Old = json.RawMessage(`"free" `) }, "changes[0].old"},
		{"non-canonical new", func(e *Event) { e.Changes[0].New = json.RawMessage(`1.0`) }, "changes[0].new"},
		{"unsorted new", func(e *Event) { e.Changes[0].New = json.RawMessage(`{"b":1,"a":2}`) }, "changes[0].new"},
		{"invalid new", func(e *Event) { e.Changes[0].New = json.RawMessage(`{`) }, "changes[0].new"},
		{"float metadata", func(e *Event) { e.Metadata["n"] = 1.5 }, "metadata"},
		{"int metadata", func(e *Event) { e.Metadata["n"] = 3 }, "metadata"},
		{"non-canonical number", func(e *Event) { e.Metadata["n"] = json.Number("1.50") }, "metadata"},
		{"nested non-canonical", func(e *Event) { e.Metadata["obj"] = map[string]any{"x": []any{json.Number("1e0")}} }, "metadata"},
		{"struct metadata", func(e *Event) { e.Metadata["s"] = struct{ A int }{1} }, "metadata"},
		{"bad utf8 metadata", func(e *Event) { e.Metadata["s"] = "\xff" }, "metadata"},
		{"bad utf8 description", func(e *Event) { e.Description = "\xff" }, "description"},
		{"bad actor", func(e *Event) { e.Actor.Type = "robot" }, "actor.type"},
	}
	ref := validEvent()
	refBytes, err := ref.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev := validEvent()
			tt.edit(&ev)
			b, err := ev.Canonical()
			if err == nil {
				t.Fatalf("Canonical = %s, want an error", b)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field {
				t.Errorf("error %v, want field %q", err, tt.field)
			}
			buf, err := ev.AppendCanonical([]byte("keep"))
			if err == nil || string(buf) != "keep" {
				t.Errorf("AppendCanonical on error = %q, %v", buf, err)
			}
		})
	}
	// Normalize repairs what it can, and then the bytes are the reference's.
	ev := validEvent()
	ev.OccurredAt = ev.OccurredAt.Add(999).In(time.FixedZone("Z", 3600))
	ev.Metadata["n"] = 1.50
	ev.Metadata["obj"] = map[string]any{"k": "v"}
	ev.Changes[0].Old = json.RawMessage(` "free"`)
	if err := ev.Normalize(); err != nil {
		t.Fatal(err)
	}
	if b, err := ev.Canonical(); err != nil || !bytes.Equal(b, refBytes) {
		t.Errorf("after Normalize: %s, %v\nwant %s", b, err, refBytes)
	}
}

func TestCanonicalOmitsEmpty(t *testing.T) {
	t.Parallel()
	ev := Event{
		ID:            uuid.MustParse("01936c8e-7a00-7000-8000-0000000000bb"),
		OccurredAt:    time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		Actor:         Actor{Type: ActorSystem},
		Action:        "system.start",
		Outcome:       OutcomeSuccess,
		SchemaVersion: 1,
		Changes:       []Change{},
		Metadata:      map[string]any{},
	}
	b, err := ev.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"action":"system.start","actor":{"type":"system"},"id":"01936c8e-7a00-7000-8000-0000000000bb","occurred_at":"2026-03-01T12:00:00.000000Z","outcome":"success","schema_version":1}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}

func TestParseCanonicalRejects(t *testing.T) {
	t.Parallel()
	ev := validEvent()
	b, err := ev.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	variants := map[string]string{
		"trailing newline":  s + "\n",
		"leading space":     " " + s,
		"pretty":            strings.Replace(s, `","`, `", "`, 1),
		"unknown member":    strings.Replace(s, `{"action"`, `{"zzz":1,"action"`, 1),
		"member order":      `{"tenant":"acme",` + strings.Replace(s[1:], `,"tenant":"acme"`, ``, 1),
		"duplicate member":  strings.Replace(s, `{"action":"subscription.update",`, `{"action":"subscription.update","action":"subscription.update",`, 1),
		"upper-case member": strings.Replace(s, `"action"`, `"Action"`, 1),
		"time without us":   strings.Replace(s, `12:00:00.123456Z`, `12:00:00.123456000Z`, 1),
		"time offset":       strings.Replace(s, `12:00:00.123456Z`, `13:00:00.123456+01:00`, 1),
		"escaped char":      strings.Replace(s, `"acme"`, `"\u0061cme"`, 1),
		"number form":       strings.Replace(s, `"n":1.5`, `"n":1.50`, 1),
		"empty changes":     strings.Replace(s, `"changes":[`, `"changes":[],"x":[`, 1),
		"redacted false":    strings.Replace(s, `{"field":"plan",`, `{"field":"plan","redacted":false,`, 1),
		"upper-case id":     strings.Replace(s, `01936c8e`, `01936C8E`, 1),
		"not json":          "hello",
		"empty":             "",
		"array":             "[]",
		"bad utf8":          strings.Replace(s, "Ada", "Ad\xff", 1),
	}
	for name, v := range variants {
		if v == s {
			t.Fatalf("%s: variant did not change the bytes", name)
		}
		if _, err := ParseCanonical([]byte(v)); err == nil {
			t.Errorf("%s: ParseCanonical accepted %s", name, v)
		} else if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: error %v does not match ErrInvalid", name, err)
		}
	}
}

func TestCanonicalSizeHintCoversTypicalEvents(t *testing.T) {
	t.Parallel()
	ev := validEvent()
	b, err := ev.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	if h := ev.canonicalSizeHint(); h < len(b) {
		t.Errorf("size hint %d < encoded size %d: Canonical reallocates", h, len(b))
	}
}

// TestCanonicalCoversEveryField fails when a field is added to the event
// model: a stored field that Canonical leaves out would escape the integrity
// proofs. Decide whether it is encoded (then it is a new schema_version, see
// docs/canonical-encoding.md §7) or never stored, and update this list.
func TestCanonicalCoversEveryField(t *testing.T) {
	t.Parallel()
	notEncoded := map[string]bool{"Change.protect": true} // consumed before storage, rejected by Validate
	want := map[string][]string{
		"Event":  {"action", "actor", "changes", "description", "id", "metadata", "occurred_at", "outcome", "recorded_at", "request_id", "schema_version", "source", "span_id", "target", "tenant", "trace_id"},
		"Actor":  {"email", "id", "ip", "name", "on_behalf_of", "type", "user_agent"},
		"Target": {"id", "name", "type"},
		"Change": {"field", "new", "old", "redacted"},
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[Event](), reflect.TypeFor[Actor](), reflect.TypeFor[Target](), reflect.TypeFor[Change]()} {
		var got []string
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if typ.Name() == "Event" && f.Name == "Lookup" && name == "-" {
				// Derived from the actor's plaintext for search, like an
				// index: evidence is the (encrypted) fields it comes from.
				continue
			}
			if name == "" || name == "-" {
				t.Errorf("%s.%s has no JSON name", typ.Name(), f.Name)
				continue
			}
			if !notEncoded[typ.Name()+"."+name] {
				got = append(got, name)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want[typ.Name()]) {
			t.Errorf("%s JSON fields %v, canonical v2 encodes %v", typ.Name(), got, want[typ.Name()])
		}
	}
}

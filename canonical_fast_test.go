package trail

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// TestCanonicalStoredGolden: on every golden vector, AppendCanonicalStored
// gives exactly the golden bytes, into a fresh and into a non-empty buffer.
func TestCanonicalStoredGolden(t *testing.T) {
	for _, in := range goldenInputs(t) {
		ev := goldenEvent(t, in)
		want, err := os.ReadFile(strings.TrimSuffix(in, ".json") + ".canonical")
		if err != nil {
			t.Fatal(err)
		}
		got, err := ev.AppendCanonicalStored(nil)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: AppendCanonicalStored\n got %s (%v)\nwant %s", in, got, err, want)
		}
		got, err = ev.AppendCanonicalStored([]byte("prefix"))
		if err != nil || string(got) != "prefix"+string(want) {
			t.Errorf("%s: append to prefix: %s (%v)", in, got, err)
		}
		// Read back as a store would: ParseCanonical of the golden bytes.
		back, err := ParseCanonical(want)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := back.AppendCanonicalStored(nil); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: parsed back: %s (%v)", in, got, err)
		}
	}
}

// TestCanonicalStoredMatchesValidEvent checks the fixture event with every
// shape of change value the simple path recognises.
func TestCanonicalStoredMatchesValidEvent(t *testing.T) {
	for _, v := range []string{`"pro"`, `""`, `"Zoë 😀 \u2028"`, `0`, `-1`, `123456789012345`, `-12345678901234`,
		`1234567890123456`, `true`, `false`, `null`, `1.5`, `"a\"b"`, `"tab\t"`, `[1,"x"]`, `{"a":{"b":null}}`, `1e21`} {
		ev := validEvent()
		ev.Changes[0].New = json.RawMessage(v)
		if err := ev.Normalize(); err != nil {
			t.Fatal(err)
		}
		want, err := ev.Canonical()
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		got, err := ev.AppendCanonicalStored(nil)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s (%v)\nwant %s", v, got, err, want)
		}
	}
}

// TestCanonicalStoredRejects: what the stored encoder must refuse (or else
// two different events could give the same bytes, or bytes that are not
// JSON), and that it leaves dst unchanged then.
func TestCanonicalStoredRejects(t *testing.T) {
	for name, edit := range map[string]func(*Event){
		"injected member":     func(e *Event) { e.Changes[0].New = json.RawMessage(`"pro","old":"x"`); e.Changes[0].Old = nil },
		"non-canonical value": func(e *Event) { e.Changes[0].Old = json.RawMessage(`"free" `) },
		"-0":                  func(e *Event) { e.Changes[0].Old = json.RawMessage(`-0`) },
		"leading zero":        func(e *Event) { e.Changes[0].Old = json.RawMessage(`012`) },
		"unterminated":        func(e *Event) { e.Changes[0].Old = json.RawMessage(`"abc`) },
		"lone quote":          func(e *Event) { e.Changes[0].Old = json.RawMessage(`"`) },
		"bad utf8 value":      func(e *Event) { e.Changes[0].Old = json.RawMessage("\"\xff\"") },
		"control in value":    func(e *Event) { e.Changes[0].Old = json.RawMessage("\"a\nb\"") },
		"empty value":         func(e *Event) { e.Changes[0].Old = json.RawMessage{} },
		"float metadata":      func(e *Event) { e.Metadata["n"] = 1.5 },
		"nanoseconds":         func(e *Event) { e.OccurredAt = e.OccurredAt.Add(1) },
		"year 10000":          func(e *Event) { e.RecordedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"nested impersonation": func(e *Event) {
			e.Actor.OnBehalfOf.OnBehalfOf = e.Actor.OnBehalfOf // a cycle too
		},
	} {
		ev := validEvent()
		edit(&ev)
		got, err := ev.AppendCanonicalStored([]byte("keep"))
		if err == nil || !errors.Is(err, ErrInvalid) || string(got) != "keep" {
			t.Errorf("%s: got %q, %v; want ErrInvalid and dst unchanged", name, got, err)
		}
	}
}

// TestCanonicalStoredDetectsChanges: fields that validation would refuse
// are still encoded (no error) and change the bytes.
func TestCanonicalStoredDetectsChanges(t *testing.T) {
	ref := validEvent()
	want, err := ref.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*Event){
		"bad utf8 description": func(e *Event) { e.Description = "\xff" },
		"empty outcome":        func(e *Event) { e.Outcome = "" },
		"schema 0":             func(e *Event) { e.SchemaVersion = 0 },
		"bad action":           func(e *Event) { e.Action = "Delete" },
		"nil id":               func(e *Event) { e.ID = uuid.Nil },
		"protect dropped":      func(e *Event) { e.Changes[1].Redacted = false },
	} {
		ev := validEvent()
		edit(&ev)
		got, err := ev.AppendCanonicalStored(nil)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if bytes.Equal(got, want) {
			t.Errorf("%s: same bytes as the unchanged event", name)
		}
		if !json.Valid(got) && name != "bad utf8 description" {
			t.Errorf("%s: not JSON: %s", name, got)
		}
	}
}

// FuzzCanonicalStored: for every event that Normalize and Validate accept
// (decoded from fuzzed JSON, as the API decodes), AppendCanonicalStored
// equals Canonical byte for byte; and for raw change values the simple path
// agrees with the parser.
func FuzzCanonicalStored(f *testing.F) {
	addGoldenSeeds(f)
	f.Add([]byte(`{"actor":{"type":"user","id":"1","on_behalf_of":{"type":"user","id":"2"}},"action":"a.b","changes":[{"field":"f","old":null,"new":-0},{"field":"g","redacted":true},{"field":"h","new":"x\u0001é"}]}`))
	f.Add([]byte(`{"actor":{"type":"system"},"action":"a.b","changes":[{"field":"f","old":123456789012345,"new":1234567890123456789}],"metadata":{"b":[1.0,"\ud83d\ude00"],"a":{}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if isSimpleCanonical(data) {
			if c, err := CanonicalJSON(data); err != nil || !bytes.Equal(c, data) {
				t.Fatalf("simple path accepts %q, parser gives %q, %v", data, c, err)
			}
		}
		ev, err := decodeEventJSON(data)
		if err != nil {
			return
		}
		if ev.OccurredAt.IsZero() {
			ev.OccurredAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		if ev.ID == uuid.Nil {
			ev.ID = uuid.MustParse("01936c8e-7a00-7000-8000-000000000001")
		}
		if ev.Metadata != nil {
			// Both encoders write metadata through appendMetadataStored:
			// it must be appendValue's bytes and errors.
			want, werr := appendValue(nil, ev.Metadata, 0, true)
			got, gerr := appendMetadataStored(nil, ev.Metadata)
			if (werr == nil) != (gerr == nil) || werr == nil && !bytes.Equal(want, got) {
				t.Fatalf("metadata: appendValue %s (%v), appendMetadataStored %s (%v)", want, werr, got, gerr)
			}
		}
		if err := ev.Normalize(); err != nil {
			return
		}
		c, cerr := ev.Canonical()
		s, serr := ev.AppendCanonicalStored(nil)
		if cerr == nil && (serr != nil || !bytes.Equal(c, s)) {
			t.Fatalf("Canonical %s\n stored %s (%v)", c, s, serr)
		}
		if ev.Validate() == nil && cerr != nil {
			t.Fatalf("Canonical of a valid event: %v", cerr)
		}
	})
}

// FuzzNeedsEscape checks the word-at-a-time scan against the plain loop,
// and appendStr against appendJSONString.
func FuzzNeedsEscape(f *testing.F) {
	for _, s := range []string{"", "plain ascii text!", "quote\"here", "back\\slash", "nl\n", "\x1f\x20\x21", "é😀\x7f\xff\x80\xa2\xdc",
		"0123456789abcde\"", "\x00", "ab\x9f\xa2cdefghij", "\"\"\"\"\"\"\"\"\"\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := false
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
				want = true
			}
		}
		if got := needsEscape(s); got != want {
			t.Fatalf("needsEscape(%q) = %v", s, got)
		}
		if got, want := appendStr([]byte("x"), s), appendJSONString([]byte("x"), s); !bytes.Equal(got, want) {
			t.Fatalf("appendStr(%q) = %q, want %q", s, got, want)
		}
	})
}

// FuzzTimeStored checks the one-pass time encoder against
// appendCanonicalTime, in any location.
func FuzzTimeStored(f *testing.F) {
	for _, s := range []int64{0, -1, 951782400, 1767225600, 253402300799, 253402300800, 4102444800, 1709164800, 68256000000} {
		f.Add(s, int64(123456000), int32(0))
	}
	f.Add(int64(1767225600), int64(1), int32(3600))
	f.Fuzz(func(t *testing.T, sec, nsec int64, offset int32) {
		tm := time.Unix(sec, nsec).In(time.FixedZone("x", int(offset%86400)))
		want, werr := appendCanonicalTime([]byte("p"), tm, "f")
		got, gerr := appendTimeStored([]byte("p"), tm, "f")
		if !bytes.Equal(got, want) || (werr == nil) != (gerr == nil) {
			t.Fatalf("%v: got %q, %v; want %q, %v", tm, got, gerr, want, werr)
		}
	})
}

// FuzzPlainASCII checks the word-at-a-time scan against the plain loop, and
// that checkText accepts and refuses the same strings with it as the two
// checks it short-cuts.
func FuzzPlainASCII(f *testing.F) {
	for _, s := range []string{"", "plain ascii text!", "0123456\x00", "\x00", "0123456789abcdef\x7f", "é", "01234567\x80",
		"\x01\x01\x01\x01\x01\x01\x01\x00", "\x00\x01abcdefgh", "ab\xffcdefghij", "\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := true
		for i := 0; i < len(s); i++ {
			if c := s[i]; c == 0 || c >= 0x80 {
				want = false
			}
		}
		if got := plainASCII(s); got != want {
			t.Fatalf("plainASCII(%q) = %v", s, got)
		}
		ok := utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
		if err := checkText("f", s, 1<<20); (err == nil) != ok {
			t.Fatalf("checkText(%q) = %v, want ok %v", s, err, ok)
		}
	})
}

package trail

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// addGoldenSeeds adds the golden event inputs to a fuzz corpus.
func addGoldenSeeds(f *testing.F) {
	files, _ := filepath.Glob("testdata/canonical/*.json")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzCanonicalJSON checks CanonicalJSON on arbitrary input: the result is
// valid JSON, a fixed point, insensitive to white space, and equal to an
// independent RFC 8785 serialization of the same value; what it rejects
// includes everything encoding/json rejects.
func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{
		`{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","literals":[null,true,false]}`,
		`{"\u20ac":1,"\r":2,"\ufb33":3,"1":4,"\ud83d\ude00":5,"\u0080":6,"\u00f6":7}`,
		`[56,{"d":true,"10":null,"1":[]}]`, `-0`, `1e-7`, `9007199254740993`, `295147905179352830000`, `"\ud800"`,
		`{"a":1,"a":2}`, ` [ ] `, `{"b":{"d":1,"c":2},"a":[{"f":1,"e":2}]}`, `"\u2028<&>"`, `1.0e+21`, `5e-324`,
	} {
		f.Add([]byte(s))
	}
	addGoldenSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := CanonicalJSON(data)
		if err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		if !json.Valid(c) || !utf8.Valid(c) {
			t.Fatalf("canonical form %q is not valid JSON", c)
		}
		again, err := CanonicalJSON(c)
		if err != nil || !bytes.Equal(again, c) {
			t.Fatalf("not a fixed point: %q -> %q (%v)", c, again, err)
		}
		// Semantically equal input: the same value re-indented.
		var ind bytes.Buffer
		if err := json.Indent(&ind, data, " ", "\t"); err == nil {
			c2, err := CanonicalJSON(ind.Bytes())
			if err != nil || !bytes.Equal(c2, c) {
				t.Fatalf("indented input gives %q (%v), want %q", c2, err, c)
			}
		}
		// An independent serializer of the decoded value agrees.
		d := json.NewDecoder(bytes.NewReader(data))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			t.Fatalf("encoding/json rejects accepted input %q: %v", data, err)
		}
		var w strings.Builder
		if err := jcsWrite(&w, v); err != nil {
			t.Fatal(err)
		}
		if w.String() != string(c) {
			t.Fatalf("input %q\n canonical %q\nreference %q", data, c, w.String())
		}
	})
}

// FuzzCanonicalRoundTrip builds events from fuzzed fields and checks that
// ParseCanonical(Canonical(ev)) == ev and that the bytes are stable.
func FuzzCanonicalRoundTrip(f *testing.F) {
	f.Add(uint64(1), int64(1767225600123456), int64(0), "acme", "user", "42", "Ada", "ada@x", "user.delete", "user", "17", "",
		"success", "Deleted user", "plan", []byte(`"free"`), []byte(`"pro"`), false, []byte(`{"a":1}`), "req", "billing")
	f.Add(uint64(2), int64(0), int64(1767225600000001), "", "system", "", "", "", "system.start", "", "", "", "", "", "", []byte(nil), []byte(nil), true, []byte(nil), "", "")
	f.Add(uint64(3), int64(1767225600000000), int64(1767225600999999), "t:1", "anonymous", "", "Zoë \"Z\"", "\u2028", "a.b.c",
		"public.users", "😀", "n\x01", "denied", "ctl \x1f \u007f", "x.y", []byte(`{"b":[1.50,2e3],"a":null}`), []byte(`null`), false,
		[]byte(`{"\ufb33":1,"😀":2,"n":{"x":[-0,1E21]}}`), "r", "s")
	f.Fuzz(func(t *testing.T, id uint64, occurred, recorded int64, tenant, actorType, actorID, name, email, action, targetType, targetID, targetName,
		outcome, description, field string, oldV, newV []byte, redacted bool, meta []byte, requestID, source string) {
		ev := Event{
			ID:          uuid.UUID{0x01, 0x93, 6: 0x70, 8: 0x80, 15: byte(id), 14: byte(id >> 8), 13: byte(id >> 16), 12: byte(id >> 24)},
			OccurredAt:  time.UnixMicro(occurred % (253402300799 * 1e6)),
			Tenant:      tenant,
			Actor:       Actor{Type: ActorType(actorType), ID: actorID, Name: name, Email: email},
			Action:      action,
			Target:      Target{Type: targetType, ID: targetID, Name: targetName},
			Outcome:     Outcome(outcome),
			Description: description,
			RequestID:   requestID,
			Source:      source,
		}
		if recorded != 0 {
			ev.RecordedAt = time.UnixMicro(recorded)
		}
		if field != "" {
			c := Change{Field: field, Redacted: redacted}
			if oldV != nil {
				c.Old = oldV
			}
			if newV != nil {
				c.New = newV
			}
			ev.Changes = []Change{c}
		}
		if len(meta) > 0 {
			m, err := DecodeMetadata(meta)
			if err != nil {
				return
			}
			ev.Metadata = m
		}
		if err := ev.Normalize(); err != nil {
			return
		}
		if err := ev.validate(time.Time{}, false); err != nil {
			if _, cerr := ev.Canonical(); cerr == nil {
				t.Fatalf("Canonical accepted an event Validate refuses: %v", err)
			}
			return
		}
		b, err := ev.Canonical()
		if err != nil {
			t.Fatalf("Canonical of a normalized valid event: %v", err)
		}
		back, err := ParseCanonical(b)
		if err != nil {
			t.Fatalf("ParseCanonical(%s): %v", b, err)
		}
		if !reflect.DeepEqual(back, ev) {
			t.Fatalf("round trip\n got %#v\nwant %#v", back, ev)
		}
		b2, err := back.Canonical()
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("bytes changed: %s vs %s (%v)", b, b2, err)
		}
	})
}

// FuzzEventJSON decodes arbitrary JSON as an event the way the API does.
// Normalize+Validate either refuse it or give an event whose canonical form
// exists, is stable under Normalize, parses back to the event, and is what
// a third party rebuilds from the event's JSON export.
func FuzzEventJSON(f *testing.F) {
	addGoldenSeeds(f)
	f.Add([]byte(`{"action":"user.delete","actor":{"type":"user","id":"1"}}`))
	f.Add([]byte(`{"id":"01936c8e-7a00-7000-8000-000000000001","occurred_at":"2026-01-01T00:00:00.1234567-05:00","actor":{"type":"system"},"action":"a.b","metadata":{"x":1.0,"y":[{}]}}`))
	f.Add([]byte(`{"actor":{"type":"user","id":"1","on_behalf_of":{"type":"user","id":"2"}},"action":"a.b","changes":[{"field":"f","old":null},{"field":"g","redacted":true}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := decodeEventJSON(data)
		if err != nil {
			return
		}
		if ev.OccurredAt.IsZero() {
			// Keep runs deterministic: Normalize would use the clock.
			ev.OccurredAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		if ev.ID == uuid.Nil {
			ev.ID = uuid.MustParse("01936c8e-7a00-7000-8000-000000000001")
		}
		if err := ev.Normalize(); err != nil {
			return
		}
		if err := ev.Validate(); err != nil {
			return
		}
		c, err := ev.Canonical()
		if err != nil {
			t.Fatalf("Canonical of a valid event: %v", err)
		}
		again := ev
		if err := again.Normalize(); err != nil {
			t.Fatal(err)
		}
		c2, err := again.Canonical()
		if err != nil || !bytes.Equal(c, c2) {
			t.Fatalf("Normalize not stable: %s vs %s (%v)", c, c2, err)
		}
		back, err := ParseCanonical(c)
		if err != nil {
			t.Fatalf("ParseCanonical(%s): %v", c, err)
		}
		if !reflect.DeepEqual(back, ev) {
			t.Fatalf("round trip\n got %#v\nwant %#v", back, ev)
		}
		export, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		tp, err := thirdPartyCanonical(export)
		if err != nil || !bytes.Equal(tp, c) {
			t.Fatalf("third party rebuilds %s (%v)\nwant %s\nfrom %s", tp, err, c, export)
		}
	})
}

// FuzzCheckEventJSON holds CheckEventJSON to an independent reading of the
// same text with encoding/json's tokenizer: whatever it accepts has no
// member name twice in any object, and no "id" or "occurred_at" that
// decodes to the zero value; a text with a repeated name is refused.
func FuzzCheckEventJSON(f *testing.F) {
	addGoldenSeeds(f)
	for _, s := range []string{
		`{"tenant":"acme","tenant":"globex","actor":{"type":"user","id":"1"},"action":"a.b"}`,
		`{"actor":{"type":"user","id":"1","id":"2"},"action":"a.b"}`,
		`{"TENANT":"x","tenant":"y"}`, `{"id":"00000000-0000-0000-0000-000000000000"}`, `{"id":null}`,
		`{"occurred_at":"0001-01-01T00:00:00Z"}`, `{"occurred_at":"0001-01-01T01:00:00+01:00"}`,
		`{"metadata":{"a":[{"b":1,"\u0062":2}]}}`, `{"changes":[{"field":"a","new":{"x":1,"x":1}}]}`,
		`{"description":"\ud800"}`, `{"a":{"b":1},"a":{"b":1}}`, `{"Tenant":"a","tenant":"b"}`, `{"Source":"a","SOURCE":"b"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := CheckEventJSON(data)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field == "" {
				t.Fatalf("error %v is not a *ValidationError naming a field", err)
			}
		}
		if !json.Valid(data) {
			return
		}
		dup := repeatedName(data)
		if dup != "" && err == nil {
			t.Fatalf("accepted %q, in which %q is repeated", data, dup)
		}
		if err != nil {
			return
		}
		var members map[string]json.RawMessage
		if json.Unmarshal(data, &members) != nil {
			return
		}
		// No two names that encoding/json takes for the same field.
		fields := map[string]string{}
		for _, f := range reflect.VisibleFields(reflect.TypeFor[Event]()) {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			fields[name] = ""
		}
		for k := range members {
			lower := strings.Map(func(r rune) rune {
				if 'A' <= r && r <= 'Z' {
					return r + 'a' - 'A'
				}
				return r
			}, k)
			if other, ok := fields[lower]; ok {
				if other != "" {
					t.Fatalf("accepted %q, in which %q and %q name one field", data, other, k)
				}
				fields[lower] = k
			}
		}
		if v, ok := members["id"]; ok && string(v) != "null" {
			var id uuid.UUID
			if json.Unmarshal(v, &id) == nil && id == uuid.Nil {
				t.Fatalf("accepted the nil UUID in %q", data)
			}
		}
		if v, ok := members["occurred_at"]; ok && string(v) != "null" {
			var at time.Time
			if json.Unmarshal(v, &at) == nil && at.IsZero() {
				t.Fatalf("accepted the zero time in %q", data)
			}
		}
	})
}

// repeatedName returns a member name that appears twice in one object of the
// valid JSON text data, read with encoding/json's tokenizer, or "".
func repeatedName(data []byte) string {
	d := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		object bool
		names  map[string]bool
		key    bool // the next token of an object is a name
	}
	var stack []*frame
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.key {
			if name, ok := tok.(string); ok {
				if top.names[name] {
					return name
				}
				top.names[name] = true
				top.key = false
				continue
			}
		}
		if top != nil && top.object {
			top.key = true // after this value, a name (or the end)
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, names: map[string]bool{}, key: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}

// FuzzDecodeCursor: DecodeCursor never panics, and what it accepts is
// exactly what EncodeCursor makes of the position it returns.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(EncodeCursor(Cursor{OccurredAt: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), ID: uuid.MustParse("01936c8e-7a00-7000-8000-000000000001")}))
	f.Add(EncodeCursor(Cursor{OccurredAt: time.Unix(0, 0)}))
	for _, s := range []string{"", "AQAGJ", "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "not a cursor", "AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := DecodeCursor(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidCursor) {
				t.Fatalf("DecodeCursor(%q) = %v, not ErrInvalidCursor", s, err)
			}
			return
		}
		if EncodeCursor(c) != s || c.OccurredAt.Location() != time.UTC {
			t.Fatalf("DecodeCursor(%q) = %+v, which encodes to %q", s, c, EncodeCursor(c))
		}
	})
}

// FuzzCursorBitFlip: one flipped bit anywhere in a cursor's text or bytes is
// refused.
func FuzzCursorBitFlip(f *testing.F) {
	f.Add(int64(1772323200000000), []byte{1, 2, 3}, uint16(0), false)
	f.Add(int64(-1), []byte(nil), uint16(231), true)
	f.Add(int64(0), bytes.Repeat([]byte{0xff}, 16), uint16(300), false)
	f.Fuzz(func(t *testing.T, micros int64, id []byte, bit uint16, inBytes bool) {
		var c Cursor
		c.OccurredAt = time.UnixMicro(micros)
		copy(c.ID[:], id)
		s := EncodeCursor(c)
		b := []byte(s)
		if inBytes {
			b, _ = base64.RawURLEncoding.DecodeString(s)
		}
		i := int(bit) % (len(b) * 8)
		b[i/8] ^= 1 << (i % 8)
		bad := string(b)
		if inBytes {
			bad = base64.RawURLEncoding.EncodeToString(b)
		}
		if got, err := DecodeCursor(bad); !errors.Is(err, ErrInvalidCursor) {
			t.Fatalf("cursor %q with bit %d flipped (%q) decodes to %+v, %v", s, i, bad, got, err)
		}
	})
}

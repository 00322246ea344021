package trail

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Normalize puts ev in its stored form: it fills the defaults (a UUIDv7 ID,
// OccurredAt now, Outcome success, the current SchemaVersion), moves times to
// UTC at microsecond precision (what every store keeps), and rewrites the JSON
// values of Changes and Metadata in canonical form (see docs/canonical-encoding.md).
// Normalizing twice changes nothing. Record calls it; a store's Append expects
// normalized events.
func (ev *Event) Normalize() error {
	if ev.ID == uuid.Nil {
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("trail: new event id: %w", err)
		}
		ev.ID = id
	}
	if ev.OccurredAt.IsZero() {
		ev.OccurredAt = time.Now()
	}
	ev.OccurredAt = ev.OccurredAt.UTC().Truncate(time.Microsecond)
	if !ev.RecordedAt.IsZero() {
		ev.RecordedAt = ev.RecordedAt.UTC().Truncate(time.Microsecond)
	}
	if ev.Outcome == "" {
		ev.Outcome = OutcomeSuccess
	}
	if ev.SchemaVersion == 0 {
		ev.SchemaVersion = SchemaVersion
	}
	for i := range ev.Changes {
		c := &ev.Changes[i]
		for _, v := range []*json.RawMessage{&c.Old, &c.New} {
			if *v == nil {
				continue
			}
			b, err := canonicalJSON(*v)
			if err != nil {
				return invalid(fmt.Sprintf("changes[%d]", i), "%v", err)
			}
			*v = b
		}
	}
	if ev.Metadata != nil {
		b, err := canonicalValue(ev.Metadata)
		if err != nil {
			return invalid("metadata", "%v", err)
		}
		m, err := DecodeMetadata(b)
		if err != nil {
			return invalid("metadata", "%v", err)
		}
		if len(m) == 0 {
			m = nil
		}
		ev.Metadata = m
	}
	return nil
}

// DecodeMetadata parses a stored metadata object. Numbers come back as
// json.Number so that they keep their canonical text. Stores use it to read
// the metadata column; an empty input is nil metadata.
func DecodeMetadata(b []byte) (map[string]any, error) {
	if len(b) == 0 || string(b) == "null" {
		return nil, nil
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("metadata is not a JSON object: %w", err)
	}
	return m, nil
}

// CanonicalJSON returns the canonical form of one JSON value: no insignificant
// white space, object keys sorted by their UTF-8 bytes, strings with only the
// escapes JSON requires, numbers as IEEE-754 doubles printed the way
// ECMAScript prints them (so 1.0 and 1e0 both become 1). It rejects invalid
// UTF-8, duplicate keys, nesting deeper than MaxJSONDepth, and integers
// outside ±2^53 that a double cannot hold exactly (send those as strings).
func CanonicalJSON(raw []byte) ([]byte, error) { return canonicalJSON(raw) }

func canonicalJSON(raw []byte) ([]byte, error) {
	if !utf8.Valid(raw) {
		return nil, errors.New("not valid UTF-8")
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var buf bytes.Buffer
	buf.Grow(len(raw))
	if err := canonTokens(d, &buf, 0); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("more than one JSON value")
	}
	return buf.Bytes(), nil
}

// canonicalValue is CanonicalJSON of a Go value.
func canonicalValue(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return canonicalJSON(bytes.TrimRight(b.Bytes(), "\n"))
}

func canonTokens(d *json.Decoder, buf *bytes.Buffer, depth int) error {
	tok, err := d.Token()
	if err != nil {
		if err == io.EOF {
			return errors.New("empty JSON value")
		}
		return fmt.Errorf("invalid JSON: %w", err)
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= MaxJSONDepth {
			return fmt.Errorf("nested deeper than %d levels", MaxJSONDepth)
		}
		switch t {
		case '[':
			buf.WriteByte('[')
			for i := 0; d.More(); i++ {
				if i > 0 {
					buf.WriteByte(',')
				}
				if err := canonTokens(d, buf, depth+1); err != nil {
					return err
				}
			}
			if _, err := d.Token(); err != nil {
				return fmt.Errorf("invalid JSON: %w", err)
			}
			buf.WriteByte(']')
		case '{':
			type member struct {
				key string
				val []byte
			}
			var members []member
			seen := map[string]struct{}{}
			for d.More() {
				kt, err := d.Token()
				if err != nil {
					return fmt.Errorf("invalid JSON: %w", err)
				}
				k := kt.(string)
				if _, dup := seen[k]; dup {
					return fmt.Errorf("duplicate key %q", clip(k))
				}
				seen[k] = struct{}{}
				var vb bytes.Buffer
				if err := canonTokens(d, &vb, depth+1); err != nil {
					return err
				}
				members = append(members, member{k, vb.Bytes()})
			}
			if _, err := d.Token(); err != nil {
				return fmt.Errorf("invalid JSON: %w", err)
			}
			slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.key, b.key) })
			buf.WriteByte('{')
			for i, m := range members {
				if i > 0 {
					buf.WriteByte(',')
				}
				writeJSONString(buf, m.key)
				buf.WriteByte(':')
				buf.Write(m.val)
			}
			buf.WriteByte('}')
		default:
			return fmt.Errorf("invalid JSON: unexpected %q", t)
		}
	case string:
		writeJSONString(buf, t)
	case json.Number:
		s, err := canonicalNumber(string(t))
		if err != nil {
			return err
		}
		buf.WriteString(s)
	case bool:
		buf.WriteString(strconv.FormatBool(t))
	case nil:
		buf.WriteString("null")
	}
	return nil
}

const maxExactInt = 1 << 53

// canonicalNumber prints a JSON number the way ECMAScript's Number.toString
// does (the rule of RFC 8785), which is also encoding/json's float64 format.
func canonicalNumber(s string) (string, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return "", fmt.Errorf("number %s out of range", clip(s))
	}
	if !strings.ContainsAny(s, ".eE") && (f > maxExactInt || f < -maxExactInt) {
		return "", fmt.Errorf("integer %s does not fit a double exactly; send it as a string", clip(s))
	}
	if f == 0 {
		return "0", nil // -0 too
	}
	b, err := json.Marshal(f)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// writeJSONString writes s with only the escapes JSON requires: quote,
// backslash and control characters; \b \f \n \r \t in short form, the rest as
// \u00XX (lower-case hex). Everything else, including < > & and U+2028, is
// written as UTF-8.
func writeJSONString(buf *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	buf.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			buf.WriteString(`\"`)
		case c == '\\':
			buf.WriteString(`\\`)
		case c == '\b':
			buf.WriteString(`\b`)
		case c == '\f':
			buf.WriteString(`\f`)
		case c == '\n':
			buf.WriteString(`\n`)
		case c == '\r':
			buf.WriteString(`\r`)
		case c == '\t':
			buf.WriteString(`\t`)
		case c < 0x20:
			buf.WriteString(`\u00`)
			buf.WriteByte(hex[c>>4])
			buf.WriteByte(hex[c&0xf])
		default:
			buf.WriteByte(c)
		}
	}
	buf.WriteByte('"')
}

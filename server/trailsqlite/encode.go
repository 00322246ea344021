package trailsqlite

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/trailhq/trail"
)

// The stored JSON of changes and metadata is written by hand: ingest spends
// its CPU here otherwise (reflection and key sorting in encoding/json). The
// output is ordinary JSON that DecodeMetadata and encoding/json read back;
// values of a type this encoder does not know go through encoding/json.

// appendChanges appends cs as a JSON array of {field, old?, new?, redacted?}.
// Old and New are normalized (canonical) JSON and are copied as they are.
func appendChanges(b []byte, cs []trail.Change) ([]byte, error) {
	b = append(b, '[')
	for i, c := range cs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"field":`...)
		b = appendString(b, c.Field)
		if c.Old != nil {
			if !json.Valid(c.Old) {
				return nil, errInvalidJSON(c.Field, "old")
			}
			b = append(b, `,"old":`...)
			b = append(b, c.Old...)
		}
		if c.New != nil {
			if !json.Valid(c.New) {
				return nil, errInvalidJSON(c.Field, "new")
			}
			b = append(b, `,"new":`...)
			b = append(b, c.New...)
		}
		if c.Redacted {
			b = append(b, `,"redacted":true`...)
		}
		b = append(b, '}')
	}
	return append(b, ']'), nil
}

type jsonError struct{ field, which string }

func (e *jsonError) Error() string {
	return "change " + strconv.Quote(e.field) + ": " + e.which + " is not valid JSON"
}

func errInvalidJSON(field, which string) error { return &jsonError{field, which} }

// appendValue appends v as JSON, object keys sorted.
func appendValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case json.Number:
		if v == "" || !json.Valid([]byte(v)) {
			break
		}
		return append(b, v...), nil
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			break
		}
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return strconv.AppendInt(b, int64(v), 10), nil
		}
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendValue(b, v[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, j...), nil
}

// appendString appends s as a JSON string, escaping only what JSON requires.
// Invalid UTF-8 (which validation rejects before a store sees it) becomes
// U+FFFD, as encoding/json does.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, "\ufffd"...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

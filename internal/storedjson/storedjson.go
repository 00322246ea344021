// Package storedjson turns the JSON a store keeps for an event's changes and
// metadata back into trail values, fast for the shapes events carry.
//
// Reading rows back is most of `trail verify`'s and `trail seal`'s CPU on a
// database: encoding/json's reflection over []trail.Change, then a second
// canonicalization of every change value, then a json.Decoder for the
// metadata map. Here the stored text is canonicalized once
// (trail.CanonicalJSON, which every path needs anyway: PostgreSQL's jsonb
// prints values in its own form) and the canonical text, whose shape is rigid
// (no white space, members sorted, no duplicates, only required escapes), is
// cut into the result without reflection: change values are sub-slices of it.
// Anything outside the common shape reports ok == false, and the caller takes
// the general path, which gives the same result or the same error: the fast
// path never decides what the general one would refuse.
package storedjson

import (
	"bytes"
	"encoding/json"

	"github.com/trailhq/trail"
)

// Changes decodes a stored changes array as json.Unmarshal into
// []trail.Change followed by trail.CanonicalJSON of every Old and New value
// would. ok is false when b is not of the common shape (or not valid): then
// nothing is decided and the caller must take that general path.
func Changes(b []byte) (out []trail.Change, ok bool) {
	return changes(b, false)
}

// CanonicalChanges is json.Unmarshal of b into []trail.Change, for a store
// that keeps the canonical text (SQLite): ok only when b is already
// canonical, so that the values are b's own bytes, as json.Unmarshal leaves
// them. Anything else (an edited row too) goes to json.Unmarshal.
func CanonicalChanges(b []byte) (out []trail.Change, ok bool) {
	return changes(b, true)
}

func changes(b []byte, exact bool) (out []trail.Change, ok bool) {
	c, err := trail.CanonicalJSON(b)
	if err != nil || len(c) < 2 || c[0] != '[' || (exact && !bytes.Equal(c, b)) {
		return nil, false
	}
	if string(c) == "[]" {
		return []trail.Change{}, true
	}
	n := 1
	for _, ch := range c { // an upper bound: one object per '{'
		if ch == '{' {
			n++
		}
	}
	out = make([]trail.Change, 0, n)
	i := 1
	for {
		var ch trail.Change
		if i, ok = change(c, i, &ch); !ok {
			return nil, false
		}
		out = append(out, ch)
		if i >= len(c) {
			return nil, false
		}
		switch c[i] {
		case ',':
			i++
		case ']':
			return out, i == len(c)-1
		default:
			return nil, false
		}
	}
}

// change reads one canonical change object at c[i:] into ch and returns the
// index after it. Members come sorted: field, new, old, redacted; any other
// member (json.Unmarshal would ignore it, or match it without regard to
// case) or value type leaves the object to the general path.
func change(c []byte, i int, ch *trail.Change) (int, bool) {
	if i >= len(c) || c[i] != '{' {
		return i, false
	}
	i++
	if i < len(c) && c[i] == '}' {
		return i + 1, true
	}
	for {
		k, j, ok := plainString(c, i)
		if !ok || j >= len(c) || c[j] != ':' {
			return i, false
		}
		i = j + 1
		switch k {
		case "field":
			if ch.Field, i, ok = plainString(c, i); !ok {
				return i, false
			}
		case "new", "old":
			end, ok := skipValue(c, i)
			if !ok {
				return i, false
			}
			v := json.RawMessage(c[i:end:end])
			if k == "new" {
				ch.New = v
			} else {
				ch.Old = v
			}
			i = end
		case "redacted":
			switch {
			case hasPrefix(c[i:], "true"):
				ch.Redacted, i = true, i+4
			case hasPrefix(c[i:], "false"):
				ch.Redacted, i = false, i+5
			default:
				return i, false
			}
		default:
			return i, false
		}
		if i >= len(c) {
			return i, false
		}
		switch c[i] {
		case ',':
			i++
		case '}':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// Metadata decodes stored metadata as trail.DecodeMetadata of its canonical
// form would, for an object whose values are strings, numbers, booleans and
// nulls. ok is false otherwise (nested values, escapes, invalid JSON): the
// caller takes the general path.
func Metadata(b []byte) (m map[string]any, ok bool) {
	return metadata(b, false)
}

// CanonicalMetadata is trail.DecodeMetadata(b) for a store that keeps the
// canonical text: ok only when b is already canonical.
func CanonicalMetadata(b []byte) (m map[string]any, ok bool) {
	return metadata(b, true)
}

func metadata(b []byte, exact bool) (m map[string]any, ok bool) {
	c, err := trail.CanonicalJSON(b)
	if err != nil || len(c) < 2 || c[0] != '{' || (exact && !bytes.Equal(c, b)) {
		return nil, false
	}
	if string(c) == "{}" {
		return map[string]any{}, true
	}
	n := 0
	for _, ch := range c { // an upper bound on the members
		if ch == ':' {
			n++
		}
	}
	m = make(map[string]any, n)
	i := 1
	for {
		k, j, ok := plainString(c, i)
		if !ok || j >= len(c) || c[j] != ':' {
			return nil, false
		}
		i = j + 1
		if i >= len(c) {
			return nil, false
		}
		var v any
		switch x := c[i]; {
		case x == '"':
			s, j, ok := plainString(c, i)
			if !ok {
				return nil, false
			}
			v, i = s, j
		case x == '-' || (x >= '0' && x <= '9'):
			end, _ := skipValue(c, i)
			v, i = json.Number(c[i:end]), end
		case hasPrefix(c[i:], "true"):
			v, i = true, i+4
		case hasPrefix(c[i:], "false"):
			v, i = false, i+5
		case hasPrefix(c[i:], "null"):
			v, i = nil, i+4
		default: // an object or an array: the general path
			return nil, false
		}
		m[k] = v
		if i >= len(c) {
			return nil, false
		}
		switch c[i] {
		case ',':
			i++
		case '}':
			return m, i == len(c)-1
		default:
			return nil, false
		}
	}
}

// plainString reads the JSON string at c[i:] when it has no escape, so that
// its text is its value, and returns that value and the index after it.
func plainString(c []byte, i int) (string, int, bool) {
	if i >= len(c) || c[i] != '"' {
		return "", i, false
	}
	for j := i + 1; j < len(c); j++ {
		switch c[j] {
		case '\\':
			return "", i, false
		case '"':
			return string(c[i+1 : j]), j + 1, true
		}
	}
	return "", i, false
}

// skipValue returns the index after the canonical JSON value at c[i:].
func skipValue(c []byte, i int) (int, bool) {
	depth, in := 0, false
	for j := i; j < len(c); j++ {
		ch := c[j]
		if in {
			switch ch {
			case '\\':
				j++
			case '"':
				in = false
				if depth == 0 {
					return j + 1, true
				}
			}
			continue
		}
		switch ch {
		case '"':
			in = true
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return j, j > i
			}
			depth--
			if depth == 0 {
				return j + 1, true
			}
		case ',':
			if depth == 0 {
				return j, j > i
			}
		}
	}
	return len(c), depth == 0 && !in && len(c) > i
}

func hasPrefix(b []byte, s string) bool { return len(b) >= len(s) && string(b[:len(s)]) == s }

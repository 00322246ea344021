package trail

import (
	"unicode/utf8"
)

// AppendCanonicalStored appends the canonical encoding of ev to dst without
// validating ev first. It is the encoder for events read back from a store
// to check their integrity (trailseal's verifier): there, validation finds
// nothing that the hash comparison would not, since any change to a stored
// event changes its bytes, and it costs about as much as the encoding. The
// write path (Record, sealing) keeps using Canonical, which refuses events
// that are not normalized and valid.
//
// For every event that AppendCanonical accepts, AppendCanonicalStored
// appends exactly the same bytes. For any other event it either returns an
// error matching ErrInvalid (change values that are not single canonical
// JSON values, metadata that is not normalized, times out of range or below
// microsecond precision, impersonation nested more than one level) or
// appends bytes that are still a deterministic, injective function of the
// encoded fields: strings are escaped, never altered, so two events that
// differ in an encoded field never give the same bytes. Validation rules
// that only restrict values (patterns, lengths, UTF-8, the size limit) are
// not checked. On error dst is returned unchanged.
func (ev *Event) AppendCanonicalStored(dst []byte) ([]byte, error) {
	out, _, err := ev.appendCanonical(dst, true)
	if err != nil {
		return dst, err
	}
	return out, nil
}

// appendRawValue appends a change value that must already be canonical
// JSON. In stored mode the common shapes (a plain string, a short integer,
// a literal) are recognised without running the parser; everything else, and
// every value in the validating mode, goes through appendRawCanonical.
func appendRawValue(b, raw []byte, i int, name string, stored bool) ([]byte, error) {
	if stored && isSimpleCanonical(raw) {
		return append(b, raw...), nil
	}
	return appendRawCanonical(b, raw, i, name)
}

// isSimpleCanonical reports whether raw is, on its own, a canonical JSON
// value of one of the shapes: true, false, null; an integer of at most 15
// characters without leading zeros other than -0; a string without escapes,
// control characters or invalid UTF-8. For each, appendCanonicalJSON would
// accept raw and write it unchanged.
func isSimpleCanonical(raw []byte) bool {
	n := len(raw)
	if n == 0 {
		return false
	}
	switch c := raw[0]; {
	case c == '"':
		if n < 2 || raw[n-1] != '"' {
			return false
		}
		body := raw[1 : n-1]
		ascii := true
		for _, c := range body {
			if c < 0x20 || c == '"' || c == '\\' {
				return false
			}
			if c >= utf8.RuneSelf {
				ascii = false
			}
		}
		return ascii || utf8.Valid(body)
	case c == '-' || (c >= '0' && c <= '9'):
		if n > 15 {
			return false
		}
		d := raw
		if c == '-' {
			d = raw[1:]
		}
		if len(d) == 0 || (d[0] == '0' && (len(d) > 1 || c == '-')) {
			return false // empty, leading zero, or -0
		}
		for _, c := range d {
			if c < '0' || c > '9' {
				return false
			}
		}
		return true
	}
	s := string(raw)
	return s == "true" || s == "false" || s == "null"
}

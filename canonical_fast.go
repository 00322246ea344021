package trail

import (
	"encoding/json"
	"strings"
	"time"
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

// appendMetadataStored is appendValue(b, m, 0, true) for the top-level
// metadata object, in one pass over the map: keys and values are collected
// together (no second lookup per key) and sorted in place by insertion,
// which for the few keys events carry beats a generic sort. Nested values
// go through appendValue, so the output is the same byte for byte; a key
// appendValue would refuse sends the whole object there, for its error.
func appendMetadataStored(b []byte, m map[string]any) ([]byte, error) {
	type kv struct {
		k string
		v any
	}
	var stack [16]kv
	kvs := stack[:0]
	for k, v := range m {
		if strings.IndexByte(k, 0) >= 0 || !utf8.ValidString(k) {
			return appendValue(b, m, 0, true)
		}
		kvs = append(kvs, kv{k, v})
	}
	for i := 1; i < len(kvs); i++ {
		for j := i; j > 0 && compareUTF16(kvs[j].k, kvs[j-1].k) < 0; j-- {
			kvs[j], kvs[j-1] = kvs[j-1], kvs[j]
		}
	}
	b = append(b, '{')
	for i := range kvs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, kvs[i].k)
		b = append(b, ':')
		var err error
		if b, err = appendScalarStored(b, kvs[i].v); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// appendScalarStored is appendValue(b, v, 1, true) with fast paths for the
// usual metadata values: strings, short integers, booleans and null.
func appendScalarStored(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		if strings.IndexByte(x, 0) < 0 && utf8.ValidString(x) {
			return appendStr(b, x), nil
		}
	case json.Number:
		if len(x) > 0 && x[0] != '"' && x[0] != 't' && x[0] != 'f' && x[0] != 'n' && isSimpleCanonical([]byte(x)) {
			return append(b, x...), nil
		}
	case bool:
		if x {
			return append(b, "true"...), nil
		}
		return append(b, "false"...), nil
	case nil:
		return append(b, "null"...), nil
	}
	return appendValue(b, v, 1, true)
}

// appendStr is appendJSONString with a fast path: strings that need no
// escape (the usual case) are found eight bytes at a time and copied whole.
func appendStr(b []byte, s string) []byte {
	if needsEscape(s) {
		return appendJSONString(b, s)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Word-at-a-time scans: lo8 has 1 in every byte, hi8 the high bit of every
// byte; word8 is s[i:i+8] as a little-endian word.
const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

func word8(s string, i int) uint64 {
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// needsEscape reports whether s has a byte below 0x20, a quote or a
// backslash.
func needsEscape(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := word8(s, i)
		q := w ^ (lo8 * '"')
		bs := w ^ (lo8 * '\\')
		if ((w-lo8*0x20)&^w|(q-lo8)&^q|(bs-lo8)&^bs)&hi8 != 0 {
			return true
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			return true
		}
	}
	return false
}

// appendTimeStored is appendCanonicalTime computed from the Unix time in
// one pass (days to civil date by Hinnant's algorithm) instead of
// t.UTC().Date() and t.Clock(), which each convert again. Same bytes and
// the same errors, through appendCanonicalTime, for anything out of range.
func appendTimeStored(b []byte, t time.Time, field string) ([]byte, error) {
	sec, ns := t.Unix(), t.Nanosecond()
	if ns%1000 != 0 || sec < 0 || sec >= 253402300800 { // 1970-01-01 .. 9999-12-31
		return appendCanonicalTime(b, t, field)
	}
	days, rem := sec/86400, sec%86400
	// Civil from days since 1970-01-01 (era arithmetic, all values >= 0).
	z := days + 719468
	era := z / 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	var buf [28]byte
	buf[0] = '"'
	put2 := func(i int, v int64) { buf[i], buf[i+1] = digits2[2*v], digits2[2*v+1] }
	put2(1, y/100)
	put2(3, y%100)
	buf[5] = '-'
	put2(6, m)
	buf[8] = '-'
	put2(9, d)
	buf[11] = 'T'
	put2(12, rem/3600)
	buf[14] = ':'
	put2(15, rem/60%60)
	buf[17] = ':'
	put2(18, rem%60)
	buf[20] = '.'
	us := int64(ns / 1000)
	put2(21, us/10000)
	put2(23, us/100%100)
	put2(25, us%100)
	buf[27] = 'Z'
	b = append(b, buf[:]...)
	return append(b, '"'), nil
}

const digits2 = "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"

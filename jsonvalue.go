package trail

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Normalize puts ev in its stored form: it fills the defaults (a UUIDv7 ID,
// OccurredAt now, Outcome success, the current SchemaVersion), moves times to
// UTC at microsecond precision (what every store keeps), and rewrites the JSON
// values of Changes and Metadata in canonical form (see docs/canonical-encoding.md;
// metadata values become map[string]any, []any, string, json.Number, bool or
// nil, and empty Changes or Metadata become nil). Normalizing twice changes
// nothing. Record calls it; a store's Append expects
// normalized events.
//
// Normalize also refuses personal fields that are wrong as plaintext: an
// actor.ip that is no IP address, control characters in a name, e-mail or
// user agent (see Validate). Record runs a privacy Transform between
// Normalize and Validate, and after it only their ciphertext is left. An
// actor.ip given with a port ("203.0.113.9:51234", "[2001:db8::1]:443", as
// http.Request.RemoteAddr has it) keeps only the address.
func (ev *Event) Normalize() error {
	ev.Actor.IP = stripPort(ev.Actor.IP)
	if err := checkPersonal(ev); err != nil {
		return err
	}
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
		ev.SchemaVersion = 1 // the oldest version that holds the event
		if ev.SpanID != "" {
			ev.SchemaVersion = 2
		}
	}
	if len(ev.Changes) == 0 {
		ev.Changes = nil // as for Metadata: empty and absent are one state
	}
	for i := range ev.Changes {
		c := &ev.Changes[i]
		for _, v := range []struct {
			name string
			raw  *json.RawMessage
		}{{".old", &c.Old}, {".new", &c.New}} {
			if *v.raw == nil {
				continue
			}
			b, err := canonicalJSON(*v.raw)
			if err != nil {
				return invalid(fmt.Sprintf("changes[%d]%s", i, v.name), "%v", err)
			}
			if !bytes.Equal(b, *v.raw) {
				*v.raw = b
			}
		}
	}
	if ev.Metadata != nil {
		m, err := normalizeMetadata(ev.Metadata)
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

// CanonicalJSON returns the canonical form of one JSON value, as RFC 8785
// (JSON Canonicalization Scheme) defines it: no insignificant white space,
// object members sorted by the UTF-16 code units of their names, strings with
// only the escapes JSON requires, numbers as IEEE-754 doubles printed the way
// ECMAScript prints them (so 1.0 and 1e0 both become 1).
//
// On top of RFC 8785 it rejects, so that nothing is silently lost: invalid
// UTF-8 and lone surrogates, duplicate member names, nesting deeper than
// MaxJSONDepth, and integers of up to 21 digits written without fraction or
// exponent whose value a double cannot hold (e.g. 9007199254740993: send such IDs as
// strings). Every canonical form is accepted again, also as PostgreSQL's
// jsonb prints it back.
func CanonicalJSON(raw []byte) ([]byte, error) { return canonicalJSON(raw) }

func canonicalJSON(raw []byte) ([]byte, error) {
	b, err := appendCanonicalJSON(make([]byte, 0, len(raw)), raw, 0)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// appendCanonicalJSON appends the canonical form of the JSON text raw to dst.
// depth is the nesting depth raw sits at.
func appendCanonicalJSON(dst, raw []byte, depth int) ([]byte, error) {
	if !utf8.Valid(raw) {
		return dst, errors.New("not valid UTF-8")
	}
	p := jsonParser{s: raw}
	p.skipSpace()
	if p.i == len(p.s) {
		return dst, errors.New("empty JSON value")
	}
	dst, err := p.value(dst, depth)
	if err != nil {
		return dst, err
	}
	p.skipSpace()
	if p.i != len(p.s) {
		return dst, errors.New("more than one JSON value")
	}
	return dst, nil
}

// jsonParser is a strict RFC 8259 parser that writes the canonical form of
// what it reads. It works on validated UTF-8.
type jsonParser struct {
	s []byte
	i int
}

func (p *jsonParser) skipSpace() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("invalid JSON at offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *jsonParser) unexpected() error {
	if p.i >= len(p.s) {
		return p.errorf("unexpected end of input")
	}
	r, _ := utf8.DecodeRune(p.s[p.i:])
	return p.errorf("unexpected %q", r)
}

func (p *jsonParser) value(dst []byte, depth int) ([]byte, error) {
	if p.i >= len(p.s) {
		return dst, p.unexpected()
	}
	switch c := p.s[p.i]; {
	case c == '{':
		if depth >= MaxJSONDepth {
			return dst, fmt.Errorf("nested deeper than %d levels", MaxJSONDepth)
		}
		return p.object(dst, depth)
	case c == '[':
		if depth >= MaxJSONDepth {
			return dst, fmt.Errorf("nested deeper than %d levels", MaxJSONDepth)
		}
		p.i++
		dst = append(dst, '[')
		p.skipSpace()
		if p.i < len(p.s) && p.s[p.i] == ']' {
			p.i++
			return append(dst, ']'), nil
		}
		for n := 0; ; n++ {
			if n > 0 {
				dst = append(dst, ',')
			}
			p.skipSpace()
			var err error
			if dst, err = p.value(dst, depth+1); err != nil {
				return dst, within(err, "["+strconv.Itoa(n)+"]")
			}
			p.skipSpace()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
				continue
			}
			if p.i < len(p.s) && p.s[p.i] == ']' {
				p.i++
				return append(dst, ']'), nil
			}
			return dst, p.unexpected()
		}
	case c == '"':
		s, err := p.str()
		if err != nil {
			return dst, err
		}
		return appendJSONString(dst, s), nil
	case c == 't':
		return p.literal(dst, "true")
	case c == 'f':
		return p.literal(dst, "false")
	case c == 'n':
		return p.literal(dst, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.i
		if !p.number() {
			return dst, p.errorf("malformed number")
		}
		return appendCanonicalNumber(dst, p.s[start:p.i])
	}
	return dst, p.unexpected()
}

func (p *jsonParser) literal(dst []byte, lit string) ([]byte, error) {
	if !bytes.HasPrefix(p.s[p.i:], []byte(lit)) {
		return dst, p.unexpected()
	}
	p.i += len(lit)
	return append(dst, lit...), nil
}

// number advances over a JSON number (RFC 8259 §6) and reports whether it
// was well formed.
func (p *jsonParser) number() bool {
	s, i := p.s, p.i
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	p.i = i
	return true
}

// str reads a string at p.i and returns its decoded bytes. Without escapes
// the result aliases the input.
func (p *jsonParser) str() ([]byte, error) {
	p.i++ // opening quote
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == '"' {
			p.i++
			return p.s[start : p.i-1], nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return nil, p.errorf("control character in string")
		}
		p.i++
	}
	out := append([]byte(nil), p.s[start:p.i]...)
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return out, nil
		case c < 0x20:
			return nil, p.errorf("control character in string")
		case c != '\\':
			out = append(out, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.s) {
			break
		}
		e := p.s[p.i+1]
		p.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return nil, p.errorf("malformed \\u escape")
			}
			if r >= 0xD800 && r < 0xDC00 {
				if p.i+1 < len(p.s) && p.s[p.i] == '\\' && p.s[p.i+1] == 'u' {
					p.i += 2
					r2, ok := p.hex4()
					if !ok {
						return nil, p.errorf("malformed \\u escape")
					}
					if r2 < 0xDC00 || r2 > 0xDFFF {
						return nil, p.errorf("lone surrogate \\u%04x", r)
					}
					r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
				} else {
					return nil, p.errorf("lone surrogate \\u%04x", r)
				}
			} else if r >= 0xDC00 && r <= 0xDFFF {
				return nil, p.errorf("lone surrogate \\u%04x", r)
			} else if r == 0 {
				// PostgreSQL's jsonb refuses U+0000; refusing it here keeps
				// every store able to keep every valid event.
				return nil, p.errorf("NUL character (\\u0000) in string")
			}
			out = utf8.AppendRune(out, r)
		default:
			p.i--
			return nil, p.errorf("invalid escape \\%c", e)
		}
	}
	return nil, p.errorf("unterminated string")
}

func (p *jsonParser) hex4() (rune, bool) {
	if p.i+4 > len(p.s) {
		return 0, false
	}
	var r rune
	for _, c := range p.s[p.i : p.i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	p.i += 4
	return r, true
}

// member is one object member written to the output: the decoded name and
// where `"name":value` lies in dst.
type member struct {
	key    []byte
	lo, hi int
}

func (p *jsonParser) object(dst []byte, depth int) ([]byte, error) {
	p.i++ // {
	dst = append(dst, '{')
	base := len(dst)
	var stack [8]member
	members := stack[:0]
	sorted := true
	p.skipSpace()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return append(dst, '}'), nil
	}
	for {
		p.skipSpace()
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return dst, p.unexpected()
		}
		key, err := p.str()
		if err != nil {
			return dst, err
		}
		p.skipSpace()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return dst, p.unexpected()
		}
		p.i++
		p.skipSpace()
		if len(members) > 0 {
			dst = append(dst, ',')
			if c := compareUTF16(members[len(members)-1].key, key); c == 0 {
				return dst, duplicateKey(key)
			} else if c > 0 {
				sorted = false
			}
		}
		lo := len(dst)
		dst = appendJSONString(dst, key)
		dst = append(dst, ':')
		if dst, err = p.value(dst, depth+1); err != nil {
			return dst, within(err, pathStep(key))
		}
		members = append(members, member{key: key, lo: lo, hi: len(dst)})
		p.skipSpace()
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			continue
		}
		if p.i < len(p.s) && p.s[p.i] == '}' {
			p.i++
			break
		}
		return dst, p.unexpected()
	}
	if !sorted {
		slices.SortFunc(members, func(a, b member) int { return compareUTF16(a.key, b.key) })
		for i := 1; i < len(members); i++ {
			if compareUTF16(members[i-1].key, members[i].key) == 0 {
				return dst, duplicateKey(members[i].key)
			}
		}
		body := append([]byte(nil), dst[base:]...)
		dst = dst[:base]
		for i, m := range members {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, body[m.lo-base:m.hi-base]...)
		}
	}
	return append(dst, '}'), nil
}

// pathError is an error of the strict parser with where it happened: the
// member names and array indexes from the outermost value, as ".actor.id" or
// ".changes[0].new". Its message is the error's own; CheckEventJSON turns
// the path into the field it names.
type pathError struct {
	path      string
	err       error
	duplicate bool // a member name given twice; path ends with it
}

func (e *pathError) Error() string { return e.err.Error() }
func (e *pathError) Unwrap() error { return e.err }

// within prefixes the path of err with step, on the way out of the value
// step leads to. Only the error path pays for it.
func within(err error, step string) error {
	if pe, ok := err.(*pathError); ok {
		pe.path = step + pe.path
		return pe
	}
	return &pathError{path: step, err: err}
}

// pathStep is the step into the member key: ".key", or ["key"] quoted
// when the name could be misread in a path or holds unprintable characters.
func pathStep(key []byte) string {
	k := clip(string(key))
	if k == "" || strings.ContainsFunc(k, func(r rune) bool {
		return r == '.' || r == '[' || r == ']' || r == '"' || !unicode.IsPrint(r)
	}) {
		return "[" + strconv.Quote(k) + "]"
	}
	return "." + k
}

// duplicateKey is the error for a member name that appears twice in one
// object; its path ends with the name.
func duplicateKey(key []byte) error {
	return &pathError{path: pathStep(key), err: fmt.Errorf("duplicate key %q", clip(string(key))), duplicate: true}
}

// compareUTF16 orders strings by their UTF-16 code units, as RFC 8785 §3.2.3
// sorts member names. It differs from byte order only where a character
// above U+FFFF (a surrogate pair, 0xD800-0xDBFF first) meets one in
// U+E000-U+FFFF.
func compareUTF16[S ~string | ~[]byte](a, b S) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	if i == n {
		return cmpInt(len(a), len(b))
	}
	// Back up to the start of the differing character.
	for i > 0 && a[i]&0xC0 == 0x80 {
		i--
	}
	ra, _ := utf8.DecodeRuneInString(string(a[i:min(i+utf8.UTFMax, len(a))]))
	rb, _ := utf8.DecodeRuneInString(string(b[i:min(i+utf8.UTFMax, len(b))]))
	return cmpInt(int(utf16First(ra)), int(utf16First(rb)))
}

// utf16First returns the first UTF-16 code unit of r, with the low bits kept
// below it so that two supplementary characters still compare by code point.
func utf16First(r rune) rune {
	if r < 0x10000 {
		return r << 10
	}
	return (0xD800+((r-0x10000)>>10))<<10 | (r-0x10000)&0x3FF
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// appendJSONString appends s as a JSON string with only the escapes RFC 8785
// requires: quote, backslash and the controls below U+0020; \b \t \n \f \r in
// short form, the rest as \u00xx in lower-case hex. Everything else,
// including DEL, < > & and U+2028, is written as UTF-8. s must be valid UTF-8.
func appendJSONString[S ~string | ~[]byte](dst []byte, s S) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"':
			dst = append(dst, '\\', '"')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendCanonicalNumber appends the canonical form of the well-formed JSON
// number lit. See CanonicalJSON for the integer rule.
func appendCanonicalNumber[S ~string | ~[]byte](dst []byte, lit S) ([]byte, error) {
	// Fast path: a short integer is its own canonical form, except -0.
	isInt := true
	for i := 0; i < len(lit); i++ {
		if c := lit[i]; c == '.' || c == 'e' || c == 'E' {
			isInt = false
			break
		}
	}
	if isInt && len(lit) <= 15 {
		if len(lit) == 2 && lit[0] == '-' && lit[1] == '0' {
			return append(dst, '0'), nil
		}
		return append(dst, lit...), nil
	}
	if !isInt && plainCanonical(lit) {
		return append(dst, lit...), nil
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return dst, fmt.Errorf("number %s out of range", clip(string(lit)))
	}
	n := len(dst)
	dst = appendES6Number(dst, f)
	digits := len(lit)
	if lit[0] == '-' {
		digits--
	}
	if isInt && digits <= 21 && string(dst[n:]) != string(lit) {
		// The literal is neither exact nor already canonical: a double
		// cannot hold it, and rounding it would change an ID silently.
		// Longer literals (from 1e21 on, where ECMAScript prints exponents)
		// are nobody's IDs but doubles printed in full (PostgreSQL's jsonb
		// prints 1e+23 as 100000000000000000000000): they round.
		abs := lit[:]
		if abs[0] == '-' {
			abs = abs[1:]
		}
		if string(abs) != strconv.FormatFloat(math.Abs(f), 'f', 0, 64) {
			return dst[:n], fmt.Errorf("integer %s does not fit a double exactly; send it as a string", clip(string(lit)))
		}
	}
	return dst, nil
}

// plainCanonical reports whether the well-formed JSON number lit, which has
// a fraction or an exponent, is already canonical, without converting it: no
// exponent, no trailing zero in the fraction, at least 1e-6, and at most 15
// significant digits. Any decimal of at most 15 significant digits survives
// a round trip through a double (DBL_DIG), so no shorter digit string names
// the same double, and ECMAScript prints exactly these digits.
func plainCanonical[S ~string | ~[]byte](lit S) bool {
	i := 0
	if lit[0] == '-' {
		i++
	}
	if lit[len(lit)-1] == '0' {
		return false
	}
	sig, zeros, point := 0, 0, false
	for ; i < len(lit); i++ {
		switch c := lit[i]; {
		case c == '.':
			point = true
		case c == '0' && sig == 0:
			if point {
				zeros++
			}
		case c >= '0' && c <= '9':
			sig++
		default: // an exponent
			return false
		}
	}
	return point && sig > 0 && sig <= 15 && zeros <= 5
}

// appendES6Number appends f the way ECMAScript's Number.prototype.toString
// prints it (RFC 8785 §3.2.2.3): the shortest digits that read back as f,
// plain notation from 1e-6 up to 1e21, exponent notation with an explicit
// sign outside, and 0 for -0. f must be finite.
func appendES6Number(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0')
	}
	abs := math.Abs(f)
	if abs >= 1e-6 && abs < 1e21 {
		return strconv.AppendFloat(dst, f, 'f', -1, 64)
	}
	n := len(dst)
	dst = strconv.AppendFloat(dst, f, 'e', -1, 64)
	// Go writes at least two exponent digits: e-07 becomes e-7.
	if m := len(dst); m-n >= 4 && dst[m-4] == 'e' && dst[m-3] == '-' && dst[m-2] == '0' {
		dst[m-2] = dst[m-1]
		dst = dst[:m-1]
	}
	return dst
}

// canonicalValue is CanonicalJSON of a Go value, as encoding/json would
// marshal it.
func canonicalValue(v any) ([]byte, error) {
	return appendValue(make([]byte, 0, 256), v, 0, false)
}

// appendValue appends the canonical JSON of v. The types Normalize produces
// (map[string]any, []any, string, json.Number, bool, nil) and the common Go
// scalars are encoded directly; anything else goes through encoding/json. In
// strict mode only the normalized types are allowed and numbers must already
// be canonical: that is how Canonical tells a non-normalized event.
func appendValue(dst []byte, v any, depth int, strict bool) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		if x {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case string:
		if !utf8.ValidString(x) {
			return dst, errors.New("string is not valid UTF-8")
		}
		if strings.IndexByte(x, 0) >= 0 {
			return dst, errors.New("NUL character (\\u0000) in string")
		}
		return appendJSONString(dst, x), nil
	case json.Number:
		if !validNumber(string(x)) {
			return dst, fmt.Errorf("invalid number %q", clip(string(x)))
		}
		n := len(dst)
		dst, err := appendCanonicalNumber(dst, string(x))
		if err != nil {
			return dst, err
		}
		if strict && string(dst[n:]) != string(x) {
			return dst[:n], fmt.Errorf("number %s is not in canonical form (call Normalize)", clip(string(x)))
		}
		return dst, nil
	case map[string]any:
		if x == nil {
			return append(dst, "null"...), nil
		}
		if depth >= MaxJSONDepth {
			return dst, fmt.Errorf("nested deeper than %d levels", MaxJSONDepth)
		}
		var stack [16]string
		keys := stack[:0]
		for k := range x {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, compareUTF16[string])
		dst = append(dst, '{')
		for i, k := range keys {
			if strings.IndexByte(k, 0) >= 0 {
				return dst, errors.New("NUL character (\\u0000) in key")
			}
			if !utf8.ValidString(k) {
				return dst, fmt.Errorf("key %q is not valid UTF-8", clip(k))
			}
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			var err error
			if dst, err = appendValue(dst, x[k], depth+1, strict); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	case []any:
		if x == nil {
			return append(dst, "null"...), nil
		}
		if depth >= MaxJSONDepth {
			return dst, fmt.Errorf("nested deeper than %d levels", MaxJSONDepth)
		}
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendValue(dst, e, depth+1, strict); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	}
	if strict {
		return dst, fmt.Errorf("value of type %T is not normalized (call Normalize)", v)
	}
	switch x := v.(type) {
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return dst, fmt.Errorf("number %v out of range", x)
		}
		return appendES6Number(dst, x), nil
	case float32:
		// encoding/json prints a float32 with its own shortest digits.
		f := float64(x)
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return dst, fmt.Errorf("number %v out of range", x)
		}
		var buf [32]byte
		return appendCanonicalNumber(dst, strconv.AppendFloat(buf[:0], f, 'g', -1, 32))
	case int:
		return appendInt(dst, int64(x))
	case int64:
		return appendInt(dst, x)
	case int32:
		return appendInt(dst, int64(x))
	case uint64:
		var buf [24]byte
		return appendCanonicalNumber(dst, strconv.AppendUint(buf[:0], x, 10))
	case json.RawMessage:
		if x == nil {
			return append(dst, "null"...), nil
		}
		return appendCanonicalJSON(dst, x, depth)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return appendCanonicalJSON(dst, b, depth)
}

func appendInt(dst []byte, i int64) ([]byte, error) {
	var buf [24]byte
	return appendCanonicalNumber(dst, strconv.AppendInt(buf[:0], i, 10))
}

// validNumber reports whether s is a JSON number.
func validNumber(s string) bool {
	if s == "" {
		return false
	}
	p := jsonParser{s: []byte(s)}
	return p.number() && p.i == len(s)
}

// normalizeMetadata returns m in normalized form: a fresh map whose values
// are only map[string]any, []any, string, json.Number (canonical), bool and
// nil, exactly what DecodeMetadata(CanonicalJSON(m)) gives.
func normalizeMetadata(m map[string]any) (map[string]any, error) {
	v, err := normalizeValue(m, 0)
	if err != nil {
		return nil, err
	}
	out, _ := v.(map[string]any)
	return out, nil
}

func normalizeValue(v any, depth int) (any, error) {
	switch x := v.(type) {
	case nil, bool:
		return x, nil
	case string:
		if !utf8.ValidString(x) {
			return nil, errors.New("string is not valid UTF-8")
		}
		return x, nil
	case map[string]any:
		if x == nil {
			return nil, nil
		}
		if depth >= MaxJSONDepth {
			return nil, fmt.Errorf("nested deeper than %d levels", MaxJSONDepth)
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			if !utf8.ValidString(k) {
				return nil, fmt.Errorf("key %q is not valid UTF-8", clip(k))
			}
			n, err := normalizeValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case []any:
		if x == nil {
			return nil, nil
		}
		if depth >= MaxJSONDepth {
			return nil, fmt.Errorf("nested deeper than %d levels", MaxJSONDepth)
		}
		out := make([]any, len(x))
		for i, e := range x {
			n, err := normalizeValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case json.Number, float64, float32, int, int64, int32, uint64:
		b, err := appendValue(nil, x, depth, false)
		if err != nil {
			return nil, err
		}
		return json.Number(b), nil
	}
	b, err := appendValue(nil, v, depth, false)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var out any
	if err := d.Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}

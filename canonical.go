package trail

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Canonical returns the canonical encoding of ev: the bytes that integrity
// proofs hash into Merkle leaves and that a third party can rebuild from the
// event's JSON export without Trail's code. It is the RFC 8785 (JCS) form of
// the event's JSON object with empty members left out and times written as
// UTC with exactly six fractional digits; docs/canonical-encoding.md is the
// specification and testdata/canonical holds vectors.
//
// ev must be normalized (Normalize) and valid (Validate, except the clock
// check, so that the answer does not depend on when it is asked). Otherwise
// Canonical returns an error matching ErrInvalid rather than bytes that differ
// from what the normalized event would give. Strings are encoded as they are:
// a field the privacy layer stores as ciphertext is encoded as that ciphertext.
func (ev *Event) Canonical() ([]byte, error) {
	return ev.AppendCanonical(make([]byte, 0, ev.canonicalSizeHint()))
}

// AppendCanonical appends the canonical encoding of ev to dst, for callers
// that reuse a buffer. On error dst is returned unchanged.
func (ev *Event) AppendCanonical(dst []byte) ([]byte, error) {
	if err := ev.validate(time.Time{}, true); err != nil {
		return dst, err
	}
	out, metaLen, err := ev.appendCanonical(dst, false)
	if err != nil {
		return dst, err
	}
	// The size rule of Validate, with the metadata length measured here.
	if n := ev.approxSize(metaLen); n > MaxEventBytes {
		return dst, invalid("event", "%d bytes, at most %d", n, MaxEventBytes)
	}
	return out, nil
}

// ParseCanonical decodes the canonical encoding of an event. It accepts only
// canonical bytes: Canonical of the result is exactly b, so
// ParseCanonical(Canonical(ev)) gives back ev. Every error matches
// ErrInvalid.
func ParseCanonical(b []byte) (Event, error) {
	var ev Event
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	d.DisallowUnknownFields()
	if err := d.Decode(&ev); err != nil {
		return Event{}, fmt.Errorf("trail: not a canonical event: %w", &ValidationError{Field: "event", Reason: err.Error()})
	}
	c, err := ev.Canonical()
	if err != nil {
		return Event{}, fmt.Errorf("trail: not a canonical event: %w", err)
	}
	if !bytes.Equal(c, b) {
		return Event{}, errNotCanonical
	}
	return ev, nil
}

var errNotCanonical = &ValidationError{Field: "event", Reason: "bytes are not in canonical form"}

func notNormalized(field, what string) error {
	return &ValidationError{Field: field, Reason: what + " (call Normalize)"}
}

// appendCanonical writes the members in RFC 8785 order, which for these
// ASCII names is byte order. Unless stored is set, ev has passed
// validate(_, true); with stored set (AppendCanonicalStored) it has not, and
// the encoder checks what it needs to stay injective itself: impersonation
// depth, and that change values are single canonical JSON values. It returns
// the length of the encoded metadata too.
func (ev *Event) appendCanonical(b []byte, stored bool) (_ []byte, metaLen int, err error) {
	b = append(b, `{"action":`...)
	b = appendStr(b, ev.Action)
	b = append(b, `,"actor":`...)
	if stored && ev.Actor.OnBehalfOf != nil && ev.Actor.OnBehalfOf.OnBehalfOf != nil {
		return b, 0, invalid("actor.on_behalf_of.on_behalf_of", "impersonation nests one level only")
	}
	b = appendActor(b, &ev.Actor)
	if len(ev.Changes) > 0 {
		b = append(b, `,"changes":[`...)
		for i := range ev.Changes {
			c := &ev.Changes[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"field":`...)
			b = appendStr(b, c.Field)
			if c.New != nil {
				b = append(b, `,"new":`...)
				if b, err = appendRawValue(b, c.New, i, ".new", stored); err != nil {
					return b, 0, err
				}
			}
			if c.Old != nil {
				b = append(b, `,"old":`...)
				if b, err = appendRawValue(b, c.Old, i, ".old", stored); err != nil {
					return b, 0, err
				}
			}
			if c.Redacted {
				b = append(b, `,"redacted":true`...)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if ev.Description != "" {
		b = append(b, `,"description":`...)
		b = appendStr(b, ev.Description)
	}
	b = append(b, `,"id":"`...)
	b = appendUUID(b, ev.ID)
	b = append(b, '"')
	if len(ev.Metadata) > 0 {
		b = append(b, `,"metadata":`...)
		n := len(b)
		// appendMetadataStored is appendValue(b, m, 0, true) with fast
		// paths, the same bytes and errors (FuzzCanonicalStored checks
		// it): both encoders take it.
		b, err = appendMetadataStored(b, ev.Metadata)
		if err != nil {
			return b, 0, &ValidationError{Field: "metadata", Reason: err.Error()}
		}
		metaLen = len(b) - n
	}
	b = append(b, `,"occurred_at":`...)
	if stored {
		b, err = appendTimeStored(b, ev.OccurredAt, "occurred_at")
	} else {
		b, err = appendCanonicalTime(b, ev.OccurredAt, "occurred_at")
	}
	if err != nil {
		return b, 0, err
	}
	b = append(b, `,"outcome":`...)
	b = appendStr(b, string(ev.Outcome))
	if !ev.RecordedAt.IsZero() {
		b = append(b, `,"recorded_at":`...)
		if stored {
			b, err = appendTimeStored(b, ev.RecordedAt, "recorded_at")
		} else {
			b, err = appendCanonicalTime(b, ev.RecordedAt, "recorded_at")
		}
		if err != nil {
			return b, 0, err
		}
	}
	if ev.RequestID != "" {
		b = append(b, `,"request_id":`...)
		b = appendStr(b, ev.RequestID)
	}
	b = append(b, `,"schema_version":`...)
	b = appendUint(b, uint64(ev.SchemaVersion))
	if ev.Source != "" {
		b = append(b, `,"source":`...)
		b = appendStr(b, ev.Source)
	}
	if ev.SpanID != "" {
		b = append(b, `,"span_id":`...)
		b = appendStr(b, ev.SpanID)
	}
	if t := &ev.Target; !t.IsZero() {
		b = append(b, `,"target":{"id":`...)
		b = appendStr(b, t.ID)
		if t.Name != "" {
			b = append(b, `,"name":`...)
			b = appendStr(b, t.Name)
		}
		b = append(b, `,"type":`...)
		b = appendStr(b, t.Type)
		b = append(b, '}')
	}
	if ev.Tenant != "" {
		b = append(b, `,"tenant":`...)
		b = appendStr(b, ev.Tenant)
	}
	if ev.TraceID != "" {
		b = append(b, `,"trace_id":`...)
		b = appendStr(b, ev.TraceID)
	}
	return append(b, '}'), metaLen, nil
}

func appendActor(b []byte, a *Actor) []byte {
	b = append(b, '{')
	if a.Email != "" {
		b = append(b, `"email":`...)
		b = appendStr(b, a.Email)
		b = append(b, ',')
	}
	if a.ID != "" {
		b = append(b, `"id":`...)
		b = appendStr(b, a.ID)
		b = append(b, ',')
	}
	if a.IP != "" {
		b = append(b, `"ip":`...)
		b = appendStr(b, a.IP)
		b = append(b, ',')
	}
	if a.Name != "" {
		b = append(b, `"name":`...)
		b = appendStr(b, a.Name)
		b = append(b, ',')
	}
	if a.OnBehalfOf != nil {
		b = append(b, `"on_behalf_of":`...)
		b = appendActor(b, a.OnBehalfOf)
		b = append(b, ',')
	}
	b = append(b, `"type":`...)
	b = appendStr(b, string(a.Type))
	if a.UserAgent != "" {
		b = append(b, `,"user_agent":`...)
		b = appendStr(b, a.UserAgent)
	}
	return append(b, '}')
}

// appendRawCanonical appends a change value, which must already be in
// canonical form.
func appendRawCanonical(b, raw []byte, i int, name string) ([]byte, error) {
	n := len(b)
	b, err := appendCanonicalJSON(b, raw, 0)
	if err != nil {
		return b[:n], &ValidationError{Field: fmt.Sprintf("changes[%d]%s", i, name), Reason: err.Error()}
	}
	if !bytes.Equal(b[n:], raw) {
		return b[:n], notNormalized(fmt.Sprintf("changes[%d]%s", i, name), "JSON value is not in canonical form")
	}
	return b, nil
}

// appendCanonicalTime writes t as "YYYY-MM-DDThh:mm:ss.ffffffZ" in UTC.
// Any location is accepted (the instant is what counts, and PostgreSQL
// drivers hand back local times), but not sub-microsecond precision, which
// Normalize removes and stores do not keep.
func appendCanonicalTime(b []byte, t time.Time, field string) ([]byte, error) {
	t = t.UTC()
	if t.Nanosecond()%1000 != 0 {
		return b, notNormalized(field, "has sub-microsecond precision")
	}
	y, mo, d := t.Date()
	if y < 1970 || y > 9999 {
		return b, &ValidationError{Field: field, Reason: fmt.Sprintf("year %d out of range 1970-9999", y)}
	}
	h, mi, s := t.Clock()
	us := uint(t.Nanosecond() / 1000)
	b = append(b, '"')
	b = append2(b, uint(y)/100)
	b = append2(b, uint(y)%100)
	b = append(b, '-')
	b = append2(b, uint(mo))
	b = append(b, '-')
	b = append2(b, uint(d))
	b = append(b, 'T')
	b = append2(b, uint(h))
	b = append(b, ':')
	b = append2(b, uint(mi))
	b = append(b, ':')
	b = append2(b, uint(s))
	b = append(b, '.')
	b = append2(b, us/10000)
	b = append2(b, us/100%100)
	b = append2(b, us%100)
	return append(b, 'Z', '"'), nil
}

const twoDigits = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"

// append2 appends v (0-99) as two digits: the time encoder runs for every
// event sealed or verified.
func append2(b []byte, v uint) []byte {
	return append(b, twoDigits[2*v], twoDigits[2*v+1])
}

func appendUint(b []byte, v uint64) []byte {
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(b, buf[i:]...)
}

// appendUUID writes id in its lower-case 8-4-4-4-12 form, as uuid.String.
func appendUUID(b []byte, id [16]byte) []byte {
	const hex = "0123456789abcdef"
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hex[c>>4], hex[c&0xf])
	}
	return b
}

// canonicalSizeHint estimates the encoded size so that Canonical usually
// allocates once.
func (ev *Event) canonicalSizeHint() int {
	n := 192 + len(ev.Tenant) + len(ev.Action) + len(ev.Description) + len(ev.RequestID) +
		len(ev.TraceID) + len(ev.Source) + len(ev.Target.Type) + len(ev.Target.ID) + len(ev.Target.Name)
	// Two levels at most: Validate has not run yet, and OnBehalfOf may be cyclic.
	for a, i := &ev.Actor, 0; a != nil && i < 2; a, i = a.OnBehalfOf, i+1 {
		n += 96 + len(a.ID) + len(a.Name) + len(a.Email) + len(a.IP) + len(a.UserAgent)
	}
	for i := range ev.Changes {
		n += 40 + len(ev.Changes[i].Field) + len(ev.Changes[i].Old) + len(ev.Changes[i].New)
	}
	n += 64 * len(ev.Metadata)
	return n
}

// Hand-written equivalents of the patterns in validate.go (tenantRE,
// actionRE, targetTypeRE). Validate runs on every Record and every Canonical,
// and regexp costs more there than the whole encoding; the tests check that
// each matcher agrees with its pattern.

func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// matchTenant is tenantRE: ^[A-Za-z0-9][A-Za-z0-9._:-]*$
func matchTenant(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isLower(c) || isDigit(c) || (c >= 'A' && c <= 'Z') {
			continue
		}
		if i > 0 && (c == '.' || c == '_' || c == ':' || c == '-') {
			continue
		}
		return false
	}
	return true
}

// matchAction is actionRE: ^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+$ when
// minSegments is 2, and actionPrefixRE (one segment or more) when it is 1.
func matchAction(s string, minSegments int) bool {
	segments := 0
	for i := 0; i < len(s); {
		if !isLower(s[i]) {
			return false
		}
		i++
		for i < len(s) && (isLower(s[i]) || isDigit(s[i]) || s[i] == '_' || s[i] == '-') {
			i++
		}
		segments++
		if i == len(s) {
			break
		}
		if s[i] != '.' || i+1 == len(s) {
			return false
		}
		i++
	}
	return segments >= minSegments
}

// matchTargetType is targetTypeRE: ^[a-z][a-z0-9_.-]*$
func matchTargetType(s string) bool {
	if s == "" || !isLower(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLower(c) && !isDigit(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

package trail

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on an event. They keep one event small enough to index, export and
// hash quickly, and they are the same on every store and over the API.
const (
	MaxEventBytes       = 64 << 10 // whole event, its JSON form
	MaxTenantLen        = 128
	MaxActionLen        = 128
	MaxIDLen            = 256 // actor, target, request and trace IDs
	MaxNameLen          = 256 // actor and target names, e-mail, source
	MaxUserAgentLen     = 512
	MaxDescriptionLen   = 4096 // bytes
	MaxChanges          = 512
	MaxFieldLen         = 256
	MaxMetadataKeys     = 64 // top-level keys
	MaxJSONDepth        = 16
	MaxFutureSkew       = 5 * time.Minute // how far OccurredAt may lie ahead of the clock
	maxTargetTypeLen    = 64
	maxActorTypeNameLen = 16
)

var (
	// Tenant IDs: letters, digits and . _ : - ; starting with a letter or digit.
	tenantRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)
	// Actions: two or more lower-case dotted segments, e.g. "user.delete",
	// "billing.invoice.pay". Segments start with a letter.
	actionRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+$`)
	// Action prefixes in queries: "subscription" of "subscription.*".
	actionPrefixRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$`)
	// Target types: a lower-case word, dots allowed for schema-qualified tables.
	targetTypeRE = regexp.MustCompile(`^[a-z][a-z0-9_.-]*$`)
)

// ErrInvalid is matched by every *ValidationError, for callers that only need
// to know the input was bad: errors.Is(err, trail.ErrInvalid).
var ErrInvalid = errors.New("invalid event")

// ValidationError names the field of an event that is wrong and why. Field
// uses the JSON names: "actor.id", "changes[2].field", "metadata".
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// ValidTenant reports whether s is an acceptable tenant ID ("" is not).
func ValidTenant(s string) bool {
	return len(s) <= MaxTenantLen && matchTenant(s)
}

// ValidAction reports whether s is an acceptable action name.
func ValidAction(s string) bool {
	return len(s) <= MaxActionLen && matchAction(s, 2)
}

// Validate checks ev against the model's rules and limits. It does not fill
// defaults; call Normalize first (Record does both). The error is a
// *ValidationError naming the first bad field.
//
// Among the rules: actor.ip is an IPv4 or IPv6 address as netip.ParseAddr
// reads it (no port; an IPv6 zone such as %eth0 may name an interface, as
// net/http reports link-local peers), and the actors' names and
// e-mail addresses, their user agents (but for tabs) and the target's name
// hold no control characters. Normalize checks these on the plaintext, before
// a privacy Transform encrypts the fields.
func (ev *Event) Validate() error { return ev.validate(time.Now(), false) }

// validate is Validate against the clock now; a zero now skips the only
// clock-dependent rule (OccurredAt not in the future), so that Canonical gives
// the same answer for the same event at any time. With canonical set, the
// JSON of Changes and Metadata and the event size are left to the caller:
// Canonical checks them, more strictly, while it encodes.
func (ev *Event) validate(now time.Time, canonical bool) error {
	if ev.ID == [16]byte{} {
		return invalid("id", "required")
	}
	if ev.OccurredAt.IsZero() {
		return invalid("occurred_at", "required")
	}
	if y := ev.OccurredAt.UTC().Year(); y < 1970 || y > 9999 {
		return invalid("occurred_at", "year %d out of range 1970-9999", y)
	}
	if y := ev.RecordedAt.UTC().Year(); !ev.RecordedAt.IsZero() && (y < 1970 || y > 9999) {
		return invalid("recorded_at", "year %d out of range 1970-9999", y)
	}
	if lim := now.Add(MaxFutureSkew); !now.IsZero() && ev.OccurredAt.After(lim) {
		return invalid("occurred_at", "%s is in the future", ev.OccurredAt.Format(time.RFC3339))
	}
	if ev.Tenant != "" && !ValidTenant(ev.Tenant) {
		return invalid("tenant", "must be 1-%d letters, digits or . _ : - starting with a letter or digit", MaxTenantLen)
	}
	if err := validateActor("actor", &ev.Actor, true); err != nil {
		return err
	}
	if ev.Action == "" {
		return invalid("action", "required")
	}
	if !ValidAction(ev.Action) {
		return invalid("action", "%q must be dotted lower-case resource.verb, e.g. user.delete (at most %d bytes)", clip(ev.Action), MaxActionLen)
	}
	if err := validateTarget(&ev.Target); err != nil {
		return err
	}
	// Rules added after events were stored without them: Canonical (which
	// seals and archives stored events) keeps accepting those.
	if !canonical {
		if err := checkPersonal(ev); err != nil {
			return err
		}
	}
	if !ev.Outcome.Valid() {
		return invalid("outcome", "%q must be success, failure or denied", clip(string(ev.Outcome)))
	}
	if err := checkText("description", ev.Description, MaxDescriptionLen); err != nil {
		return err
	}
	if len(ev.Changes) > MaxChanges {
		return invalid("changes", "%d changes, at most %d", len(ev.Changes), MaxChanges)
	}
	// Field names of errors are built only on failure: this runs for every
	// event the sealer seals, where an allocation per field shows.
	var seen map[string]struct{}
	if len(ev.Changes) > smallChanges {
		seen = make(map[string]struct{}, len(ev.Changes))
	}
	for i := range ev.Changes {
		c := &ev.Changes[i]
		if c.Field == "" {
			return invalid(changeField(i, ".field"), "required")
		}
		if err := checkText("", c.Field, MaxFieldLen); err != nil {
			return renamed(err, changeField(i, ".field"))
		}
		if seen != nil {
			if _, dup := seen[c.Field]; dup {
				return invalid(changeField(i, ".field"), "%q appears twice", clip(c.Field))
			}
			seen[c.Field] = struct{}{}
		} else {
			for j := range i {
				if ev.Changes[j].Field == c.Field {
					return invalid(changeField(i, ".field"), "%q appears twice", clip(c.Field))
				}
			}
		}
		if c.Redacted && (c.Old != nil || c.New != nil) {
			return invalid(changeField(i, ""), "a redacted change carries no old or new value")
		}
		if c.Protect != "" {
			return invalid(changeField(i, ".protect"), "%q: no privacy transform protected this change (configure trailprivacy as Config.Transform, or send it to a server that does)", clip(c.Protect))
		}
		if canonical {
			continue
		}
		if c.Old != nil {
			if _, err := canonicalJSON(c.Old); err != nil {
				return invalid(changeField(i, ".old"), "%v", err)
			}
		}
		if c.New != nil {
			if _, err := canonicalJSON(c.New); err != nil {
				return invalid(changeField(i, ".new"), "%v", err)
			}
		}
	}
	if len(ev.Metadata) > MaxMetadataKeys {
		return invalid("metadata", "%d keys, at most %d", len(ev.Metadata), MaxMetadataKeys)
	}
	metaLen := 0
	if ev.Metadata != nil && !canonical {
		b, err := canonicalValue(ev.Metadata)
		if err != nil {
			return invalid("metadata", "%v", err)
		}
		metaLen = len(b)
	}
	for _, s := range []struct {
		name, v string
		max     int
	}{{"request_id", ev.RequestID, MaxIDLen}, {"trace_id", ev.TraceID, MaxIDLen}, {"span_id", ev.SpanID, MaxIDLen}, {"source", ev.Source, MaxNameLen}} {
		if err := checkText(s.name, s.v, s.max); err != nil {
			return err
		}
		if hasControl(s.v) {
			return invalid(s.name, "contains control characters")
		}
	}
	if ev.SchemaVersion < 1 || ev.SchemaVersion > SchemaVersion {
		return invalid("schema_version", "%d is not supported (this build writes %d)", ev.SchemaVersion, SchemaVersion)
	}
	if ev.SpanID != "" && ev.SchemaVersion < 2 {
		return invalid("span_id", "needs schema_version 2 (version %d has no span_id)", ev.SchemaVersion)
	}
	if n := ev.approxSize(metaLen); !canonical && n > MaxEventBytes {
		return invalid("event", "%d bytes, at most %d", n, MaxEventBytes)
	}
	return nil
}

func validateActor(field string, a *Actor, top bool) error {
	if a.Type == "" {
		return invalid(field+".type", "required (user, service, system or anonymous)")
	}
	if len(a.Type) > maxActorTypeNameLen || !a.Type.Valid() {
		return invalid(field+".type", "%q must be user, service, system or anonymous", clip(string(a.Type)))
	}
	if a.ID == "" && (a.Type == ActorUser || a.Type == ActorService) {
		return invalid(field+".id", "required for a %s actor", a.Type)
	}
	for _, s := range [...]struct {
		name, v string
		max     int
	}{{".id", a.ID, MaxIDLen}, {".name", a.Name, storedLimit(a.Name, MaxNameLen)}, {".email", a.Email, storedLimit(a.Email, MaxNameLen)},
		{".ip", a.IP, storedLimit(a.IP, 64)}, {".user_agent", a.UserAgent, storedLimit(a.UserAgent, MaxUserAgentLen)}} {
		if err := checkText("", s.v, s.max); err != nil {
			return renamed(err, field+s.name)
		}
	}
	if hasControl(a.ID) {
		return invalid(field+".id", "contains control characters")
	}
	if a.OnBehalfOf != nil {
		if !top {
			return invalid(field+".on_behalf_of", "impersonation nests one level only")
		}
		return validateActor(field+".on_behalf_of", a.OnBehalfOf, false)
	}
	return nil
}

// checkPersonal checks the personal fields as plaintext: actor.ip (and the
// on_behalf_of actor's) must be an IPv4 or IPv6 address (an IPv6 zone, if
// any, an interface name or index), and
// names, e-mail addresses and user agents hold no control characters (a user
// agent may hold a tab, as an HTTP header may). Normalize runs it before a
// privacy Transform encrypts these fields, and Validate after, where an IP in
// the encrypted form (enc:v1:…) passes: its plaintext was checked before.
func checkPersonal(ev *Event) error {
	if err := checkActorPersonal("actor", &ev.Actor); err != nil {
		return err
	}
	if a := ev.Actor.OnBehalfOf; a != nil {
		if err := checkActorPersonal("actor.on_behalf_of", a); err != nil {
			return err
		}
	}
	if hasControl(ev.Target.Name) {
		return invalid("target.name", "contains control characters")
	}
	return nil
}

func checkActorPersonal(field string, a *Actor) error {
	if a.IP != "" && !encryptedForm(a.IP) {
		addr, err := netip.ParseAddr(a.IP)
		if err != nil {
			return invalid(field+".ip", "%q is not an IPv4 or IPv6 address", clip(a.IP))
		}
		// An IPv6 zone (fe80::1%eth0) is kept: net/http reports a link-local
		// peer with one, and trailhttp and the server record it so. It names
		// an interface or its index, nothing else.
		if z := addr.Zone(); z != "" && !zoneName(z) {
			return invalid(field+".ip", "%q: the zone after %% must be an interface name or index (letters, digits, . _ -)", clip(a.IP))
		}
	}
	for _, s := range []struct{ name, v string }{{".name", a.Name}, {".email", a.Email}} {
		if hasControl(s.v) {
			return invalid(field+s.name, "contains control characters")
		}
	}
	if strings.ContainsFunc(a.UserAgent, func(r rune) bool { return r != '\t' && isControl(r) }) {
		return invalid(field+".user_agent", "contains control characters other than tab")
	}
	return nil
}

// stripPort returns the address of an "address:port" string, and s
// unchanged otherwise.
func stripPort(s string) string {
	if s == "" || encryptedForm(s) {
		return s
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return s
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().String()
	}
	return s
}

// encryptedForm reports whether s has the shape of the privacy layer's
// encrypted form, enc:v1:<key-id>:<base64url>, with a key ID of 1-64
// base64url characters and a body long enough for a nonce and a tag. Only
// trailprivacy can tell whether it decrypts; a value of any other shape is
// plaintext.
func encryptedForm(s string) bool {
	body, ok := strings.CutPrefix(s, encryptedPrefix)
	if !ok {
		return false
	}
	kid, data, ok := strings.Cut(body, ":")
	return ok && len(kid) >= 1 && len(kid) <= 64 && base64URL(kid) && len(data) >= 38 && base64URL(data) // 38: base64url of 12+16 bytes
}

func zoneName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func base64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func validateTarget(t *Target) error {
	if t.IsZero() {
		return nil
	}
	if t.Type == "" {
		return invalid("target.type", "required when a target is given")
	}
	if len(t.Type) > maxTargetTypeLen || !matchTargetType(t.Type) {
		return invalid("target.type", "%q must be a lower-case word (letters, digits, _ . -), at most %d bytes", clip(t.Type), maxTargetTypeLen)
	}
	if t.ID == "" {
		return invalid("target.id", "required when a target is given")
	}
	if err := checkText("target.id", t.ID, MaxIDLen); err != nil {
		return err
	}
	if hasControl(t.ID) {
		return invalid("target.id", "contains control characters")
	}
	return checkText("target.name", t.Name, storedLimit(t.Name, MaxNameLen))
}

func checkText(field, s string, max int) error {
	if len(s) > max {
		return invalid(field, "%d bytes, at most %d", len(s), max)
	}
	if plainASCII(s) { // the usual text: one pass instead of two
		return nil
	}
	if !utf8.ValidString(s) {
		return invalid(field, "not valid UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return invalid(field, "contains a NUL byte")
	}
	return nil
}

// plainASCII reports whether s is ASCII with no NUL byte (so valid UTF-8
// that checkText accepts), looking at eight bytes at a time.
func plainASCII(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := word8(s, i)
		// A byte with its high bit set, or a zero byte (w-lo borrows
		// through it and sets its high bit where w has none).
		if (w|(w-lo8)&^w)&hi8 != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c == 0 || c >= 0x80 {
			return false
		}
	}
	return true
}

// smallChanges is how many changes validate checks for duplicate fields
// pairwise, without a map.
const smallChanges = 16

// changeField names changes[i] and a member of it in an error.
func changeField(i int, member string) string {
	return "changes[" + strconv.Itoa(i) + "]" + member
}

// renamed gives a checkText error, which was asked with no field name so
// that the name is built only on failure, its field.
func renamed(err error, field string) error {
	if ve, ok := err.(*ValidationError); ok {
		c := *ve
		c.Field = field
		return &c
	}
	return err
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// hasControl reports whether s holds a control character (isControl). A byte
// scan is enough: in UTF-8 these code points are single bytes, and no byte
// of a multi-byte sequence is below 0x80.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}

// clip shortens a bad value for an error message, so that a 1 MB action name
// does not become a 1 MB error.
func clip(s string) string {
	if len(s) <= 64 {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ToValidUTF8(s[:64], "\uFFFD") + "…"
}

// approxSize is an upper bound close to the event's JSON size, cheap enough to
// run on every Record. metaLen is the length of the canonical metadata.
func (ev *Event) approxSize(metaLen int) int {
	n := 300 + len(ev.Tenant) + len(ev.Action) + len(ev.Description) + len(ev.RequestID) + len(ev.TraceID) + len(ev.SpanID) + len(ev.Source)
	n += actorSize(&ev.Actor) + len(ev.Target.Type) + len(ev.Target.ID) + len(ev.Target.Name)
	for i := range ev.Changes {
		n += 32 + len(ev.Changes[i].Field) + len(ev.Changes[i].Old) + len(ev.Changes[i].New)
	}
	return n + metaLen
}

func actorSize(a *Actor) int {
	n := 80 + len(a.Type) + len(a.ID) + len(a.Name) + len(a.Email) + len(a.IP) + len(a.UserAgent)
	if a.OnBehalfOf != nil {
		n += actorSize(a.OnBehalfOf)
	}
	return n
}

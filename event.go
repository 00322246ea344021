package trail

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// SchemaVersion is the newest version of the event model this package
// writes. Stores keep each event's version so that later versions can still
// read old rows and verifiers can pick the right canonical encoding.
//
// Version 2 adds span_id. An event is written with the oldest version that
// holds it: 1 when it has no span ID, so that its canonical bytes are those
// every version-1 verifier already checks; 2 when it has one.
const SchemaVersion = 2

// Event is one audit record: who did what, to which object, in which tenant.
//
// Only Action and Actor are required; Record fills ID, OccurredAt, Outcome,
// SchemaVersion and the context values (tenant, actor, request) when they are
// left empty. An event with an empty Tenant is a platform event, visible only to
// readers allowed to see all tenants.
type Event struct {
	// ID identifies the event. It is a UUIDv7 when Trail assigns it; a caller
	// may set its own, and a second event with the same ID is a duplicate that
	// stores nothing new (the ID is the idempotency key). The zero value (the
	// nil UUID) means "assign one"; its JSON form leaves the member out, since
	// an explicit nil UUID in JSON is refused (see CheckEventJSON).
	ID uuid.UUID `json:"id,omitzero"`
	// OccurredAt is when the action happened, as claimed by the writer. The
	// zero value means "now"; as for ID, its JSON form leaves the member out,
	// and an explicit zero time in JSON is refused.
	OccurredAt time.Time `json:"occurred_at,omitzero"`
	// RecordedAt is when Trail accepted the event. Trail sets it; retention is
	// measured on it, never on OccurredAt, so a writer cannot backdate events
	// into early deletion.
	RecordedAt time.Time `json:"recorded_at,omitzero"`
	// Tenant scopes the event; empty means a platform event.
	Tenant string `json:"tenant,omitempty"`
	// Actor is who performed the action.
	Actor Actor `json:"actor"`
	// Action is a dotted resource.verb, e.g. "user.delete", "subscription.update".
	Action string `json:"action"`
	// Target is the object acted upon, if any.
	Target Target `json:"target,omitzero"`
	// Outcome says whether the action succeeded; the zero value reads as success.
	Outcome Outcome `json:"outcome"`
	// Description is a human sentence, e.g. "Changed subscription plan to pro".
	Description string `json:"description,omitempty"`
	// Changes are the field-level differences the action made, in field order.
	Changes []Change `json:"changes,omitempty"`
	// Metadata is free-form context as a JSON object.
	Metadata map[string]any `json:"metadata,omitempty"`
	// RequestID and TraceID tie the event to the request and trace that caused it.
	RequestID string `json:"request_id,omitempty"`
	TraceID   string `json:"trace_id,omitempty"`
	// SpanID is the W3C span ID (16 hex digits) of the span that recorded
	// the event, within TraceID's trace, from an active span in the context
	// (Config.Trace, e.g. trailotel.Trace). Schema version 2.
	SpanID string `json:"span_id,omitempty"`
	// Source names the writer: a service name, "trigger", "cli", "api".
	Source string `json:"source,omitempty"`
	// SchemaVersion is the event model version; 0 means the current one.
	SchemaVersion int `json:"schema_version"`
	// Lookup holds the pseudonyms of the encrypted actor name and e-mail
	// that the privacy layer computed, for exact search (see Lookup). Stores
	// write it and never read it back; it is not in the JSON or sealed form.
	Lookup Lookup `json:"-"`
}

// ActorType says what kind of principal an Actor is.
type ActorType string

// Actor types.
const (
	ActorUser      ActorType = "user"      // a person signed in to the service
	ActorService   ActorType = "service"   // another program, with its own credentials
	ActorSystem    ActorType = "system"    // the service itself: cron jobs, admin commands, migrations
	ActorAnonymous ActorType = "anonymous" // nobody signed in
)

// Valid reports whether t is one of the known actor types.
func (t ActorType) Valid() bool {
	switch t {
	case ActorUser, ActorService, ActorSystem, ActorAnonymous:
		return true
	}
	return false
}

// Actor is who performed an action. Name, Email, IP and UserAgent are personal
// data: the privacy layer encrypts them so that a person can be forgotten.
type Actor struct {
	Type      ActorType `json:"type"`
	ID        string    `json:"id,omitempty"`
	Name      string    `json:"name,omitempty"`
	Email     string    `json:"email,omitempty"`
	IP        string    `json:"ip,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
	// OnBehalfOf is set when Actor impersonates someone: a support agent
	// acting as a customer is Actor, the customer is OnBehalfOf.
	OnBehalfOf *Actor `json:"on_behalf_of,omitempty"`
}

// IsZero reports whether no field of a is set.
func (a Actor) IsZero() bool {
	return a.Type == "" && a.ID == "" && a.Name == "" && a.Email == "" && a.IP == "" &&
		a.UserAgent == "" && a.OnBehalfOf == nil
}

// String returns "type:id", the form the CLI and API filters use.
func (a Actor) String() string {
	if a.ID == "" {
		return string(a.Type)
	}
	return string(a.Type) + ":" + a.ID
}

// Target is the object an action was done to.
type Target struct {
	Type string `json:"type,omitempty"`
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// IsZero reports whether no field of t is set.
func (t Target) IsZero() bool { return t.Type == "" && t.ID == "" && t.Name == "" }

// String returns "type:id".
func (t Target) String() string {
	if t.IsZero() {
		return ""
	}
	return t.Type + ":" + t.ID
}

// Outcome is the result of the action.
type Outcome string

// Outcomes.
const (
	OutcomeSuccess Outcome = "success"
	OutcomeFailure Outcome = "failure" // attempted and failed
	OutcomeDenied  Outcome = "denied"  // refused by authorization
)

// Valid reports whether o is one of the known outcomes.
func (o Outcome) Valid() bool {
	switch o {
	case OutcomeSuccess, OutcomeFailure, OutcomeDenied:
		return true
	}
	return false
}

// Change is one field's difference. Old and New hold JSON values so that types
// survive storage and export: a nil Old means the field did not exist before
// (JSON null is a value), a nil New means it was removed.
type Change struct {
	// Field is a dotted path, e.g. "plan" or "address.city".
	Field string          `json:"field"`
	Old   json.RawMessage `json:"old,omitempty"`
	New   json.RawMessage `json:"new,omitempty"`
	// Redacted is true when the field changed but its values were withheld by
	// policy; Old and New are then empty.
	Redacted bool `json:"redacted,omitempty"`
	// Protect asks the privacy layer to protect the values: "hmac" (keyed
	// hash) or "pii" (encrypted, erasable). Diff sets it for fields tagged
	// `trail:"hmac"` or `trail:"pii"`; the Transformer applies it and clears
	// it. Validate rejects a change that still carries it, so a value meant
	// to be protected is never stored in plaintext. Never stored.
	Protect string `json:"protect,omitempty"`
}

// Protect values of Change.Protect.
const (
	ProtectHMAC = "hmac"
	ProtectPII  = "pii"
)

// Changed builds a Change from Go values, marshaled to JSON. It panics if a
// value cannot be marshaled, like regexp.MustCompile: the values are the
// caller's own constants and fields.
func Changed(field string, old, new any) Change {
	return Change{Field: field, Old: mustJSON(old), New: mustJSON(new)}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("trail: cannot marshal change value: " + err.Error())
	}
	return b
}

// CheckEventJSON checks the JSON text of one event for what encoding/json lets
// through when it decodes the text into an Event, so that nothing a writer
// sent is silently replaced:
//
//   - a member name given twice in one object, at any depth
//     ({"tenant":"acme","tenant":"globex"}: encoding/json keeps the last);
//   - a field given twice under names that differ in letter case
//     ({"tenant":"acme","Tenant":"globex"}: encoding/json matches names
//     regardless of case, and keeps the last);
//   - an "id" that is the nil UUID, or an "occurred_at" that is the zero time
//     0001-01-01T00:00:00Z: once decoded they look absent, and Normalize
//     would assign a fresh ID or the current time. Leave them out (or null)
//     to have them filled in;
//   - what else the strict parser of CanonicalJSON refuses and encoding/json
//     accepts, such as a lone surrogate (\ud800) that encoding/json turns
//     into U+FFFD.
//
// The error is a *ValidationError naming the field: "tenant", "actor.id",
// "metadata.a" (a repeated name inside metadata or a change value has its
// whole path; other faults there name "metadata" or "changes[i].old", as
// Normalize does), or "event" for the text as a whole. CheckEventJSON does
// not decode: the API and `trail record -` call it once a strict
// json.Decoder (DisallowUnknownFields, UseNumber) has decoded the same
// text, and leave syntax, unknown fields and wrong types to that decoder.
func CheckEventJSON(raw []byte) error {
	// A change's old and new values sit three levels down (event, changes,
	// change) and Normalize holds them to MaxJSONDepth from there, metadata
	// likewise from one level down. This pass starts at -3 so that it
	// refuses no depth Normalize accepts, and leaves the limit's error, which
	// names the field, to Normalize.
	if _, err := appendCanonicalJSON(make([]byte, 0, len(raw)), raw, -3); err != nil {
		field := "event"
		if pe, ok := err.(*pathError); ok && pe.path != "" {
			field = strings.TrimPrefix(pe.path, ".")
			if !pe.duplicate {
				field = wholeValue(field)
			}
		}
		return invalid(field, "%v", err)
	}
	var names eventNames
	if json.Unmarshal(raw, &names) != nil {
		return nil // not an event object: the decoder says what is wrong
	}
	return names.check()
}

// wholeValue cuts a path inside metadata or a change's old or new value to
// that value, the field Normalize names for the same fault (a number a
// double cannot hold, nesting too deep), so that the API and the library
// agree. A repeated member name keeps its whole path: that name is the fault.
func wholeValue(field string) string {
	if field == "metadata" || strings.HasPrefix(field, "metadata.") || strings.HasPrefix(field, "metadata[") {
		return "metadata"
	}
	if rest, ok := strings.CutPrefix(field, "changes["); ok {
		if i := strings.IndexByte(rest, ']'); i > 0 {
			for _, v := range []string{".old", ".new"} {
				if after, ok := strings.CutPrefix(rest[i+1:], v); ok && (after == "" || after[0] == '.' || after[0] == '[') {
					return "changes[" + rest[:i+1] + v
				}
			}
		}
	}
	return field
}

// eventNames mirrors the JSON shape of Event with counters. Decoding an
// event's JSON into it, encoding/json matches each member to a field exactly
// as it does decoding into an Event (in any letter case), but skips the
// values: a count above one is a field given twice, since the strict parser
// has already refused a name repeated as such. TestEventNamesMirrorEvent
// keeps the mirror in step with the model.
type eventNames struct {
	ID            idName      `json:"id"`
	OccurredAt    timeName    `json:"occurred_at"`
	RecordedAt    nameCount   `json:"recorded_at"`
	Tenant        nameCount   `json:"tenant"`
	Actor         actorNames  `json:"actor"`
	Action        nameCount   `json:"action"`
	Target        targetNames `json:"target"`
	Outcome       nameCount   `json:"outcome"`
	Description   nameCount   `json:"description"`
	Changes       changeNames `json:"changes"`
	Metadata      nameCount   `json:"metadata"`
	RequestID     nameCount   `json:"request_id"`
	TraceID       nameCount   `json:"trace_id"`
	SpanID        nameCount   `json:"span_id"`
	Source        nameCount   `json:"source"`
	SchemaVersion nameCount   `json:"schema_version"`
}

type actorNames struct {
	n          int
	Type       nameCount   `json:"type"`
	ID         nameCount   `json:"id"`
	Name       nameCount   `json:"name"`
	Email      nameCount   `json:"email"`
	IP         nameCount   `json:"ip"`
	UserAgent  nameCount   `json:"user_agent"`
	OnBehalfOf *actorNames `json:"on_behalf_of"`
}

type targetNames struct {
	n    int
	Type nameCount `json:"type"`
	ID   nameCount `json:"id"`
	Name nameCount `json:"name"`
}

type changeNames struct {
	n     int
	items []struct {
		Field    nameCount `json:"field"`
		Old      nameCount `json:"old"`
		New      nameCount `json:"new"`
		Redacted nameCount `json:"redacted"`
		Protect  nameCount `json:"protect"`
	}
}

// nameCount counts the members decoded into a field, skipping their values.
type nameCount int

func (c *nameCount) UnmarshalJSON([]byte) error { *c++; return nil }

type idName struct {
	n       int
	nilUUID bool
}

func (v *idName) UnmarshalJSON(b []byte) error {
	v.n++
	var id uuid.UUID
	if string(b) != "null" && json.Unmarshal(b, &id) == nil && id == uuid.Nil {
		v.nilUUID = true
	}
	return nil
}

type timeName struct {
	n    int
	zero string // the zero time as sent
}

func (v *timeName) UnmarshalJSON(b []byte) error {
	v.n++
	var t time.Time
	if string(b) != "null" && json.Unmarshal(b, &t) == nil && t.IsZero() {
		v.zero = clip(string(b))
	}
	return nil
}

func (a *actorNames) UnmarshalJSON(b []byte) error {
	a.n++
	type plain actorNames
	return json.Unmarshal(b, (*plain)(a))
}

func (t *targetNames) UnmarshalJSON(b []byte) error {
	t.n++
	type plain targetNames
	return json.Unmarshal(b, (*plain)(t))
}

func (c *changeNames) UnmarshalJSON(b []byte) error {
	c.n++
	return json.Unmarshal(b, &c.items)
}

// check reports the first field given twice, then a nil UUID id or a zero
// occurred_at.
func (e *eventNames) check() error {
	twice := func(field string, n int) error {
		if n > 1 {
			return invalid(field, "given twice, in names that differ only in letter case (which JSON decoders match alike)")
		}
		return nil
	}
	for _, f := range []struct {
		name string
		n    int
	}{{"id", e.ID.n}, {"occurred_at", e.OccurredAt.n}, {"recorded_at", int(e.RecordedAt)}, {"tenant", int(e.Tenant)},
		{"actor", e.Actor.n}, {"action", int(e.Action)}, {"target", e.Target.n}, {"outcome", int(e.Outcome)},
		{"description", int(e.Description)}, {"changes", e.Changes.n}, {"metadata", int(e.Metadata)},
		{"request_id", int(e.RequestID)}, {"trace_id", int(e.TraceID)}, {"span_id", int(e.SpanID)}, {"source", int(e.Source)}, {"schema_version", int(e.SchemaVersion)}} {
		if err := twice(f.name, f.n); err != nil {
			return err
		}
	}
	for field, a := "actor", &e.Actor; a != nil; field, a = field+".on_behalf_of", a.OnBehalfOf {
		for _, f := range []struct {
			name string
			n    nameCount
		}{{".type", a.Type}, {".id", a.ID}, {".name", a.Name}, {".email", a.Email}, {".ip", a.IP}, {".user_agent", a.UserAgent}} {
			if err := twice(field+f.name, int(f.n)); err != nil {
				return err
			}
		}
		if a.OnBehalfOf != nil {
			if err := twice(field+".on_behalf_of", a.OnBehalfOf.n); err != nil {
				return err
			}
		}
	}
	for _, f := range []struct {
		name string
		n    nameCount
	}{{"target.type", e.Target.Type}, {"target.id", e.Target.ID}, {"target.name", e.Target.Name}} {
		if err := twice(f.name, int(f.n)); err != nil {
			return err
		}
	}
	for i, c := range e.Changes.items {
		for _, f := range []struct {
			name string
			n    nameCount
		}{{"field", c.Field}, {"old", c.Old}, {"new", c.New}, {"redacted", c.Redacted}, {"protect", c.Protect}} {
			if err := twice(fmt.Sprintf("changes[%d].%s", i, f.name), int(f.n)); err != nil {
				return err
			}
		}
	}
	if e.ID.nilUUID {
		return invalid("id", "the nil UUID is not an event ID; leave id out to have one assigned")
	}
	if e.OccurredAt.zero != "" {
		return invalid("occurred_at", "%s is the zero time, not a time; leave occurred_at out to mean now", e.OccurredAt.zero)
	}
	return nil
}

package trail

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// SchemaVersion is the version of the event model this package writes. Stores
// keep each event's version so that later versions can still read old rows and
// verifiers can pick the right canonical encoding.
const SchemaVersion = 1

// Event is one audit record: who did what, to which object, in which tenant.
//
// Only Action and Actor are required; Record fills ID, OccurredAt, Outcome,
// SchemaVersion and the context values (tenant, actor, request) when they are
// left empty. An event with an empty Tenant is a platform event, visible only to
// readers allowed to see all tenants.
type Event struct {
	// ID identifies the event. It is a UUIDv7 when Trail assigns it; a caller
	// may set its own, and a second event with the same ID is a duplicate that
	// stores nothing new (the ID is the idempotency key).
	ID uuid.UUID `json:"id"`
	// OccurredAt is when the action happened, as claimed by the writer.
	OccurredAt time.Time `json:"occurred_at"`
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
	// Source names the writer: a service name, "trigger", "cli", "api".
	Source string `json:"source,omitempty"`
	// SchemaVersion is the event model version; 0 means the current one.
	SchemaVersion int `json:"schema_version"`
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

package trailpgx

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/trailhq/trail"
)

// insertColumns are the events columns every writer fills, in order.
var insertColumns = []string{
	"id", "occurred_at", "recorded_at", "schema_version", "tenant",
	"actor_type", "actor_id", "actor_name", "actor_email", "actor_ip", "actor_user_agent", "on_behalf_of",
	"action", "target_type", "target_id", "target_name", "outcome", "description",
	"changes", "changed_fields", "metadata", "request_id", "trace_id", "source", "span_id",
	"actor_name_digest", "actor_email_digest",
}

// selectColumns are read back by scanEvent.
const selectColumns = `id, occurred_at, recorded_at, schema_version, tenant,
	actor_type, actor_id, actor_name, actor_email, actor_ip, actor_user_agent, on_behalf_of,
	action, target_type, target_id, target_name, outcome, description,
	changes, metadata, request_id, trace_id, source, span_id`

// row is an event in column form.
type row struct {
	ev      *trail.Event
	obo     *string
	changes *string
	fields  []string
	meta    *string
}

// encode turns a normalized event into column values. PostgreSQL's jsonb
// cannot hold the character U+0000, so an event carrying it in a change or
// metadata value is refused here, naming the field, before anything is sent.
func encode(ev *trail.Event) (row, error) {
	r := row{ev: ev}
	if ev.Actor.OnBehalfOf != nil {
		b, err := json.Marshal(ev.Actor.OnBehalfOf)
		if err != nil {
			return r, &trail.ValidationError{Field: "actor.on_behalf_of", Reason: err.Error()}
		}
		s := string(b)
		r.obo = &s
	}
	if len(ev.Changes) > 0 {
		s, err := jsonbColumn("changes", ev.Changes)
		if err != nil {
			return r, err
		}
		r.changes = s
		r.fields = make([]string, len(ev.Changes))
		for i := range ev.Changes {
			r.fields[i] = ev.Changes[i].Field
		}
	}
	if len(ev.Metadata) > 0 {
		s, err := jsonbColumn("metadata", ev.Metadata)
		if err != nil {
			return r, err
		}
		r.meta = s
	}
	return r, nil
}

// jsonbColumn encodes the value of an event's field for a jsonb column,
// refusing (as a validation error naming field) a U+0000 that PostgreSQL
// cannot store.
func jsonbColumn(field string, v any) (*string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, &trail.ValidationError{Field: field, Reason: err.Error()}
	}
	if hasNULEscape(b) {
		return nil, &trail.ValidationError{Field: field, Reason: `a value contains the character U+0000, which PostgreSQL cannot store`}
	}
	s := string(b)
	return &s, nil
}

// hasNULEscape reports whether JSON text b has a \u0000 escape (not an
// escaped backslash followed by "u0000").
func hasNULEscape(b []byte) bool {
	s := string(b)
	for {
		i := strings.Index(s, `\u0000`)
		if i < 0 {
			return false
		}
		n := 0
		for j := i - 1; j >= 0 && s[j] == '\\'; j-- {
			n++
		}
		if n%2 == 0 {
			return true
		}
		s = s[i+1:]
	}
}

// copyValues is r as one COPY row, in insertColumns order.
func (r *row) copyValues() []any {
	ev := r.ev
	return []any{
		pgtype.UUID{Bytes: ev.ID, Valid: true}, ev.OccurredAt, ev.RecordedAt, int16(ev.SchemaVersion), ev.Tenant,
		string(ev.Actor.Type), ev.Actor.ID, ev.Actor.Name, ev.Actor.Email, ev.Actor.IP, ev.Actor.UserAgent, r.obo,
		ev.Action, ev.Target.Type, ev.Target.ID, ev.Target.Name, string(ev.Outcome), ev.Description,
		r.changes, r.fields, r.meta, ev.RequestID, ev.TraceID, ev.Source, ev.SpanID,
		digestValue(ev.Lookup.ActorName), digestValue(ev.Lookup.ActorEmail),
	}
}

// digestValue is a trail.Digest as a bytea parameter: NULL for none.
func digestValue(d trail.Digest) []byte {
	if d.IsZero() {
		return nil
	}
	return d[:]
}

// scanEvent reads one row of selectColumns.
func scanEvent(scan func(dest ...any) error) (trail.Event, error) {
	var (
		ev                   trail.Event
		id                   pgtype.UUID
		sv                   int16
		actorType, outcome   string
		obo, changes, meta   []byte
		occurred, recordedAt time.Time
	)
	err := scan(&id, &occurred, &recordedAt, &sv, &ev.Tenant,
		&actorType, &ev.Actor.ID, &ev.Actor.Name, &ev.Actor.Email, &ev.Actor.IP, &ev.Actor.UserAgent, &obo,
		&ev.Action, &ev.Target.Type, &ev.Target.ID, &ev.Target.Name, &outcome, &ev.Description,
		&changes, &meta, &ev.RequestID, &ev.TraceID, &ev.Source, &ev.SpanID)
	if err != nil {
		return ev, err
	}
	ev.ID = uuid.UUID(id.Bytes)
	ev.OccurredAt, ev.RecordedAt = occurred.UTC(), recordedAt.UTC()
	ev.SchemaVersion = int(sv)
	ev.Actor.Type, ev.Outcome = trail.ActorType(actorType), trail.Outcome(outcome)
	return ev, decodeJSONColumns(&ev, obo, changes, meta) // scanrow.go
}

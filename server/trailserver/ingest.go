package trailserver

import (
	"bytes"
	"context"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

// IngestResult is the answer for one event of POST /v1/events.
type IngestResult struct {
	ID     uuid.UUID `json:"id"`
	Status string    `json:"status"` // created or duplicate
	// RecordedAt is when the server accepted the event; for a duplicate, when
	// it accepted the first copy (omitted if that copy is not the key's to see).
	RecordedAt *time.Time `json:"recorded_at,omitempty"`
	// LeafIndex is the event's sequence number in its tenant's log once
	// sealed (a duplicate of a sealed event); absent while pending.
	LeafIndex *int64 `json:"leaf_index,omitempty"`
}

// IngestResponse is the body of a successful POST /v1/events.
type IngestResponse struct {
	Results    []IngestResult `json:"results"`
	Created    int            `json:"created"`
	Duplicates int            `json:"duplicates"`
}

// Ingest statuses.
const (
	StatusCreated   = "created"
	StatusDuplicate = "duplicate"
)

func (s *Server) ingest(w http.ResponseWriter, r *http.Request, k *Key) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			writeProblem(w, r, problem(http.StatusUnsupportedMediaType, ProblemMediaType, "Content-Type", "send application/json"))
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeProblem(w, r, problem(http.StatusRequestEntityTooLarge, ProblemTooLarge, "body", fmt.Sprintf("the body exceeds %d bytes", s.cfg.MaxBodyBytes)))
			return
		}
		writeProblem(w, r, badRequest("body", "reading the body failed: "+err.Error()))
		return
	}
	events, batch, p := decodeBody(body)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	now := s.cfg.Now()
	// A batch is transformed under one privacy batch (trail.RunBatch): the
	// keys of its new subjects are stored in one write, before the events.
	// A lost race for a key runs the preparation again, from the decoded
	// copies.
	var transform trail.Transformer
	var decoded []trail.Event
	if len(events) > 1 {
		transform, decoded = s.cfg.Transform, slices.Clone(events)
	}
	var bad *Problem
	err = trail.RunBatch(r.Context(), transform, func(ctx context.Context) error {
		copy(events, decoded)
		for i := range events {
			prefix := ""
			if batch {
				prefix = fmt.Sprintf("events[%d]", i)
			}
			if bad = s.prepare(ctx, k, prefix, now, &events[i]); bad != nil {
				return errBadEvent
			}
		}
		return nil
	})
	if bad != nil {
		writeProblem(w, r, bad)
		return
	}
	if err != nil {
		s.storeProblem(w, r, "storing the events' keys", err)
		return
	}
	results, err := s.cfg.Store.Append(r.Context(), events)
	var ce *trail.IDConflictError
	if errors.As(err, &ce) {
		// The ID is held by another event, in this tenant or another: the
		// answer is the same either way and names nothing of that event.
		field := "id"
		if batch {
			field = fmt.Sprintf("events[%d].id", ce.Index)
		}
		s.metrics.eventsConflict.Add(1)
		writeProblem(w, r, &Problem{Type: ProblemConflict, Title: "Conflict", Status: http.StatusConflict, Field: field,
			Detail: "this id is already in use by another event: give the event a new id"})
		return
	}
	if err != nil {
		s.storeProblem(w, r, "storing the events", err)
		return
	}
	// Committed: from here on the events are durable, and the answer says so.
	resp := IngestResponse{Results: make([]IngestResult, len(results))}
	var created []trail.Event
	for i, res := range results {
		ir := IngestResult{ID: res.ID, Status: StatusCreated}
		if res.Duplicate {
			ir.Status = StatusDuplicate
			resp.Duplicates++
			if orig, err := s.cfg.Store.Get(r.Context(), res.ID); err == nil && k.mayRead(orig.Tenant) {
				t := orig.RecordedAt
				ir.RecordedAt = &t
			}
		} else {
			resp.Created++
			t := res.RecordedAt
			if t.IsZero() {
				t = events[i].RecordedAt
			}
			ir.RecordedAt = &t
			events[i].RecordedAt = t
			created = append(created, events[i])
		}
		resp.Results[i] = ir
	}
	s.addLeafIndexes(r.Context(), k, resp.Results)
	s.metrics.batches.Add(1)
	s.metrics.eventsCreated.Add(uint64(resp.Created))
	s.metrics.eventsDuplicate.Add(uint64(resp.Duplicates))
	s.hub.publish(created)
	status := http.StatusOK
	if resp.Created > 0 {
		status = http.StatusCreated
	}
	writeJSON(w, status, resp)
}

// mayRead reports whether the key may see an event of tenant.
func (k *Key) mayRead(tenant string) bool { return k.AllTenants() || k.Tenant == tenant }

// decodeBody accepts one event object, a JSON array of events, or
// {"events": [...]}, and returns the events and whether it was a batch. A
// batch is decoded in one streaming pass, event by event; only a bad event
// is looked at again, to name its field.
func decodeBody(body []byte) ([]trail.Event, bool, *Problem) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, false, badRequest("body", "empty; send an event, an array of events or {\"events\": [...]}")
	}
	if !utf8.Valid(body) {
		return nil, false, badRequest("body", "not valid UTF-8")
	}
	malformed := func() ([]trail.Event, bool, *Problem) {
		return nil, false, badRequest("body", "malformed JSON: "+syntaxDetail(body))
	}
	dec := jsonDecoder(bytes.NewReader(trimmed))
	switch trimmed[0] {
	case '[':
		dec.Token()
	case '{':
		if !isEnvelope(trimmed) {
			if !json.Valid(trimmed) {
				return malformed()
			}
			if len(trimmed) > trail.MaxEventBytes {
				return nil, false, problem(http.StatusRequestEntityTooLarge, ProblemTooLarge, "", fmt.Sprintf("%d bytes, an event may have at most %d", len(trimmed), trail.MaxEventBytes))
			}
			var ev trail.Event
			if field, detail := decodeEvent(trimmed, &ev); detail != "" {
				return nil, false, badRequest(field, detail)
			}
			if err := trail.CheckEventJSON(trimmed); err != nil {
				return nil, false, eventJSONProblem("", err)
			}
			return []trail.Event{ev}, false, nil
		}
		dec.Token() // {
		dec.Token() // "events"
		if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
			if err != nil {
				return malformed()
			}
			return nil, false, badRequest("events", "must be an array of event objects")
		}
	default:
		if !json.Valid(trimmed) {
			return malformed()
		}
		return nil, false, badRequest("body", "send an event object, an array of events or {\"events\": [...]}")
	}
	events := make([]trail.Event, 0, 16)
	for i := 0; dec.More(); i++ {
		if i == MaxBatch {
			return nil, false, badRequest("events", fmt.Sprintf("more than %d events in one request", MaxBatch))
		}
		name := fmt.Sprintf("events[%d]", i)
		start := dec.InputOffset()
		events = append(events, trail.Event{})
		if err := dec.Decode(&events[i]); err != nil {
			// Find the element again to tell a syntax error from a bad field.
			rest := bytes.TrimLeft(trimmed[start:], " \t\r\n,")
			var raw json.RawMessage
			if json.NewDecoder(bytes.NewReader(rest)).Decode(&raw) != nil {
				return malformed()
			}
			if raw[0] != '{' {
				return nil, false, badRequest(name, "must be a JSON object")
			}
			field, detail := decodeEvent(raw, &trail.Event{})
			if detail == "" {
				field, detail = decodeErr(err)
			}
			return nil, false, badRequest(name+"."+field, detail)
		}
		if n := dec.InputOffset() - start; n > trail.MaxEventBytes {
			return nil, false, problem(http.StatusRequestEntityTooLarge, ProblemTooLarge, name, fmt.Sprintf("%d bytes, an event may have at most %d", n, trail.MaxEventBytes))
		}
		if err := trail.CheckEventJSON(bytes.TrimLeft(trimmed[start:dec.InputOffset()], " \t\r\n,")); err != nil {
			return nil, false, eventJSONProblem(name, err)
		}
	}
	if _, err := dec.Token(); err != nil { // ]
		return malformed()
	}
	if trimmed[0] == '{' {
		if dec.More() {
			tok, err := dec.Token()
			if k, ok := tok.(string); ok && err == nil {
				return nil, false, badRequest(clipStr(k), "unknown field; a batch is {\"events\": [...]} only")
			}
			return malformed()
		}
		if _, err := dec.Token(); err != nil { // }
			return malformed()
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false, badRequest("body", "malformed JSON: more than one JSON value")
	}
	if len(events) == 0 {
		return nil, false, badRequest("events", "empty batch")
	}
	return events, true, nil
}

// eventJSONProblem is the 400 for what trail.CheckEventJSON finds in an
// event's JSON that encoding/json lets through: a member given twice (also
// as names that differ only in letter case), an explicit nil UUID id or zero
// occurred_at. name is "events[i]" in a batch.
func eventJSONProblem(name string, err error) *Problem {
	field, detail := "", err.Error()
	var ve *trail.ValidationError
	if errors.As(err, &ve) {
		field, detail = ve.Field, ve.Reason
	}
	switch {
	case name == "":
	case field == "":
		field = name
	default:
		field = name + "." + field
	}
	return badRequest(field, detail)
}

// isEnvelope reports whether an object's first member is "events".
func isEnvelope(obj []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	tok, err := dec.Token()
	return err == nil && tok == "events"
}

func syntaxDetail(body []byte) string {
	var v any
	err := json.Unmarshal(body, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at byte %d", se.Error(), se.Offset)
	}
	if err != nil {
		return err.Error()
	}
	return "invalid"
}

// errBadEvent stops a batch's preparation at an event prepare refused.
var errBadEvent = errors.New("trailserver: bad event")

// prepare scopes, normalizes, transforms (under ctx) and validates one
// decoded event.
func (s *Server) prepare(ctx context.Context, k *Key, prefix string, now time.Time, ev *trail.Event) *Problem {
	name := func(f string) string {
		switch {
		case prefix == "":
			return f
		case f == "":
			return prefix
		}
		return prefix + "." + f
	}
	if ev.Tenant == "" {
		ev.Tenant = k.Tenant
	} else if !k.AllTenants() && ev.Tenant != k.Tenant {
		return forbidden(name("tenant"), fmt.Sprintf("this key writes only tenant %q", k.Tenant))
	}
	if ev.Source == "" {
		ev.Source = "api"
	}
	ev.RecordedAt = now
	if err := ev.Normalize(); err != nil {
		return validationProblem(name, err)
	}
	if s.cfg.Transform != nil {
		if err := s.cfg.Transform.Transform(ctx, ev); err != nil {
			return validationProblem(name, err)
		}
	}
	if err := ev.Validate(); err != nil {
		return validationProblem(name, err)
	}
	return nil
}

func validationProblem(name func(string) string, err error) *Problem {
	var ve *trail.ValidationError
	if errors.As(err, &ve) {
		return badRequest(name(ve.Field), ve.Reason)
	}
	return badRequest(name(""), err.Error())
}

// decodeEvent decodes one event strictly: unknown fields are errors (a
// misspelt "tennant" must not silently make a platform event), numbers keep
// their text. It returns the JSON name of a bad field and what is wrong.
func decodeEvent(raw []byte, ev *trail.Event) (field, detail string) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	d.UseNumber()
	err := d.Decode(ev)
	if err == nil {
		return "", ""
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return te.Field, fmt.Sprintf("must be %s, not %s", jsonKind(te.Type), te.Value)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return strings.Trim(name, `"`), "unknown field"
	}
	// Errors from UnmarshalJSON methods (uuid, time) do not name the field:
	// find it by decoding the members one at a time.
	var members map[string]json.RawMessage
	if json.Unmarshal(raw, &members) == nil {
		t := reflect.TypeOf(*ev)
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			v, ok := members[tag]
			if !ok {
				continue
			}
			p := reflect.New(f.Type)
			if e := json.Unmarshal(v, p.Interface()); e != nil {
				var te *json.UnmarshalTypeError
				if errors.As(e, &te) && te.Field != "" {
					return tag + "." + te.Field, fmt.Sprintf("must be %s, not %s", jsonKind(te.Type), te.Value)
				}
				return tag, e.Error()
			}
		}
	}
	return "", err.Error()
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return "a string"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct, reflect.Pointer:
		return "an object"
	}
	return t.String()
}

func jsonDecoder(r io.Reader) *json.Decoder {
	d := json.NewDecoder(r)
	d.DisallowUnknownFields()
	d.UseNumber()
	return d
}

// decodeErr names the field of a decoding error when it can.
func decodeErr(err error) (field, detail string) {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return te.Field, fmt.Sprintf("must be %s, not %s", jsonKind(te.Type), te.Value)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return strings.Trim(name, `"`), "unknown field"
	}
	if errors.Is(err, io.EOF) {
		return "body", "empty"
	}
	return "body", "malformed JSON: " + err.Error()
}

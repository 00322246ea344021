package trail

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestEnums(t *testing.T) {
	t.Parallel()
	for _, at := range []ActorType{ActorUser, ActorService, ActorSystem, ActorAnonymous} {
		if !at.Valid() {
			t.Errorf("%q invalid", at)
		}
	}
	for _, at := range []ActorType{"", "User", "robot", "user "} {
		if at.Valid() {
			t.Errorf("%q valid", at)
		}
	}
	for _, o := range []Outcome{OutcomeSuccess, OutcomeFailure, OutcomeDenied} {
		if !o.Valid() {
			t.Errorf("%q invalid", o)
		}
	}
	for _, o := range []Outcome{"", "ok", "Success"} {
		if o.Valid() {
			t.Errorf("%q valid", o)
		}
	}
}

func TestActorAndTarget(t *testing.T) {
	t.Parallel()
	if !(Actor{}).IsZero() {
		t.Error("zero actor not IsZero")
	}
	for _, a := range []Actor{{Type: ActorUser}, {ID: "1"}, {Name: "n"}, {Email: "e"}, {IP: "i"}, {UserAgent: "u"}, {OnBehalfOf: &Actor{}}} {
		if a.IsZero() {
			t.Errorf("%+v IsZero", a)
		}
	}
	if got := (Actor{Type: ActorUser, ID: "42"}).String(); got != "user:42" {
		t.Errorf("String = %q", got)
	}
	if got := (Actor{Type: ActorSystem}).String(); got != "system" {
		t.Errorf("String = %q", got)
	}
	if !(Target{}).IsZero() || (Target{Name: "x"}).IsZero() {
		t.Error("Target.IsZero")
	}
	if got := (Target{Type: "user", ID: "17"}).String(); got != "user:17" {
		t.Errorf("String = %q", got)
	}
	if got := (Target{}).String(); got != "" {
		t.Errorf("zero target String = %q", got)
	}
}

func TestChanged(t *testing.T) {
	t.Parallel()
	c := Changed("seats", 5, 10.5)
	if c.Field != "seats" || string(c.Old) != "5" || string(c.New) != "10.5" {
		t.Errorf("Changed = %+v", c)
	}
	c = Changed("plan", nil, map[string]any{"b": 1, "a": "<x>"})
	if string(c.Old) != "null" || !json.Valid(c.New) {
		t.Errorf("Changed = %s %s", c.Old, c.New)
	}
	defer func() {
		if recover() == nil {
			t.Error("Changed with an unmarshalable value did not panic")
		}
	}()
	Changed("bad", make(chan int), nil)
}

// TestJSONWireNames pins the snake_case names of the wire form: the API,
// the CLI and exports use them, and the canonical encoding repeats them.
func TestJSONWireNames(t *testing.T) {
	t.Parallel()
	ev := validEvent()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	keys := func(m map[string]json.RawMessage) []string {
		var k []string
		for s := range m {
			k = append(k, s)
		}
		slices.Sort(k)
		return k
	}
	want := []string{"action", "actor", "changes", "description", "id", "metadata", "occurred_at", "outcome",
		"recorded_at", "request_id", "schema_version", "source", "target", "tenant", "trace_id"}
	if got := keys(m); !reflect.DeepEqual(got, want) {
		t.Errorf("event keys %v\nwant %v", got, want)
	}
	var actor map[string]json.RawMessage
	if err := json.Unmarshal(m["actor"], &actor); err != nil {
		t.Fatal(err)
	}
	if got, want := keys(actor), []string{"email", "id", "ip", "name", "on_behalf_of", "type", "user_agent"}; !reflect.DeepEqual(got, want) {
		t.Errorf("actor keys %v", got)
	}
	var target map[string]json.RawMessage
	if err := json.Unmarshal(m["target"], &target); err != nil {
		t.Fatal(err)
	}
	if got, want := keys(target), []string{"id", "name", "type"}; !reflect.DeepEqual(got, want) {
		t.Errorf("target keys %v", got)
	}
	var changes []map[string]json.RawMessage
	if err := json.Unmarshal(m["changes"], &changes); err != nil {
		t.Fatal(err)
	}
	if got, want := keys(changes[0]), []string{"field", "new", "old"}; !reflect.DeepEqual(got, want) {
		t.Errorf("change keys %v", got)
	}
	if got, want := keys(changes[1]), []string{"field", "redacted"}; !reflect.DeepEqual(got, want) {
		t.Errorf("redacted change keys %v", got)
	}
	// The canonical form uses the same names.
	c, err := ev.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	var cm map[string]json.RawMessage
	if err := json.Unmarshal(c, &cm); err != nil {
		t.Fatal(err)
	}
	if got := keys(cm); !reflect.DeepEqual(got, want) {
		t.Errorf("canonical keys %v", got)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	t.Parallel()
	ev := validEvent()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeEventJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, ev) {
		t.Errorf("JSON round trip\n got %#v\nwant %#v", back, ev)
	}
	// A minimal event omits the empty members.
	min := Event{Action: "a.b", Actor: Actor{Type: ActorSystem}}
	b, err = json.Marshal(min)
	if err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"recorded_at", "tenant", "target", "description", "changes", "metadata", "request_id", "trace_id", "source", "on_behalf_of"} {
		if strings.Contains(string(b), `"`+absent+`"`) {
			t.Errorf("minimal event JSON has %q: %s", absent, b)
		}
	}
}

// TestCheckEventJSON: what encoding/json would let through silently in an
// event's JSON (a duplicate member, a member name in other letter case, an
// explicit nil UUID or zero time) is refused, naming the field.
func TestCheckEventJSON(t *testing.T) {
	t.Parallel()
	const base = `"actor":{"type":"user","id":"42"},"action":"user.delete"`
	refused := []struct {
		name, json, field, hint string
	}{
		{"duplicate tenant", `{"tenant":"acme","tenant":"globex",` + base + `}`, "tenant", `duplicate key "tenant"`},
		{"duplicate tenant far apart", `{"tenant":"acme",` + base + `,"description":"x","tenant":"globex"}`, "tenant", "duplicate"},
		{"duplicate id", `{"id":"01936c8e-7a00-7000-8000-000000000001","id":"01936c8e-7a00-7000-8000-000000000002",` + base + `}`, "id", "duplicate"},
		{"duplicate action", `{` + base + `,"action":"user.create"}`, "action", "duplicate"},
		{"duplicate actor id", `{"actor":{"type":"user","id":"42","id":"1"},"action":"user.delete"}`, "actor.id", "duplicate"},
		{"duplicate on_behalf_of id", `{"actor":{"type":"user","id":"42","on_behalf_of":{"type":"user","id":"7","id":"8"}},"action":"user.delete"}`, "actor.on_behalf_of.id", "duplicate"},
		{"duplicate target type", `{` + base + `,"target":{"type":"user","id":"1","type":"invoice"}}`, "target.type", "duplicate"},
		{"duplicate change field", `{` + base + `,"changes":[{"field":"a"},{"field":"b","old":1,"field":"c"}]}`, "changes[1].field", "duplicate"},
		{"duplicate in a change value", `{` + base + `,"changes":[{"field":"a","new":{"x":[{"y":1,"y":2}]}}]}`, "changes[0].new.x[0].y", "duplicate"},
		{"duplicate metadata key", `{` + base + `,"metadata":{"role":"user","role":"admin"}}`, "metadata.role", "duplicate"},
		{"duplicate by escape", `{` + base + `,"metadata":{"role":1,"\u0072ole":2}}`, "metadata.role", "duplicate"},
		{"duplicate deep in metadata", `{` + base + `,"metadata":{"a":{"b":[0,{"c":{"d":1,"d":1}}]}}}`, "metadata.a.b[1].c.d", "duplicate"},
		{"duplicate under a dotted name", `{` + base + `,"metadata":{"a.b":{"x":1,"x":2}}}`, `metadata["a.b"].x`, "duplicate"},
		{"duplicate control name", `{` + base + `,"metadata":{"\u001b[2J":1,"\u001b[2J":2}}`, `metadata["\x1b[2J"]`, `duplicate key "\x1b[2J"`},
		{"duplicate empty name", `{` + base + `,"metadata":{"":1,"":2}}`, `metadata[""]`, "duplicate"},
		{"tenant in capitals too", `{"tenant":"acme","TENANT":"globex",` + base + `}`, "tenant", "given twice, in names that differ only in letter case"},
		{"Tenant and tenant", `{"Tenant":"globex","tenant":"acme",` + base + `}`, "tenant", "letter case"},
		{"actor ID and id", `{"actor":{"type":"user","id":"42","ID":"1"},"action":"user.delete"}`, "actor.id", "letter case"},
		{"Actor and actor", `{"Actor":{"type":"user","id":"1"},` + base + `}`, "actor", "letter case"},
		{"on_behalf_of twice by case", `{"actor":{"type":"user","id":"42","on_behalf_of":{"type":"user","id":"7"},"ON_BEHALF_OF":{"type":"user","id":"8"}},"action":"user.delete"}`, "actor.on_behalf_of", "letter case"},
		{"on_behalf_of email twice by case", `{"actor":{"type":"user","id":"42","on_behalf_of":{"type":"user","id":"7","email":"a@b","Email":"c@d"}},"action":"user.delete"}`, "actor.on_behalf_of.email", "letter case"},
		{"change Field and field", `{` + base + `,"changes":[{"field":"a"},{"field":"b","Field":"c"}]}`, "changes[1].field", "letter case"},
		{"nil UUID as Id", `{"Id":"00000000-0000-0000-0000-000000000000",` + base + `}`, "id", "nil UUID"},
		{"nil UUID id", `{"id":"00000000-0000-0000-0000-000000000000",` + base + `}`, "id", "nil UUID"},
		{"nil UUID id without hyphens", `{"id":"00000000000000000000000000000000",` + base + `}`, "id", "nil UUID"},
		{"nil UUID id as URN", `{"id":"urn:uuid:00000000-0000-0000-0000-000000000000",` + base + `}`, "id", "nil UUID"},
		{"zero occurred_at", `{"occurred_at":"0001-01-01T00:00:00Z",` + base + `}`, "occurred_at", "zero time"},
		{"zero occurred_at in another zone", `{"occurred_at":"0001-01-01T01:00:00+01:00",` + base + `}`, "occurred_at", "zero time"},
		{"lone surrogate", `{` + base + `,"description":"a\ud800b"}`, "description", "surrogate"},
		{"lone surrogate in a name", `{"actor":{"type":"user","id":"42","name":"\udc00"},"action":"user.delete"}`, "actor.name", "surrogate"},
		// Inside metadata and change values, the field is the value as a whole,
		// as Normalize names it; a repeated name keeps its path (above).
		{"lone surrogate in metadata", `{` + base + `,"metadata":{"a":["\ud800"]}}`, "metadata", "surrogate"},
		{"huge integer in a change", `{` + base + `,"changes":[{"field":"a","old":{"n":[9007199254740993]}}]}`, "changes[0].old", "double"},
		{"too deep in metadata", `{` + base + `,"metadata":{"a":` + strings.Repeat("[", 30) + strings.Repeat("]", 30) + `}}`, "metadata", "deeper"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// encoding/json takes each of these without complaint.
			if _, err := decodeEventJSON([]byte(tt.json)); err != nil {
				t.Fatalf("the strict decoder refuses the input already: %v", err)
			}
			err := CheckEventJSON([]byte(tt.json))
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("CheckEventJSON = %v, want a *ValidationError", err)
			}
			if ve.Field != tt.field || !strings.Contains(ve.Reason, tt.hint) {
				t.Errorf("CheckEventJSON = %v; want field %s, reason with %q", err, tt.field, tt.hint)
			}
		})
	}
	accepted := []string{
		`{` + base + `}`,
		`{"id":null,"occurred_at":null,` + base + `}`,
		`{"id":"01936c8e-7a00-7000-8000-000000000001","occurred_at":"1970-01-01T00:00:00Z",` + base + `}`,
		// Two distinct names that differ in case are not a duplicate in
		// metadata, whose names are the writer's own.
		`{` + base + `,"metadata":{"Role":1,"role":2,"a":{"ID":1,"id":2}}}`,
		// A change value and metadata nested as deep as Normalize allows.
		`{` + base + `,"changes":[{"field":"a","new":` + strings.Repeat("[", MaxJSONDepth) + strings.Repeat("]", MaxJSONDepth) + `}]}`,
		`{` + base + `,"metadata":{"a":` + strings.Repeat("[", MaxJSONDepth-1) + strings.Repeat("]", MaxJSONDepth-1) + `}}`,
		// Not CheckEventJSON's to judge: the decoder reports these.
		`{"tenant":5}`, `{"tenannt":"acme"}`, `[1,2]`, `{"actor":"user:1","target":[],"changes":{}}`,
		// One name in other letter case is decoded as the field: nothing is lost.
		`{"Tenant":"acme","Actor":{"Type":"user","ID":"42"},"ACTION":"user.delete","changes":[{"Field":"a"}]}`,
	}
	for _, s := range accepted {
		if err := CheckEventJSON([]byte(s)); err != nil {
			t.Errorf("CheckEventJSON(%s) = %v", s, err)
		}
	}
	for _, in := range goldenInputs(t) {
		raw, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckEventJSON(raw); err != nil {
			t.Errorf("%s: %v", in, err)
		}
	}
}

// TestZeroEventJSON: the JSON form of an Event whose ID and OccurredAt are
// left to be filled leaves them out, so that a Go writer marshaling such an
// event for the API is not refused for an explicit nil UUID or zero time.
func TestZeroEventJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(Event{Action: "user.delete", Actor: Actor{Type: ActorUser, ID: "42"}})
	if err != nil {
		t.Fatal(err)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(b, &members); err != nil {
		t.Fatal(err)
	}
	if _, ok := members["id"]; ok {
		t.Errorf("nil UUID in JSON: %s", b)
	}
	if _, ok := members["occurred_at"]; ok {
		t.Errorf("zero time in JSON: %s", b)
	}
	if err := CheckEventJSON(b); err != nil {
		t.Errorf("CheckEventJSON(%s) = %v", b, err)
	}
	back, err := decodeEventJSON(b)
	if err != nil || back.ID != uuid.Nil || !back.OccurredAt.IsZero() {
		t.Errorf("decoded %+v, %v", back, err)
	}
}

// TestEventNamesMirrorEvent keeps eventNames, the counting mirror
// CheckEventJSON decodes into, in step with the JSON names of the model.
func TestEventNamesMirrorEvent(t *testing.T) {
	t.Parallel()
	names := func(t reflect.Type) []string {
		var out []string
		for i := range t.NumField() {
			if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); tag != "" && tag != "-" {
				out = append(out, tag)
			}
		}
		return out
	}
	for _, m := range []struct{ model, mirror reflect.Type }{
		{reflect.TypeFor[Event](), reflect.TypeFor[eventNames]()},
		{reflect.TypeFor[Actor](), reflect.TypeFor[actorNames]()},
		{reflect.TypeFor[Target](), reflect.TypeFor[targetNames]()},
		{reflect.TypeFor[Change](), reflect.TypeOf(changeNames{}.items).Elem()},
	} {
		if got, want := names(m.mirror), names(m.model); !reflect.DeepEqual(got, want) {
			t.Errorf("%s has JSON names %v, %s has %v", m.mirror, got, m.model, want)
		}
	}
}

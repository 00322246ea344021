package trail

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
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

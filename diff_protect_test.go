package trail

import (
	"encoding/json"
	"strings"
	"testing"
)

type protectAddress struct {
	City string `json:"city"`
	Zip  string `json:"zip"`
}

type protectUser struct {
	ID      string          `json:"id"`
	Email   string          `json:"email" trail:"hmac"`
	Phone   string          `json:"phone" trail:"pii"`
	Home    *protectAddress `json:"home" trail:"pii"`
	Pass    string          `json:"pass" trail:"redact"`
	Age     int             `json:"age" trail:"pii"`
	Secrets []protectInner  `json:"secrets"`
}

type protectInner struct {
	Code string `json:"code" trail:"hmac"`
}

// Fields tagged hmac and pii are reported with their values and the
// Protect marker, for the privacy layer; the marker follows the value, an
// object travels as one value, and a value holding tagged fields is
// redacted whole.
func TestDiffProtectTags(t *testing.T) {
	t.Parallel()
	before := protectUser{ID: "u1", Email: "a@x.example", Phone: "555", Age: 30, Secrets: []protectInner{{"1"}}}
	after := protectUser{ID: "u1", Email: "b@x.example", Phone: "555", Home: &protectAddress{City: "Lyon", Zip: "69001"}, Pass: "p", Age: 0, Secrets: []protectInner{{"2"}}}
	got, err := Diff(before, after)
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{
		{Field: "age", Old: json.RawMessage(`30`), New: json.RawMessage(`0`), Protect: ProtectPII},
		{Field: "email", Old: json.RawMessage(`"a@x.example"`), New: json.RawMessage(`"b@x.example"`), Protect: ProtectHMAC},
		{Field: "home", New: json.RawMessage(`{"city":"Lyon","zip":"69001"}`), Protect: ProtectPII},
		{Field: "pass", Redacted: true},
		{Field: "secrets", Redacted: true},
	}
	if g, w := mustMarshal(sortedChanges(got)), mustMarshal(want); g != w {
		t.Fatalf("Diff:\n got %s\nwant %s", g, w)
	}
	// Unchanged tagged fields are not reported.
	if got, err := Diff(before, before); err != nil || len(got) != 0 {
		t.Fatalf("no change: %v %v", got, err)
	}
	// The marker survives the JSON wire form (a library without keys sends
	// to the server) and Validate refuses it: never stored as plaintext.
	b, _ := json.Marshal(got)
	if !strings.Contains(string(b), `"protect":"pii"`) {
		t.Fatalf("wire form lost the marker: %s", b)
	}
	ev := Event{Tenant: "acme", Actor: Actor{Type: ActorUser, ID: "42"}, Action: "user.update", Changes: got}
	if err := ev.Normalize(); err != nil {
		t.Fatal(err)
	}
	err = ev.Validate()
	var ve *ValidationError
	if err == nil || !asValidation(err, &ve) || !strings.HasSuffix(ve.Field, ".protect") {
		t.Fatalf("Validate of a marked change: %v", err)
	}
}

func TestDiffUnknownTagNamesChoices(t *testing.T) {
	t.Parallel()
	type bad struct {
		X string `trail:"encrypt"`
	}
	_, err := Diff(bad{}, bad{X: "1"})
	if err == nil || !strings.Contains(err.Error(), "pii") {
		t.Fatalf("unknown tag: %v", err)
	}
}

func sortedChanges(cs []Change) []Change {
	out := append([]Change(nil), cs...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j].Field < out[i].Field {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func asValidation(err error, ve **ValidationError) bool {
	for err != nil {
		if v, ok := err.(*ValidationError); ok {
			*ve = v
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

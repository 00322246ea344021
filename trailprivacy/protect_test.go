package trailprivacy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/trailhq/trail"
)

type taggedUser struct {
	ID    string `json:"id"`
	Email string `json:"email" trail:"hmac"`
	Phone string `json:"phone" trail:"pii"`
	Note  string `json:"note" trail:"pii"`
}

// The Protect marker of trail.Diff's hmac and pii tags is applied by
// Transform (over a policy that would keep the field), cleared, and the
// event then validates; a policy that keeps less (omit, redact) still wins.
func TestTransformAppliesDiffMarkers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, _ := newTestPrivacy(t, "note redact\n")
	changes, err := trail.Diff(taggedUser{ID: "1", Email: "a@x.example", Phone: "555-0100", Note: "n1"},
		taggedUser{ID: "1", Email: "b@x.example", Phone: "555-0199", Note: "n2"})
	if err != nil {
		t.Fatal(err)
	}
	ev := trail.Event{Tenant: "acme", Actor: trail.Actor{Type: trail.ActorUser, ID: "42"}, Action: "user.update",
		Target: trail.Target{Type: "user", ID: "1"}, Changes: changes}
	if err := ev.Normalize(); err != nil {
		t.Fatal(err)
	}
	if err := p.Transform(ctx, &ev); err != nil {
		t.Fatal(err)
	}
	if err := ev.Validate(); err != nil {
		t.Fatalf("transformed event: %v", err)
	}
	byField := map[string]trail.Change{}
	for _, c := range ev.Changes {
		if c.Protect != "" {
			t.Errorf("%s: marker not cleared", c.Field)
		}
		byField[c.Field] = c
	}
	if got := string(byField["email"].New); got != `"`+p.HashFor("acme", "b@x.example")+`"` {
		t.Errorf("email: %s", got)
	}
	if !strings.HasPrefix(string(byField["phone"].New), `"`+EncPrefix) || !strings.HasPrefix(string(byField["phone"].Old), `"`+EncPrefix) {
		t.Errorf("phone not encrypted: %s", byField["phone"].New)
	}
	if c := byField["note"]; !c.Redacted || c.New != nil {
		t.Errorf("note: the policy's redact should win: %+v", c)
	}
	if err := p.Reveal(ctx, &ev); err != nil {
		t.Fatal(err)
	}
	for _, c := range ev.Changes {
		if c.Field == "phone" && string(c.New) != `"555-0199"` {
			t.Errorf("phone revealed as %s", c.New)
		}
	}

	bad := trail.Event{Tenant: "acme", Actor: trail.Actor{Type: trail.ActorUser, ID: "42"}, Action: "user.update",
		Changes: []trail.Change{{Field: "x", New: []byte(`"v"`), Protect: "rot13"}}}
	bad.Normalize()
	var ve *trail.ValidationError
	if err := p.Transform(ctx, &bad); !errors.As(err, &ve) || ve.Field != "changes[0].protect" {
		t.Fatalf("unknown marker: %v", err)
	}
}

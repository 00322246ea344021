package trail_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailprivacy"
	"github.com/trailhq/trail/trailtest"
)

// TestPrepareChecksPlaintextBeforeEncryption: with the privacy layer, the
// personal fields reach Validate encrypted, so the IP and control-character
// rules must hold on the plaintext, before the Transform.
func TestPrepareChecksPlaintextBeforeEncryption(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kms, err := trailprivacy.NewLocalKMS(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	p, err := trailprivacy.New(ctx, trailprivacy.Config{KMS: kms, Keys: trailprivacy.NewMemoryKeyStore()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := trail.NewClient(trailtest.NewStore(), &trail.Config{Transform: p})
	if err != nil {
		t.Fatal(err)
	}
	ev := func(a trail.Actor) trail.Event {
		return trail.Event{Tenant: "acme", Action: "user.login", Actor: a}
	}
	for _, tt := range []struct {
		actor trail.Actor
		field string
	}{
		{trail.Actor{Type: trail.ActorUser, ID: "42", IP: "999.1.1.1"}, "actor.ip"},
		{trail.Actor{Type: trail.ActorUser, ID: "42", Email: "ada@acme.example\n"}, "actor.email"},
		{trail.Actor{Type: trail.ActorUser, ID: "42", Name: "Ada\r"}, "actor.name"},
		{trail.Actor{Type: trail.ActorUser, ID: "42", UserAgent: "curl\n"}, "actor.user_agent"},
		{trail.Actor{Type: trail.ActorUser, ID: "42", OnBehalfOf: &trail.Actor{Type: trail.ActorUser, ID: "7", IP: "1.2.3.4.5"}}, "actor.on_behalf_of.ip"},
	} {
		_, err := c.Prepare(ctx, ev(tt.actor))
		var ve *trail.ValidationError
		if !errors.As(err, &ve) || ve.Field != tt.field {
			t.Errorf("Prepare(%+v) = %v; want a validation error for %s", tt.actor, err, tt.field)
		}
	}
	got, err := c.Prepare(ctx, ev(trail.Actor{Type: trail.ActorUser, ID: "42", IP: "2001:db8::7", Email: "ada@acme.example"}))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got.Actor.IP, "enc:v1:") || !strings.HasPrefix(got.Actor.Email, "enc:v1:") {
		t.Fatalf("personal fields not encrypted: %+v", got.Actor)
	}
	// The stored form normalizes and validates again (a re-import, a retry).
	if err := got.Normalize(); err != nil {
		t.Fatalf("Normalize of the encrypted event: %v", err)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("Validate of the encrypted event: %v", err)
	}
}

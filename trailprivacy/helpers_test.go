package trailprivacy

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

func testKMS(t testing.TB, fill byte) *LocalKMS {
	t.Helper()
	k, err := NewLocalKMS(bytes.Repeat([]byte{fill}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newTestPrivacy(t testing.TB, policy string) (*Privacy, *MemoryKeyStore) {
	t.Helper()
	var pol *Policy
	if policy != "" {
		var err error
		if pol, err = ParsePolicy(policy); err != nil {
			t.Fatal(err)
		}
	}
	ks := NewMemoryKeyStore()
	p, err := New(context.Background(), Config{Policy: pol, KMS: testKMS(t, 1), Keys: ks})
	if err != nil {
		t.Fatal(err)
	}
	return p, ks
}

// sampleEvent carries a known email, password and token, and personal fields.
func sampleEvent(t testing.TB) trail.Event {
	t.Helper()
	ev := trail.Event{
		ID:         uuid.MustParse("01936a1e-4f2b-7c3d-8e9f-0a1b2c3d4e5f"),
		OccurredAt: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC),
		Tenant:     "acme",
		Actor: trail.Actor{Type: trail.ActorUser, ID: "42", Name: "Alice Liddell", Email: "alice@example.com",
			IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)",
			OnBehalfOf: &trail.Actor{Type: trail.ActorUser, ID: "7", Name: "Bob Support", Email: "bob@example.com"}},
		Action:      "user.update",
		Target:      trail.Target{Type: "user", ID: "17", Name: "Carol Customer"},
		Description: "Updated a user",
		Changes: []trail.Change{
			trail.Changed("plan", "free", "pro"),
			trail.Changed("password", "hunter2-old", "S3cret-Passw0rd!"),
			trail.Changed("settings", map[string]any{"theme": "dark"}, map[string]any{"theme": "light", "api_token": "tok_live_ABCDEF123456"}),
			trail.Changed("age", 41, 42),
		},
		Metadata: map[string]any{
			"reason": "support ticket",
			"auth":   map[string]any{"access_token": "tok_live_ABCDEF123456", "method": "password"},
			"contact": map[string]any{
				"email": "carol@example.com",
			},
			"card": map[string]any{"number": "4111111111111111", "brand": "visa"},
		},
		Source: "billing",
	}
	if err := ev.Normalize(); err != nil {
		t.Fatal(err)
	}
	return ev
}

func mustJSONBytes(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

package trail_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailtest"
)

// TestNewClientRefusesPlaintextByDefault: a client with no privacy layer and
// no explicit Plaintext is refused with an error naming the fixes.
func TestNewClientRefusesPlaintextByDefault(t *testing.T) {
	for _, cfg := range []*trail.Config{nil, {Source: "billing"}, {NoDefaultRedaction: true}} {
		_, err := trail.NewClient(trailtest.NewStore(), cfg)
		if !errors.Is(err, trail.ErrNoPrivacy) {
			t.Fatalf("NewClient(%+v) = %v, want ErrNoPrivacy", cfg, err)
		}
		for _, want := range []string{"trailpgx.NewClient", "trailsqlite.NewClient", "Config.Transform", "Config.Plaintext"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %s", err, want)
			}
		}
	}
}

func secretEvent() trail.Event {
	return trail.Event{
		Action: "user.update",
		Target: trail.Target{Type: "user", ID: "7"},
		Changes: []trail.Change{
			trail.Changed("password_hash", "a", "hunter2"),
			trail.Changed("profile", nil, map[string]any{"apiKey": "k-123", "city": "Oslo", "nested": []any{map[string]any{"session_id": "s-9"}}}),
			trail.Changed("plan", "free", "pro"),
		},
		Metadata: map[string]any{"password": "p-1", "X-Auth-Token": "t-1", "ticket": "OPS-311", "deep": map[string]any{"card_number": "4111"}},
	}
}

// TestPlaintextClientRedactsSecrets: Plaintext keeps personal fields but
// still applies the default deny-list, to change fields, to keys inside
// change values and to metadata at any depth.
func TestPlaintextClientRedactsSecrets(t *testing.T) {
	store := trailtest.NewStore()
	c, err := trail.NewClient(store, &trail.Config{Plaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := trail.WithTenant(context.Background(), "acme")
	ctx = trail.WithActor(ctx, trail.Actor{Type: trail.ActorUser, ID: "1", Email: "a@example.com"})
	ev := secretEvent()
	res, err := c.Record(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	got, err := store.Get(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	for _, secret := range []string{"hunter2", "k-123", "s-9", "p-1", "t-1", "4111"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("secret %q stored: %s", secret, b)
		}
	}
	for _, kept := range []string{"Oslo", "OPS-311", "a@example.com", `"pro"`} {
		if !strings.Contains(string(b), kept) {
			t.Errorf("%s lost: %s", kept, b)
		}
	}
	if !got.Changes[0].Redacted || got.Changes[0].Field != "password_hash" {
		t.Errorf("password_hash change: %+v", got.Changes[0])
	}
	// The caller's event is not modified.
	if string(ev.Changes[0].New) != `"hunter2"` || ev.Metadata["password"] != "p-1" {
		t.Errorf("Record modified the caller's event: %+v", ev)
	}

	// NoDefaultRedaction is the explicit way to keep them.
	raw, err := trail.NewClient(store, &trail.Config{Plaintext: true, NoDefaultRedaction: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err = raw.Record(ctx, secretEvent())
	if err != nil {
		t.Fatal(err)
	}
	got, _ = store.Get(ctx, res.ID)
	if b, _ := json.Marshal(got); !strings.Contains(string(b), "hunter2") {
		t.Errorf("NoDefaultRedaction still redacted: %s", b)
	}
}

// TestRedactSecretsIdempotent: redacting twice is redacting once.
func TestRedactSecretsIdempotent(t *testing.T) {
	ev := secretEvent()
	ev.Tenant = "acme"
	ev.Actor = trail.Actor{Type: trail.ActorSystem}
	if err := ev.Normalize(); err != nil {
		t.Fatal(err)
	}
	if err := trail.RedactSecrets(&ev); err != nil {
		t.Fatal(err)
	}
	once, _ := json.Marshal(ev)
	if err := trail.RedactSecrets(&ev); err != nil {
		t.Fatal(err)
	}
	twice, _ := json.Marshal(ev)
	if string(once) != string(twice) {
		t.Fatalf("not idempotent:\n%s\n%s", once, twice)
	}
}

// TestTenantGuards: the tenant comes from the context or the event, never
// silently from neither, and the two never disagree.
func TestTenantGuards(t *testing.T) {
	store := trailtest.NewStore()
	c, err := trail.NewClient(store, &trail.Config{Plaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	base := trail.WithActor(context.Background(), trail.Actor{Type: trail.ActorUser, ID: "1"})
	cases := []struct {
		name string
		ctx  context.Context
		ev   trail.Event
		want error
	}{
		{"no tenant", base, trail.Event{Action: "user.login"}, trail.ErrNoTenant},
		{"empty context tenant", trail.WithTenant(base, ""), trail.Event{Action: "user.login"}, trail.ErrNoTenant},
		{"conflict", trail.WithTenant(base, "acme"), trail.Event{Tenant: "globex", Action: "user.login"}, trail.ErrTenantMismatch},
		{"from context", trail.WithTenant(base, "acme"), trail.Event{Action: "user.login"}, nil},
		{"same in both", trail.WithTenant(base, "acme"), trail.Event{Tenant: "acme", Action: "user.login"}, nil},
		{"event only", base, trail.Event{Tenant: "acme", Action: "user.login"}, nil},
		{"platform", trail.WithPlatform(base), trail.Event{Action: "platform.deploy"}, nil},
		{"platform acting on a tenant", trail.WithPlatform(base), trail.Event{Tenant: "acme", Action: "tenant.suspend"}, nil},
	}
	stored := 0
	for _, tc := range cases {
		_, err := c.Record(tc.ctx, tc.ev)
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != nil && (!errors.Is(err, tc.want) || !errors.Is(err, trail.ErrInvalid)):
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		case tc.want == nil:
			stored++
		}
	}
	p, err := store.Query(context.Background(), trail.Query{AllTenants: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != stored {
		t.Fatalf("%d events stored, want %d", len(p.Events), stored)
	}
	for _, q := range []trail.Query{{}, {Tenant: "acme", AllTenants: true}} {
		if _, err := store.Query(context.Background(), q); !errors.Is(err, trail.ErrInvalidQuery) || !strings.Contains(err.Error(), "tenant") {
			t.Errorf("Query(%+v) = %v, want an invalid-query error about the tenant", q, err)
		}
	}
}

// FuzzRedactSecrets: whatever the metadata and change values, after
// RedactSecrets no deny-listed key holds anything but "[redacted]", the
// event still validates, and a second pass changes nothing.
func FuzzRedactSecrets(f *testing.F) {
	f.Add(`{"password":"x","a":{"apiKey":[1,{"token":2}]}}`, "user.password", `{"Session-Id":"s"}`)
	f.Add(`{"ticket":"OPS-311"}`, "plan", `"pro"`)
	f.Add(`{"pass\u0077ord":"x"}`, "card.number", `[{"cvv":123}]`)
	f.Fuzz(func(t *testing.T, meta, field, value string) {
		ev := trail.Event{Tenant: "acme", Action: "user.update", Actor: trail.Actor{Type: trail.ActorSystem}}
		if err := json.Unmarshal([]byte(meta), &ev.Metadata); err != nil {
			return
		}
		if !json.Valid([]byte(value)) {
			return
		}
		ev.Changes = []trail.Change{{Field: field, New: json.RawMessage(value)}}
		if ev.Normalize() != nil || ev.Validate() != nil {
			return
		}
		if err := trail.RedactSecrets(&ev); err != nil {
			t.Fatal(err)
		}
		var check func(v any)
		check = func(v any) {
			switch x := v.(type) {
			case map[string]any:
				for k, e := range x {
					if deny(k) && e != trail.Redacted {
						t.Fatalf("key %q keeps %v", k, e)
					}
					check(e)
				}
			case []any:
				for _, e := range x {
					check(e)
				}
			}
		}
		check(ev.Metadata)
		for _, c := range ev.Changes {
			if c.Redacted {
				continue
			}
			var v any
			if err := json.Unmarshal(c.New, &v); err != nil {
				t.Fatal(err)
			}
			check(v)
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("redacted event does not validate: %v", err)
		}
		once, _ := json.Marshal(ev)
		if err := trail.RedactSecrets(&ev); err != nil {
			t.Fatal(err)
		}
		if twice, _ := json.Marshal(ev); string(once) != string(twice) {
			t.Fatalf("second pass changed the event")
		}
	})
}

// deny is the deny-list match, through the public API: a one-key metadata
// map is redacted iff its key is deny-listed.
func deny(k string) bool {
	ev := trail.Event{Metadata: map[string]any{k: "v"}}
	_ = trail.RedactSecrets(&ev)
	return ev.Metadata[k] == trail.Redacted
}

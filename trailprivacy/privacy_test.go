package trailprivacy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/trailhq/trail"
)

const piiPolicy = `
contact.email  pii
metadata.contact.email pii
age            pii
plan           hmac
`

func TestTransformHidesSecrets(t *testing.T) {
	t.Parallel()
	p, _ := newTestPrivacy(t, piiPolicy)
	ev := sampleEvent(t)
	if err := p.Transform(context.Background(), &ev); err != nil {
		t.Fatal(err)
	}
	b := mustJSONBytes(t, ev)
	for _, secret := range []string{"alice@example.com", "bob@example.com", "carol@example.com", "hunter2", "S3cret-Passw0rd!",
		"tok_live_ABCDEF123456", "4111111111111111", "Alice Liddell", "Carol Customer", "203.0.113.7", "Mozilla", `"pro"`} {
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("stored event contains %q in plaintext:\n%s", secret, b)
		}
	}
	if err := ev.Validate(); err != nil {
		t.Errorf("transformed event does not validate: %v", err)
	}
}

func TestTransformActions(t *testing.T) {
	t.Parallel()
	p, _ := newTestPrivacy(t, piiPolicy+"\nreason omit\n")
	ev := sampleEvent(t)
	if err := p.Transform(context.Background(), &ev); err != nil {
		t.Fatal(err)
	}
	byField := map[string]trail.Change{}
	for _, c := range ev.Changes {
		byField[c.Field] = c
	}
	if c := byField["password"]; !c.Redacted || c.Old != nil || c.New != nil {
		t.Errorf("password change = %+v, want redacted without values", c)
	}
	if c := byField["plan"]; string(c.New) != `"`+p.HashFor("acme", "pro")+`"` || string(c.Old) != `"`+p.HashFor("acme", "free")+`"` {
		t.Errorf("plan change = %s -> %s, want HashFor values", c.Old, c.New)
	}
	if c := byField["settings"]; string(c.Old) != `{"theme":"dark"}` || string(c.New) != `{"api_token":"[redacted]","theme":"light"}` {
		t.Errorf("settings change = %s -> %s, want api_token redacted inside", c.Old, c.New)
	}
	if c := byField["age"]; !strings.HasPrefix(string(c.Old), `"enc:v1:`) {
		t.Errorf("age change old = %s, want encrypted", c.Old)
	}
	if _, ok := ev.Metadata["reason"]; ok {
		t.Errorf("metadata.reason not omitted")
	}
	if got := ev.Metadata["card"].(map[string]any); got["number"] != Redacted || got["brand"] != Redacted {
		t.Errorf("metadata.card = %v, want every value %q", got, Redacted)
	}
	auth := ev.Metadata["auth"].(map[string]any)
	if auth["access_token"] != Redacted || auth["method"] != "password" {
		t.Errorf("metadata.auth = %v", auth)
	}
	for name, v := range map[string]string{"actor.name": ev.Actor.Name, "actor.email": ev.Actor.Email, "actor.ip": ev.Actor.IP,
		"actor.user_agent": ev.Actor.UserAgent, "obo.name": ev.Actor.OnBehalfOf.Name, "target.name": ev.Target.Name} {
		if !strings.HasPrefix(v, EncPrefix) || !IsStored(v) {
			t.Errorf("%s = %q, want enc:v1 form", name, v)
		}
	}
	if ev.Actor.ID != "42" || ev.Target.ID != "17" {
		t.Errorf("IDs must stay readable: %v %v", ev.Actor, ev.Target)
	}
}

func TestTransformDoesNotTouchCaller(t *testing.T) {
	t.Parallel()
	p, _ := newTestPrivacy(t, "")
	ev := sampleEvent(t)
	orig := mustJSONBytes(t, ev.Changes)
	obo := *ev.Actor.OnBehalfOf
	cp := ev
	if err := p.Transform(context.Background(), &cp); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(orig, mustJSONBytes(t, ev.Changes)) || *ev.Actor.OnBehalfOf != obo {
		t.Fatal("Transform modified the caller's changes or on_behalf_of")
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	p, _ := newTestPrivacy(t, piiPolicy)
	ctx := context.Background()
	ev := sampleEvent(t)
	stored := ev
	if err := p.Transform(ctx, &stored); err != nil {
		t.Fatal(err)
	}
	got := stored
	if err := p.Reveal(ctx, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Actor, ev.Actor) {
		t.Errorf("actor = %+v\nwant %+v", got.Actor, ev.Actor)
	}
	if got.Target != ev.Target {
		t.Errorf("target = %+v, want %+v", got.Target, ev.Target)
	}
	byField := map[string]trail.Change{}
	for _, c := range got.Changes {
		byField[c.Field] = c
	}
	if c := byField["age"]; string(c.Old) != "41" || string(c.New) != "42" {
		t.Errorf("age = %s -> %s, want 41 -> 42 with its type", c.Old, c.New)
	}
	if c := byField["contact.email"]; c.Field != "" {
		t.Errorf("unexpected change %v", c)
	}
	if e := got.Metadata["contact"].(map[string]any)["email"]; e != "carol@example.com" {
		t.Errorf("metadata.contact.email = %v", e)
	}
	// Revealing what is already revealed changes nothing.
	again := got
	if err := p.Reveal(ctx, &again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mustJSONBytes(t, again), mustJSONBytes(t, got)) {
		t.Error("second Reveal changed the event")
	}
}

func TestTransformIdempotent(t *testing.T) {
	t.Parallel()
	p, _ := newTestPrivacy(t, piiPolicy)
	ctx := context.Background()
	ev := sampleEvent(t)
	if err := p.Transform(ctx, &ev); err != nil {
		t.Fatal(err)
	}
	once := mustJSONBytes(t, ev)
	if err := p.Transform(ctx, &ev); err != nil {
		t.Fatal(err)
	}
	if twice := mustJSONBytes(t, ev); !bytes.Equal(once, twice) {
		t.Fatalf("second Transform changed the event:\n%s\n%s", once, twice)
	}
	// Another deployment's server (same keys) re-applying at ingest leaves it too.
	q, _ := newTestPrivacy(t, "")
	_ = q
}

func TestTamperedAndMovedCiphertext(t *testing.T) {
	t.Parallel()
	p, _ := newTestPrivacy(t, piiPolicy)
	ctx := context.Background()
	fresh := func() trail.Event {
		ev := sampleEvent(t)
		if err := p.Transform(ctx, &ev); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	other := sampleEvent(t)
	other.Actor = trail.Actor{Type: trail.ActorUser, ID: "99", Name: "Mallory", Email: "m@example.com"}
	if err := p.Transform(ctx, &other); err != nil {
		t.Fatal(err)
	}
	flip := func(s string) string {
		b := []byte(s)
		i := len(b) - 5
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	cases := []struct {
		name  string
		edit  func(ev *trail.Event)
		field string
	}{
		{"flipped byte in actor.email", func(ev *trail.Event) { ev.Actor.Email = flip(ev.Actor.Email) }, "actor.email"},
		{"name moved to email", func(ev *trail.Event) { ev.Actor.Email = ev.Actor.Name }, "actor.email"},
		{"target name moved to actor name", func(ev *trail.Event) { ev.Actor.Name = ev.Target.Name }, "actor.name"},
		{"another actor's name", func(ev *trail.Event) { ev.Actor.Name = other.Actor.Name }, "actor.name"},
		{"another tenant", func(ev *trail.Event) { ev.Tenant = "globex" }, "actor.name"},
		{"malformed enc value", func(ev *trail.Event) { ev.Actor.IP = "enc:v1:!!:zz" }, "actor.ip"},
		{"pii change old moved to new", func(ev *trail.Event) {
			for i := range ev.Changes {
				if ev.Changes[i].Field == "age" {
					ev.Changes[i].New = ev.Changes[i].Old
				}
			}
		}, "changes[age].new"},
		{"metadata value edited", func(ev *trail.Event) {
			c := ev.Metadata["contact"].(map[string]any)
			c["email"] = flip(c["email"].(string))
		}, "metadata.contact.email"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := fresh()
			tc.edit(&ev)
			err := p.Reveal(ctx, &ev)
			if !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("Reveal = %v, want ErrTampered naming %s", err, tc.field)
			}
		})
	}
}

func TestForget(t *testing.T) {
	t.Parallel()
	p, ks := newTestPrivacy(t, piiPolicy)
	ctx := context.Background()
	ev := sampleEvent(t)
	if err := p.Transform(ctx, &ev); err != nil {
		t.Fatal(err)
	}
	storedJSON := mustJSONBytes(t, ev)

	if err := p.Forget(ctx, "acme", "user:nobody"); !errors.Is(err, ErrUnknownSubject) {
		t.Fatalf("Forget unknown = %v, want ErrUnknownSubject", err)
	}
	if err := p.Forget(ctx, "globex", "user:42"); !errors.Is(err, ErrUnknownSubject) {
		t.Fatalf("Forget in another tenant = %v, want ErrUnknownSubject", err)
	}
	if err := p.Forget(ctx, "", rootSubject); !errors.Is(err, ErrUnknownSubject) {
		t.Fatalf("Forget of the HMAC root = %v, want refused", err)
	}
	if err := p.Forget(ctx, "acme", "user:42"); err != nil {
		t.Fatal(err)
	}
	if err := p.Forget(ctx, "acme", "user:42"); !errors.Is(err, ErrAlreadyForgotten) {
		t.Fatalf("second Forget = %v, want ErrAlreadyForgotten", err)
	}
	got := ev
	if err := p.Reveal(ctx, &got); err != nil {
		t.Fatal(err)
	}
	a := got.Actor
	if a.Name != Erased || a.Email != Erased || a.IP != Erased || a.UserAgent != Erased {
		t.Errorf("forgotten actor = %+v, want every personal field %q", a, Erased)
	}
	if got.Actor.OnBehalfOf.Name != "Bob Support" || got.Target.Name != "Carol Customer" {
		t.Errorf("other subjects must stay readable: %+v %+v", got.Actor.OnBehalfOf, got.Target)
	}
	if got.Actor.ID != "42" || got.ID != ev.ID {
		t.Errorf("the event and its actor ID must remain")
	}
	if !bytes.Equal(storedJSON, mustJSONBytes(t, ev)) {
		t.Error("Forget or Reveal rewrote the stored event")
	}
	// Forgetting the target erases the target name and the pii values.
	if err := p.Forget(ctx, "acme", "user:17"); err != nil {
		t.Fatal(err)
	}
	got = ev
	if err := p.Reveal(ctx, &got); err != nil {
		t.Fatal(err)
	}
	if got.Target.Name != Erased || got.Metadata["contact"].(map[string]any)["email"] != Erased {
		t.Errorf("target after forget = %+v, metadata %v", got.Target, got.Metadata["contact"])
	}
	for _, c := range got.Changes {
		if c.Field == "age" && (string(c.Old) != `"[erased]"` || string(c.New) != `"[erased]"`) {
			t.Errorf("age after forget = %s -> %s", c.Old, c.New)
		}
	}
	// The key material is gone from the key store, a tombstone remains.
	k, err := ks.Get(ctx, "acme", "user:42", mustKeyID(t, ev.Actor.Name))
	if err != nil || !k.Destroyed() || k.Wrapped != nil {
		t.Fatalf("key after forget = %+v, %v", k, err)
	}
	// A new event for the forgotten subject gets a new key, readable again;
	// the old events stay erased.
	ev2 := sampleEvent(t)
	if err := p.Transform(ctx, &ev2); err != nil {
		t.Fatal(err)
	}
	if mustKeyID(t, ev2.Actor.Name) == mustKeyID(t, ev.Actor.Name) {
		t.Fatal("a forgotten subject's key was reused")
	}
	if err := p.Reveal(ctx, &ev2); err != nil || ev2.Actor.Name != "Alice Liddell" {
		t.Fatalf("new event after forget: %v %q", err, ev2.Actor.Name)
	}
	got = ev
	if err := p.Reveal(ctx, &got); err != nil || got.Actor.Name != Erased {
		t.Fatalf("old event after a new key: %v %q", err, got.Actor.Name)
	}
}

func mustKeyID(t testing.TB, s string) string {
	t.Helper()
	st, err := ParseStored(s)
	if err != nil {
		t.Fatal(err)
	}
	return st.KeyID
}

func TestForgetSeenByAnotherProcess(t *testing.T) {
	t.Parallel()
	// Two Privacy values over one key store stand for two server replicas.
	ctx := context.Background()
	ks := NewMemoryKeyStore()
	kms := testKMS(t, 1)
	a, err := New(ctx, Config{KMS: kms, Keys: ks})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(ctx, Config{KMS: kms, Keys: ks, CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	if a.HashFor("acme", "x") != b.HashFor("acme", "x") {
		t.Fatal("replicas over one key store must share pseudonyms")
	}
	ev := sampleEvent(t)
	if err := a.Transform(ctx, &ev); err != nil {
		t.Fatal(err)
	}
	if err := a.Forget(ctx, "acme", "user:42"); err != nil {
		t.Fatal(err)
	}
	got := ev
	if err := b.Reveal(ctx, &got); err != nil || got.Actor.Email != Erased {
		t.Fatalf("other replica after forget: %v %q", err, got.Actor.Email)
	}
}

func TestWrongMasterKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ks := NewMemoryKeyStore()
	if _, err := New(ctx, Config{KMS: testKMS(t, 1), Keys: ks}); err != nil {
		t.Fatal(err)
	}
	_, err := New(ctx, Config{KMS: testKMS(t, 2), Keys: ks})
	if !errors.Is(err, ErrWrongMasterKey) || !strings.Contains(err.Error(), testKMS(t, 2).KeyID()) {
		t.Fatalf("New with another master key = %v, want ErrWrongMasterKey naming it", err)
	}
	// A key that claims the right ID but does not authenticate (tampered row).
	k, _ := ks.Current(ctx, rootTenant, rootSubject)
	k.Wrapped[len(k.Wrapped)-1] ^= 1
	ks.Replace(ctx, k, k.KEKID)
	if err := CheckMasterKey(ctx, ks, testKMS(t, 1)); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("CheckMasterKey on a tampered root = %v", err)
	}
	if _, err := New(ctx, Config{Keys: ks}); err == nil {
		t.Fatal("New without a KMS must fail")
	}
}

func TestRewrap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	oldK, newK := testKMS(t, 1), testKMS(t, 2)
	p, ks := newTestPrivacy(t, piiPolicy)
	ev := sampleEvent(t)
	if err := p.Transform(ctx, &ev); err != nil {
		t.Fatal(err)
	}
	hash := p.HashFor("acme", "pro")
	before, _ := ks.List(ctx, "", "", 0)
	n, err := p.Rewrap(ctx, oldK, newK)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(before) || n != 4 { // root, user:42, user:7, user:17
		t.Fatalf("rewrapped %d keys, store had %d", n, len(before))
	}
	if n, err := RewrapKeys(ctx, ks, oldK, newK); err != nil || n != 0 {
		t.Fatalf("second rewrap = %d, %v; want 0 (resumable)", n, err)
	}
	if _, err := New(ctx, Config{KMS: oldK, Keys: ks}); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("old key after rotation = %v, want ErrWrongMasterKey", err)
	}
	q, err := New(ctx, Config{KMS: newK, Keys: ks})
	if err != nil {
		t.Fatal(err)
	}
	got := ev
	if err := q.Reveal(ctx, &got); err != nil || got.Actor.Email != "alice@example.com" {
		t.Fatalf("reveal after rotation: %v %q", err, got.Actor.Email)
	}
	if q.HashFor("acme", "pro") != hash {
		t.Fatal("pseudonyms changed with the master key")
	}
	if _, err := RewrapKeys(ctx, ks, testKMS(t, 3), testKMS(t, 4)); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("rewrap from a key that wrapped nothing = %v", err)
	}
}

func TestHashForMatchesStored(t *testing.T) {
	t.Parallel()
	p, _ := newTestPrivacy(t, "metadata.customer_ref hmac\n")
	ev := sampleEvent(t)
	ev.Metadata["customer_ref"] = "C-1001"
	if err := p.Transform(context.Background(), &ev); err != nil {
		t.Fatal(err)
	}
	if got, want := ev.Metadata["customer_ref"], p.HashFor("acme", "C-1001"); got != want {
		t.Fatalf("stored %v, HashFor %v", got, want)
	}
	if p.HashFor("acme", "C-1001") == p.HashFor("globex", "C-1001") {
		t.Fatal("HMAC keys must differ per tenant")
	}
	b, _ := json.Marshal(ev)
	if bytes.Contains(b, []byte("C-1001")) {
		t.Fatal("hmac value stored in plaintext")
	}
}

func TestMetadataObjects(t *testing.T) {
	t.Parallel()
	p, _ := newTestPrivacy(t, "metadata.address pii\nmetadata.secrets redact\nmetadata.card.number hmac\n")
	ctx := context.Background()
	ev := sampleEvent(t)
	ev.Metadata["address"] = map[string]any{"city": "Paris", "zip": "75001", "lines": []any{"1 rue X", json.Number("2")}}
	ev.Metadata["secrets"] = map[string]any{"a": "b"}
	ev.Metadata["list"] = []any{map[string]any{"password": "pw1", "name": "x"}}
	if err := ev.Normalize(); err != nil {
		t.Fatal(err)
	}
	want := mustJSONBytes(t, ev.Metadata["address"])
	stored := ev
	if err := p.Transform(ctx, &stored); err != nil {
		t.Fatal(err)
	}
	if s, ok := stored.Metadata["address"].(string); !ok || !strings.HasPrefix(s, EncPrefix) {
		t.Fatalf("address = %v, want one encrypted value", stored.Metadata["address"])
	}
	if stored.Metadata["secrets"] != Redacted {
		t.Fatalf("secrets = %v, want the whole object %q", stored.Metadata["secrets"], Redacted)
	}
	card := stored.Metadata["card"].(map[string]any)
	if card["number"] != p.HashFor("acme", "4111111111111111") || card["brand"] != Redacted {
		t.Fatalf("card = %v", card)
	}
	if el := stored.Metadata["list"].([]any)[0].(map[string]any); el["password"] != Redacted || el["name"] != "x" {
		t.Fatalf("list element = %v", el)
	}
	if err := stored.Validate(); err != nil {
		t.Fatal(err)
	}
	got := stored
	if err := p.Reveal(ctx, &got); err != nil {
		t.Fatal(err)
	}
	if b := mustJSONBytes(t, got.Metadata["address"]); !bytes.Equal(b, want) {
		t.Fatalf("revealed address = %s, want %s", b, want)
	}
}

func TestTransformBadInput(t *testing.T) {
	t.Parallel()
	p, ks := newTestPrivacy(t, "")
	ctx := context.Background()
	for name, edit := range map[string]func(*trail.Event){
		"bad tenant":       func(ev *trail.Event) { ev.Tenant = "bad tenant" },
		"long name":        func(ev *trail.Event) { ev.Actor.Name = strings.Repeat("n", trail.MaxNameLen+1) },
		"invalid utf8":     func(ev *trail.Event) { ev.Actor.Email = "a\xff@x" },
		"actor type empty": func(ev *trail.Event) { ev.Actor.Type = "" },
	} {
		ev := sampleEvent(t)
		ev.Tenant = "bad-input"
		edit(&ev)
		if err := p.Transform(ctx, &ev); !errors.Is(err, trail.ErrInvalid) {
			t.Errorf("%s: Transform = %v, want a validation error", name, err)
		}
	}
	if _, err := ks.Current(ctx, "bad tenant", "user:42"); err == nil {
		t.Error("a key was created for an invalid tenant")
	}
}

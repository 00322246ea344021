package trailprivacy

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/trailhq/trail"
)

// The actor's name and e-mail get pseudonyms before they are encrypted: the
// first 16 bytes of HashFor's HMAC, per tenant, kept through a second
// Transform (the plaintext is gone by then), and none without keys.
func TestTransformLookup(t *testing.T) {
	t.Parallel()
	p, _ := newTestPrivacy(t, "")
	ctx := context.Background()
	ev := sampleEvent(t)
	if err := p.Transform(ctx, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Lookup.ActorEmail != p.Digest("acme", "alice@example.com") || ev.Lookup.ActorName != p.Digest("acme", "Alice Liddell") {
		t.Fatalf("lookup = %+v, want the digests of the actor's e-mail and name", ev.Lookup)
	}
	if ev.Lookup.ActorEmail.IsZero() || ev.Lookup.ActorEmail == p.Digest("globex", "alice@example.com") {
		t.Fatal("digests must be set and differ per tenant")
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(p.HashFor("acme", "alice@example.com"), HMACPrefix))
	if err != nil || [16]byte(raw[:16]) != ev.Lookup.ActorEmail {
		t.Fatalf("digest is not HashFor's HMAC cut to 16 bytes (%v)", err)
	}
	before := ev.Lookup
	if err := p.Transform(ctx, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Lookup != before {
		t.Fatalf("second Transform changed the lookup: %+v, want %+v", ev.Lookup, before)
	}

	plain, err := New(ctx, Config{Plaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	pe := sampleEvent(t)
	if err := plain.Transform(ctx, &pe); err != nil {
		t.Fatal(err)
	}
	if pe.Lookup != (trail.Lookup{}) || !plain.Digest("acme", "x").IsZero() {
		t.Fatalf("plaintext mode wrote digests %+v", pe.Lookup)
	}
}

// LookupActor replaces a query's plaintext name and e-mail by the tenant's
// pseudonyms, refuses a query without a tenant, and leaves a plaintext
// store's query as it is.
func TestLookupActor(t *testing.T) {
	t.Parallel()
	p, _ := newTestPrivacy(t, "")
	q := trail.Query{Tenant: "acme", ActorName: "Alice Liddell", ActorEmail: "alice@example.com"}
	if err := p.LookupActor(&q); err != nil {
		t.Fatal(err)
	}
	if q.ActorName != "" || q.ActorEmail != "" || q.ActorNameDigest != p.Digest("acme", "Alice Liddell") || q.ActorEmailDigest != p.Digest("acme", "alice@example.com") {
		t.Fatalf("query %+v, want the tenant's digests in place of the plaintext", q)
	}
	if err := p.LookupActor(&trail.Query{AllTenants: true, ActorEmail: "alice@example.com"}); !errors.Is(err, ErrLookupNeedsTenant) {
		t.Fatalf("no tenant: %v, want ErrLookupNeedsTenant", err)
	}
	plain, err := New(context.Background(), Config{Plaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	pq := trail.Query{AllTenants: true, ActorEmail: "alice@example.com"}
	if err := plain.LookupActor(&pq); err != nil || pq.ActorEmail != "alice@example.com" || !pq.ActorEmailDigest.IsZero() {
		t.Fatalf("plaintext mode: %v, %+v", err, pq)
	}
}

// BenchmarkDigest measures one search pseudonym; Transform computes two per
// event with a name and an e-mail (compare with BenchmarkTransform in the
// same run).
func BenchmarkDigest(b *testing.B) {
	p, _ := newTestPrivacy(b, "")
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Digest("acme", "alice@example.com")
	}
}

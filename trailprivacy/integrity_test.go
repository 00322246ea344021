package trailprivacy

import (
	"context"
	"testing"
	"time"

	"github.com/trailhq/trail"
)

// TestKeyAudit: an honest table passes; each edit is reported by kind and
// subject (the CLI's tests run the same edits on SQLite and PostgreSQL).
func TestKeyAudit(t *testing.T) {
	ctx := context.Background()
	kms, err := NewLocalKMS(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	ks := NewMemoryKeyStore()
	p, err := New(ctx, Config{KMS: kms, Keys: ks})
	if err != nil {
		t.Fatal(err)
	}
	var events []trail.Event
	for _, id := range []string{"1", "2"} {
		ev := trail.Event{Tenant: "acme", Actor: trail.Actor{Type: trail.ActorUser, ID: id, Email: id + "@example.com"}, Action: "user.update",
			Target: trail.Target{Type: "user", ID: id, Name: "n" + id}}
		if err := ev.Normalize(); err != nil {
			t.Fatal(err)
		}
		if err := p.Transform(ctx, &ev); err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	check := func(extra ...trail.Event) []KeyProblem {
		a := &KeyAudit{KMS: kms}
		for _, ev := range append(append([]trail.Event(nil), events...), extra...) {
			a.AddEvent(&ev)
		}
		ps, err := a.Check(ctx, ks)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	if ps := check(); len(ps) != 0 {
		t.Fatalf("honest table: %+v", ps)
	}
	// Swap the wrapped keys of user:1 and user:2.
	k1, _ := ks.Current(ctx, "acme", "user:1")
	k2, _ := ks.Current(ctx, "acme", "user:2")
	ks.Replace(ctx, SubjectKey{Tenant: "acme", Subject: "user:1", ID: k1.ID, KEKID: k1.KEKID, Wrapped: k2.Wrapped}, k1.KEKID)
	ks.Replace(ctx, SubjectKey{Tenant: "acme", Subject: "user:2", ID: k2.ID, KEKID: k2.KEKID, Wrapped: k1.Wrapped}, k2.KEKID)
	if ps := check(); len(ps) != 2 || ps[0].Kind != KeyDoesNotUnwrap || ps[0].Subject != "user:1" || ps[1].Subject != "user:2" {
		t.Fatalf("swapped: %+v", ps)
	}
	ks.Replace(ctx, k1, k1.KEKID)
	ks.Replace(ctx, k2, k2.KEKID)
	// An erasure without its event, then with it.
	if err := ks.Destroy(ctx, "acme", "user:1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if ps := check(); len(ps) != 1 || ps[0].Kind != KeyErasedWithoutForget || ps[0].Subject != "user:1" {
		t.Fatalf("destroyed without forget: %+v", ps)
	}
	forget := trail.Event{Tenant: "acme", Actor: trail.Actor{Type: trail.ActorSystem, ID: "cli"}, Action: ForgetAction, Target: trail.Target{Type: "user", ID: "1"}}
	forget.Normalize()
	if ps := check(forget); len(ps) != 0 {
		t.Fatalf("recorded erasure: %+v", ps)
	}
	forget2 := forget
	forget2.Target = trail.Target{Type: "user", ID: "2"}
	if ps := check(forget, forget2); len(ps) != 1 || ps[0].Kind != KeyForgetNotErased || ps[0].Subject != "user:2" {
		t.Fatalf("forget without erasure: %+v", ps)
	}
	// A key the events use, in no row.
	ks.mu.Lock()
	delete(ks.keys, [2]string{"acme", "user:2"})
	ks.mu.Unlock()
	if ps := check(forget); len(ps) != 1 || ps[0].Kind != KeyMissing || ps[0].Subject != "user:2" || ps[0].Events != 2 {
		t.Fatalf("deleted row: %+v", ps)
	}
}

package trailprivacy

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/trailhq/trail"
)

// pgKeyStore is a SQLKeyStore in a PostgreSQL schema of the test's own.
func pgKeyStore(t *testing.T) (*SQLKeyStore, func() int) {
	t.Helper()
	db := pgSchema(t)
	ctx := context.Background()
	var schema string
	if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	ks, err := NewSQLKeyStoreIn(db, schema)
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Init(ctx); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		t.Helper()
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM trail_subject_keys`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	return ks, count
}

// personEvent is an event by user id of tenant acme with a name and e-mail
// the privacy layer encrypts under the user's key.
func personEvent(t *testing.T, id int) trail.Event {
	t.Helper()
	ev := trail.Event{Tenant: "acme", Action: "user.login",
		Actor: trail.Actor{Type: trail.ActorUser, ID: fmt.Sprint(id), Name: fmt.Sprintf("Person %d", id), Email: fmt.Sprintf("p%d@example.com", id)}}
	if err := ev.Normalize(); err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestBatchStoresKeysAtFinish: under a Batch, the new subjects' keys are
// stored by finish, all of them and not before, each subject's events
// share its one key, and the events open with the stored keys, in this
// process and in another that never saw the batch.
func TestBatchStoresKeysAtFinish(t *testing.T) {
	ks, count := pgKeyStore(t)
	ctx := context.Background()
	p, err := New(ctx, Config{KMS: testKMS(t, 1), Keys: ks})
	if err != nil {
		t.Fatal(err)
	}
	base := count() // the root key New creates
	bctx, finish := p.Batch(ctx)
	var evs []trail.Event
	for i := range 30 {
		ev := personEvent(t, i%10)
		if err := p.Transform(bctx, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Actor.Email == fmt.Sprintf("p%d@example.com", i%10) {
			t.Fatalf("event %d: e-mail not encrypted", i)
		}
		evs = append(evs, ev)
	}
	if n := count() - base; n != 0 {
		t.Fatalf("%d keys stored before finish, want 0", n)
	}
	if err := finish(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count() - base; n != 10 {
		t.Fatalf("%d keys stored by finish, want 10 (one per subject)", n)
	}
	other, err := New(ctx, Config{KMS: testKMS(t, 1), Keys: ks}) // nothing cached
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range evs {
		for _, r := range []*Privacy{p, other} {
			got := ev
			if err := r.Reveal(ctx, &got); err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("p%d@example.com", i%10); got.Actor.Email != want {
				t.Fatalf("event %d revealed e-mail %q, want %q", i, got.Actor.Email, want)
			}
		}
	}
	// A second batch over the same subjects and one new: one key more.
	bctx, finish = p.Batch(ctx)
	for i := 5; i < 11; i++ {
		ev := personEvent(t, i)
		if err := p.Transform(bctx, &ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := finish(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count() - base; n != 11 {
		t.Fatalf("%d keys after a second batch, want 11", n)
	}
}

// TestBatchLostRace: when another writer stores a key for one of the
// batch's new subjects first, finish says to transform again, the other
// writer's key stays the subject's, and the batch transformed again opens.
func TestBatchLostRace(t *testing.T) {
	for name, ks := range map[string]func(t *testing.T) KeyStore{
		"memory":     func(t *testing.T) KeyStore { return NewMemoryKeyStore() },
		"postgresql": func(t *testing.T) KeyStore { ks, _ := pgKeyStore(t); return ks },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			keys := ks(t)
			p, err := New(ctx, Config{KMS: testKMS(t, 1), Keys: keys})
			if err != nil {
				t.Fatal(err)
			}
			rival, err := New(ctx, Config{KMS: testKMS(t, 1), Keys: keys})
			if err != nil {
				t.Fatal(err)
			}
			orig := []trail.Event{personEvent(t, 1), personEvent(t, 2)}
			bctx, finish := p.Batch(ctx)
			evs := append([]trail.Event(nil), orig...)
			for i := range evs {
				if err := p.Transform(bctx, &evs[i]); err != nil {
					t.Fatal(err)
				}
			}
			won := personEvent(t, 2)
			if err := rival.Transform(ctx, &won); err != nil { // stores user 2's key now
				t.Fatal(err)
			}
			if err := finish(ctx); !errors.Is(err, trail.ErrRetryBatch) {
				t.Fatalf("finish after a lost race: %v, want ErrRetryBatch", err)
			}
			live, err := keys.Current(ctx, "acme", "user:2")
			if err != nil {
				t.Fatal(err)
			}
			if got := won; rival.Reveal(ctx, &got) != nil || got.Actor.Email != "p2@example.com" {
				t.Fatalf("the rival's event does not open: %+v", got.Actor)
			}
			bctx, finish = p.Batch(ctx)
			evs = append([]trail.Event(nil), orig...)
			for i := range evs {
				if err := p.Transform(bctx, &evs[i]); err != nil {
					t.Fatal(err)
				}
			}
			if err := finish(ctx); err != nil {
				t.Fatalf("finish of the retry: %v", err)
			}
			again, err := keys.Current(ctx, "acme", "user:2")
			if err != nil || again.ID != live.ID {
				t.Fatalf("user 2's live key changed: %v %s → %s", err, live.ID, again.ID)
			}
			for i, ev := range evs {
				if err := rival.Reveal(ctx, &ev); err != nil {
					t.Fatal(err)
				}
				if want := fmt.Sprintf("p%d@example.com", i+1); ev.Actor.Email != want {
					t.Fatalf("retried event %d revealed %q, want %q", i, ev.Actor.Email, want)
				}
			}
		})
	}
}

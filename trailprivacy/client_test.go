package trailprivacy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

// memStore is a minimal trail.TxStore that keeps events as JSON, the way a
// real store keeps exactly what it was given.
type memStore struct {
	mu     sync.Mutex
	events map[uuid.UUID][]byte
}

func newMemStore() *memStore { return &memStore{events: map[uuid.UUID][]byte{}} }

func (s *memStore) Append(_ context.Context, events []trail.Event) ([]trail.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res := make([]trail.Result, len(events))
	for i := range events {
		ev := &events[i]
		res[i].ID = ev.ID
		if _, dup := s.events[ev.ID]; dup {
			res[i].Duplicate = true
			continue
		}
		b, err := json.Marshal(ev)
		if err != nil {
			return nil, err
		}
		s.events[ev.ID] = b
		res[i].RecordedAt = ev.RecordedAt
	}
	return res, nil
}

func (s *memStore) AppendTx(ctx context.Context, _ struct{}, events []trail.Event) ([]trail.Result, error) {
	return s.Append(ctx, events)
}

func (s *memStore) Get(_ context.Context, id uuid.UUID) (trail.Event, error) {
	s.mu.Lock()
	b, ok := s.events[id]
	s.mu.Unlock()
	if !ok {
		return trail.Event{}, trail.ErrNotFound
	}
	var ev trail.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		return ev, err
	}
	m, err := trail.DecodeMetadata(mustJSON(ev.Metadata))
	ev.Metadata = m
	return ev, err
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func (s *memStore) Query(context.Context, trail.Query) (trail.Page, error) {
	return trail.Page{}, fmt.Errorf("not implemented by the test store")
}

func (s *memStore) Counts(context.Context, trail.CountQuery) ([]trail.Count, error) {
	return nil, fmt.Errorf("not implemented by the test store")
}

func (s *memStore) Close() error { return nil }

func (s *memStore) dump() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []byte
	for _, b := range s.events {
		all = append(all, b...)
	}
	return all
}

// TestClientTransform records through trail.Client with the privacy layer
// as its Transformer: what the store keeps has no secret in plaintext,
// validates, and reads back after Reveal; after Forget the subject's event
// is still there, erased.
func TestClientTransform(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, _ := newTestPrivacy(t, piiPolicy)
	store := newMemStore()
	client, err := trail.NewClient(store, &trail.Config{Transform: p})
	if err != nil {
		t.Fatal(err)
	}
	ev := sampleEvent(t)
	ev.RecordedAt = time.Time{}
	res, err := client.Record(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	dump := store.dump()
	for _, secret := range []string{"alice@example.com", "S3cret-Passw0rd!", "tok_live_ABCDEF123456", "203.0.113.7"} {
		if bytes.Contains(dump, []byte(secret)) {
			t.Errorf("store holds %q in plaintext", secret)
		}
	}
	stored, err := store.Get(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := stored.Validate(); err != nil {
		t.Fatalf("stored event does not validate: %v", err)
	}
	got := stored
	if err := p.Reveal(ctx, &got); err != nil || got.Actor.Email != "alice@example.com" {
		t.Fatalf("Reveal = %v, %q", err, got.Actor.Email)
	}
	if err := p.Forget(ctx, "acme", "user:42"); err != nil {
		t.Fatal(err)
	}
	again, err := store.Get(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mustJSON(again), mustJSON(stored)) {
		t.Fatal("Forget changed the stored event")
	}
	if err := p.Reveal(ctx, &again); err != nil || again.Actor.Email != Erased {
		t.Fatalf("after Forget: %v, %q", err, again.Actor.Email)
	}
	// Plaintext over the limit is refused before encryption hides its size.
	long := sampleEvent(t)
	long.ID = uuid.Nil
	long.Actor.IP = string(bytes.Repeat([]byte("1"), 65))
	if _, err := client.Record(ctx, long); err == nil {
		t.Fatal("a 65-byte IP was accepted once encrypted")
	}
}

package trailseal

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

func TestKeyHistoryRotation(t *testing.T) {
	sk1, vk1, _ := GenerateSigningKey("h.example")
	sk2, vk2, _ := GenerateSigningKey("h.example")
	s1, _, _ := ParseSigningKey(sk1)
	s2, _, _ := ParseSigningKey(sk2)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := NewKeyHistory(vk1, time.Time{})
	if err := h.Rotate(s2, s2, vk2, t0); err == nil {
		t.Fatal("rotate signed by a key that is not current")
	}
	if err := h.Rotate(s1, s2, vk2, t0); err != nil {
		t.Fatal(err)
	}
	w, err := h.Trusted([]string{vk1})
	if err != nil || len(w) != 2 || w[0].Until != t0 || w[1].Since != t0 {
		t.Fatalf("trusted: %v %+v", err, w)
	}
	if w2, err := h.Trusted([]string{vk2}); err != nil || len(w2) != 1 {
		t.Fatalf("pinned to the second key: %v %d", err, len(w2))
	}
	if _, err := h.Trusted([]string{"other+00000000+AQ"}); !errors.Is(err, ErrKeyHistory) {
		t.Fatalf("nothing pinned: %v", err)
	}

	// Checkpoints verify under the key valid at their time.
	old, _ := SignCheckpoint(s1, "h.example", "acme", 1, tlog.Hash{}, t0.Add(-time.Hour))
	if k, err := SignedAt([]byte(old.Note), w, old.Time); err != nil || k != vk1 {
		t.Fatalf("old checkpoint: %q %v", k, err)
	}
	if _, err := SignedAt([]byte(old.Note), w, t0.Add(time.Hour)); err == nil || !strings.Contains(err.Error(), "not the signing key") {
		t.Fatalf("the retired key after its rotation: %v", err)
	}
	newer, _ := SignCheckpoint(s2, "h.example", "acme", 2, tlog.Hash{}, t0.Add(time.Hour))
	if _, err := SignedAt([]byte(newer.Note), w, t0.Add(-time.Hour)); err == nil {
		t.Fatal("the new key before its start")
	}

	// An edited statement, a moved time or a swapped key fails.
	for name, edit := range map[string]func(*KeyHistory){
		"key":       func(h *KeyHistory) { _, v, _ := GenerateSigningKey("h.example"); h.Keys[1].PublicKey = v },
		"time":      func(h *KeyHistory) { h.Keys[1].Since = t0.Add(time.Second); h.Keys[0].Until = h.Keys[1].Since },
		"statement": func(h *KeyHistory) { h.Keys[1].Rotation = "" },
		"gap":       func(h *KeyHistory) { h.Keys[0].Until = t0.Add(-time.Second) },
	} {
		c := &KeyHistory{Keys: append([]HistoryKey(nil), h.Keys...)}
		edit(c)
		if _, err := c.Trusted([]string{vk1}); !errors.Is(err, ErrKeyHistory) {
			t.Errorf("%s edited: %v", name, err)
		}
	}
}

// FuzzParseKeyHistory: parsing and walking any history never panics, and a
// history accepted from a pinned key starts at that key.
func FuzzParseKeyHistory(f *testing.F) {
	sk1, vk1, _ := GenerateSigningKey("h.example")
	sk2, vk2, _ := GenerateSigningKey("h.example")
	s1, _, _ := ParseSigningKey(sk1)
	s2, _, _ := ParseSigningKey(sk2)
	h := NewKeyHistory(vk1, time.Time{})
	h.Rotate(s1, s2, vk2, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b, _ := json.Marshal(h)
	f.Add(b)
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"public_key":"x","since":"2026-01-01T00:00:00Z"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseKeyHistory(b)
		if err != nil {
			return
		}
		w, err := h.Trusted([]string{vk1})
		if err == nil && (len(w) == 0 || w[0].Key != vk1) {
			t.Fatalf("trusted windows do not start at the pinned key: %+v", w)
		}
	})
}

package trailserver_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/trailseal"
)

// TestKeyHistoryEndpoint: GET /v1/keys/signing/history serves the key a
// verifier pins, and after a rotation the statement that vouches for the
// new key.
func TestKeyHistoryEndpoint(t *testing.T) {
	_, vkey, _ := trailseal.GenerateSigningKey(testOrigin)
	var in *trailserver.Integrity
	f := newFixture(t, backends[0], func(c *trailserver.Config) {
		in = &trailserver.Integrity{Log: c.Store.(trailseal.Store), Origin: testOrigin, PublicKey: vkey}
		c.Integrity = in
	})
	r := f.do("GET", "/v1/keys/signing/history", "readerA", nil)
	var h trailseal.KeyHistory
	if r.status != http.StatusOK || json.Unmarshal(r.body, &h) != nil || len(h.Keys) != 1 || h.Keys[0].PublicKey != vkey {
		t.Fatalf("history: %d %s", r.status, r.body)
	}
	if r := f.do("GET", "/v1/keys/signing/history", "", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("without a key: %d", r.status)
	}

	// A rotated history is served as configured and verifies from the first key.
	sk1, vk1, _ := trailseal.GenerateSigningKey(testOrigin)
	sk2, vk2, _ := trailseal.GenerateSigningKey(testOrigin)
	s1, _, _ := trailseal.ParseSigningKey(sk1)
	s2, _, _ := trailseal.ParseSigningKey(sk2)
	rot := trailseal.NewKeyHistory(vk1, time.Time{})
	if err := rot.Rotate(s1, s2, vk2, time.Now()); err != nil {
		t.Fatal(err)
	}
	in.KeyHistory = rot // read per request
	r = f.do("GET", "/v1/keys/signing/history", "readerAll", nil)
	got, err := trailseal.ParseKeyHistory(r.body)
	if err != nil {
		t.Fatalf("history: %v %s", err, r.body)
	}
	if w, err := got.Trusted([]string{vk1}); err != nil || len(w) != 2 {
		t.Fatalf("served history does not verify from the first key: %v", err)
	}
}

package trailserver

import (
	"context"
	"testing"
	"time"
)

func fuzzAuth() *authState {
	s := &Server{cfg: Config{SessionSecret: []byte("fuzz secret"), Now: time.Now}}
	return &authState{s: s, secrets: map[string][]byte{}}
}

// FuzzOpenToken: opening any value never panics, and accepts only what
// sign wrote (the fuzzer cannot make a MAC).
func FuzzOpenToken(f *testing.F) {
	a := fuzzAuth()
	ctx := context.Background()
	good, _ := a.sign(ctx, "viewer-token", viewerPrefix, viewerClaims{ID: "x", Tenant: "acme", Issuer: "k1", Exp: 1 << 40, Actions: []string{"user.*"}})
	cookie, _ := a.sign(ctx, "ui-session", sessionPrefix, sessionClaims{ID: "s", Key: "k1", Exp: 1 << 40})
	for _, s := range []string{good, cookie, "v1.", "v1..", "v1.e30.", "v1.e30.AAAA", "s1.x.y.z", "", "v1.\xff.\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		var c viewerClaims
		if err := a.open(ctx, "viewer-token", viewerPrefix, value, &c); err == nil && value != good {
			t.Fatalf("accepted %q", value)
		}
		var sc sessionClaims
		if err := a.open(ctx, "ui-session", sessionPrefix, value, &sc); err == nil && value != cookie {
			t.Fatalf("accepted cookie %q", value)
		}
	})
}

// FuzzTokenFlip: every changed bit of a genuine token is refused.
func FuzzTokenFlip(f *testing.F) {
	a := fuzzAuth()
	ctx := context.Background()
	good, _ := a.sign(ctx, "viewer-token", viewerPrefix, viewerClaims{ID: "x", Tenant: "acme", Issuer: "k1", Exp: 1 << 40, Export: true})
	for i := 0; i < len(good); i += 7 {
		f.Add(uint16(i), uint8(1))
	}
	f.Fuzz(func(t *testing.T, pos uint16, bit uint8) {
		b := []byte(good)
		i := int(pos) % len(b)
		b[i] ^= 1 << (bit % 8)
		var c viewerClaims
		if err := a.open(ctx, "viewer-token", viewerPrefix, string(b), &c); err == nil {
			t.Fatalf("flipping bit %d of byte %d (%q) was accepted", bit%8, i, b)
		}
	})
}

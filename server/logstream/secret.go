package logstream

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/trailhq/trail/trailprivacy"
)

// secrets is what a stream's secret column holds, wrapped by the master key.
type secrets struct {
	Current string `json:"current"`
	// Previous is the webhook secret before the last rotation, still signed
	// with until PreviousUntil (unix seconds).
	Previous      string `json:"previous,omitempty"`
	PreviousUntil int64  `json:"previous_until,omitempty"`
}

// aad binds a wrapped secret to its stream: a secret copied to another
// stream's row does not unwrap.
func aad(id string) []byte { return []byte("trail.logstream:" + id) }

func sealSecrets(ctx context.Context, kms trailprivacy.KMS, id string, s secrets) (string, error) {
	if s.Current == "" {
		return "", nil
	}
	if kms == nil {
		return "", ErrNoKMS
	}
	b, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	w, err := kms.Wrap(ctx, b, aad(id))
	if err != nil {
		return "", fmt.Errorf("logstream: wrap secret: %w", err)
	}
	return kms.KeyID() + ":" + base64.StdEncoding.EncodeToString(w), nil
}

func openSecrets(ctx context.Context, kms trailprivacy.KMS, id, stored string) (secrets, error) {
	var s secrets
	if stored == "" {
		return s, nil
	}
	if kms == nil {
		return s, ErrNoKMS
	}
	i := strings.LastIndexByte(stored, ':') // key ID ":" wrapped secret
	if i < 0 {
		return s, fmt.Errorf("logstream: stream %s: malformed stored secret", id)
	}
	w, err := base64.StdEncoding.DecodeString(stored[i+1:])
	if err != nil {
		return s, fmt.Errorf("logstream: stream %s: malformed stored secret", id)
	}
	b, err := kms.Unwrap(ctx, w, aad(id))
	if err != nil {
		return s, fmt.Errorf("logstream: stream %s: unwrap secret: %w", id, err)
	}
	err = json.Unmarshal(b, &s)
	return s, err
}

// signingSecrets are the webhook secrets to sign with at now: the current
// one, and the previous one during the rotation's overlap.
func (s secrets) signingSecrets(now time.Time) []string {
	out := []string{s.Current}
	if s.Previous != "" && now.Unix() < s.PreviousUntil {
		out = append(out, s.Previous)
	}
	return out
}

// NewSecret returns a random webhook signing secret, "whsec_" and 64 hex digits.
func NewSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return "whsec_" + hex.EncodeToString(b[:])
}

func newID() string {
	var b [10]byte
	rand.Read(b[:])
	return "ls_" + hex.EncodeToString(b[:])
}

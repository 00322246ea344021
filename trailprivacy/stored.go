package trailprivacy

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Placeholders written in place of a value.
const (
	// Redacted replaces a metadata value (or a value inside a change) that a
	// redact rule withholds.
	Redacted = "[redacted]"
	// Erased is what Reveal shows for a value whose subject was forgotten.
	Erased = "[erased]"
)

// Prefixes of the stored forms. The version is part of the prefix so that a
// later format can be told apart and read alongside this one.
const (
	HMACPrefix = "hmac:v1:"
	EncPrefix  = "enc:v1:"
)

const (
	macLen     = 32 // HMAC-SHA256
	nonceLen   = 12 // AES-GCM standard nonce
	tagLen     = 16
	maxKeyID   = 64
	keyIDBytes = 8 // random bytes of a data key ID
)

var b64 = base64.RawURLEncoding.Strict()

// ErrMalformed is returned by ParseStored for a string that starts like a
// stored form but is not a valid one.
var ErrMalformed = errors.New("trailprivacy: malformed stored value")

// Stored is a value in one of the stored forms:
//
//	hmac:v1:<base64url(HMAC-SHA256, 32 bytes)>
//	enc:v1:<key-id>:<base64url(nonce(12) | AES-256-GCM ciphertext and tag)>
//
// base64url is unpadded (RFC 4648 §5); key-id is the subject data key's ID,
// 1–64 characters of the base64url alphabet.
type Stored struct {
	Kind  string // "hmac" or "enc"
	KeyID string // enc only
	Data  []byte // the MAC, or nonce|ciphertext
}

// String returns the stored form.
func (s Stored) String() string {
	switch s.Kind {
	case "hmac":
		return HMACPrefix + b64.EncodeToString(s.Data)
	case "enc":
		return EncPrefix + s.KeyID + ":" + b64.EncodeToString(s.Data)
	}
	return ""
}

// IsStored reports whether s is a well-formed stored form: a value Transform
// leaves as it is.
func IsStored(s string) bool {
	if !strings.HasPrefix(s, HMACPrefix) && !strings.HasPrefix(s, EncPrefix) {
		return false
	}
	_, err := ParseStored(s)
	return err == nil
}

// ParseStored decodes a stored form. A string with neither prefix is an
// error; so is one with a prefix but a bad body (matching ErrMalformed).
func ParseStored(s string) (Stored, error) {
	switch {
	case strings.HasPrefix(s, HMACPrefix):
		body := s[len(HMACPrefix):]
		mac, err := b64.DecodeString(body)
		if err != nil || len(mac) != macLen {
			return Stored{}, fmt.Errorf("%w: hmac:v1 wants %d base64url bytes", ErrMalformed, macLen)
		}
		return Stored{Kind: "hmac", Data: mac}, nil
	case strings.HasPrefix(s, EncPrefix):
		body := s[len(EncPrefix):]
		kid, data, ok := strings.Cut(body, ":")
		if !ok || !validKeyID(kid) {
			return Stored{}, fmt.Errorf("%w: enc:v1 wants key-id:payload", ErrMalformed)
		}
		raw, err := b64.DecodeString(data)
		if err != nil || len(raw) < nonceLen+tagLen {
			return Stored{}, fmt.Errorf("%w: enc:v1 payload is not base64url nonce and ciphertext", ErrMalformed)
		}
		return Stored{Kind: "enc", KeyID: kid, Data: raw}, nil
	}
	return Stored{}, fmt.Errorf("%w: no hmac:v1: or enc:v1: prefix", ErrMalformed)
}

func validKeyID(s string) bool {
	if s == "" || len(s) > maxKeyID {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// EncryptedLen is the length of the stored form of an n-byte plaintext
// under a key ID of the usual length: what a field holding at most n bytes
// may grow to once encrypted.
func EncryptedLen(n int) int {
	return len(EncPrefix) + b64.EncodedLen(keyIDBytes) + 1 + b64.EncodedLen(nonceLen+n+tagLen)
}

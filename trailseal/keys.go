package trailseal

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// SigningKeyEnv is the environment variable that may hold the checkpoint
// signing key (a note signer key, "PRIVATE+KEY+name+hash+base64").
const SigningKeyEnv = "TRAIL_SIGNING_KEY"

// GenerateSigningKey returns a new Ed25519 checkpoint signing key named name
// (the key name travels in every signature line; use the deployment's host
// name, e.g. DefaultOrigin) and its public verifier key.
func GenerateSigningKey(name string) (skey, vkey string, err error) {
	return generateKey(rand.Reader, name)
}

func generateKey(r io.Reader, name string) (skey, vkey string, err error) {
	skey, vkey, err = note.GenerateKey(r, name)
	if err != nil {
		return "", "", fmt.Errorf("trailseal: generate signing key %q: %w", name, err)
	}
	return skey, vkey, nil
}

// ParseSigningKey parses a signer key and returns the signer and its public
// verifier key.
func ParseSigningKey(skey string) (note.Signer, string, error) {
	skey = strings.TrimSpace(skey)
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, "", fmt.Errorf("trailseal: signing key: %w", err)
	}
	vkey, err := publicKey(skey, s.Name())
	if err != nil {
		return nil, "", err
	}
	return s, vkey, nil
}

// publicKey derives the verifier key of a valid Ed25519 signer key.
func publicKey(skey, name string) (string, error) {
	parts := strings.SplitN(skey, "+", 5) // PRIVATE+KEY+name+hash+base64 (base64 may hold '+')
	if len(parts) != 5 {
		return "", errors.New("trailseal: signing key: malformed")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", errors.New("trailseal: signing key: not an Ed25519 note key")
	}
	priv := ed25519.NewKeyFromSeed(raw[1:])
	return note.NewEd25519VerifierKey(name, priv.Public().(ed25519.PublicKey))
}

// ParseVerifierKey parses a public verifier key, as printed by
// GenerateSigningKey and `trail keys signing show`.
func ParseVerifierKey(vkey string) (note.Verifier, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("trailseal: verifier key: %w", err)
	}
	return v, nil
}

// LoadSigningKey reads a signer key from a file.
func LoadSigningKey(path string) (note.Signer, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("trailseal: signing key: %w", err)
	}
	s, vkey, err := ParseSigningKey(string(b))
	if err != nil {
		return nil, "", fmt.Errorf("%w (file %s)", err, path)
	}
	return s, vkey, nil
}

// SigningKeyFromEnv returns the signer in $TRAIL_SIGNING_KEY; ok is false
// when the variable is unset or empty.
func SigningKeyFromEnv() (s note.Signer, vkey string, ok bool, err error) {
	v := os.Getenv(SigningKeyEnv)
	if v == "" {
		return nil, "", false, nil
	}
	s, vkey, err = ParseSigningKey(v)
	if err != nil {
		return nil, "", true, fmt.Errorf("%w (from $%s)", err, SigningKeyEnv)
	}
	return s, vkey, true, nil
}

// SigningKeyPaths returns where EnsureSigningKey keeps the key pair of the
// embedded database at dbPath: dbPath+".signing.key" (private, mode 0600) and
// dbPath+".signing.pub" (public).
func SigningKeyPaths(dbPath string) (private, public string) {
	return dbPath + ".signing.key", dbPath + ".signing.pub"
}

// EnsureSigningKey returns the checkpoint signer of the embedded database at
// dbPath, creating it on first use: with no key configured, Trail generates
// one beside the database (mode 0600), writes the public key next to it and
// prints the public key to w, so that the README's commands work with no
// set-up and the operator knows what to publish. name is the key name used
// when generating (DefaultOrigin when empty). created reports a new key.
func EnsureSigningKey(dbPath, name string, w io.Writer) (s note.Signer, vkey string, created bool, err error) {
	priv, pub := SigningKeyPaths(dbPath)
	s, vkey, err = LoadSigningKey(priv)
	if err == nil {
		return s, vkey, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, "", false, err
	}
	if name == "" {
		name = DefaultOrigin
	}
	skey, vkey, err := GenerateSigningKey(name)
	if err != nil {
		return nil, "", false, err
	}
	f, err := os.OpenFile(priv, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) { // another process won the race
			s, vkey, err = LoadSigningKey(priv)
			return s, vkey, false, err
		}
		return nil, "", false, fmt.Errorf("trailseal: create signing key: %w", err)
	}
	_, werr := f.WriteString(skey + "\n")
	if serr := f.Sync(); werr == nil {
		werr = serr
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(priv)
		return nil, "", false, fmt.Errorf("trailseal: write signing key: %w", werr)
	}
	if err := os.WriteFile(pub, []byte(vkey+"\n"), 0o600); err != nil {
		return nil, "", false, fmt.Errorf("trailseal: write public key: %w", err)
	}
	s, err = note.NewSigner(skey)
	if err != nil {
		return nil, "", false, err
	}
	if w != nil {
		fmt.Fprintf(w, "trail: generated checkpoint signing key %s (mode 0600)\ntrail: public key (publish it; verifiers need it): %s\n", priv, vkey)
	}
	return s, vkey, true, nil
}

package trailprivacy

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// KMS wraps and unwraps data keys with a master key it never hands out:
// envelope encryption. LocalKMS keeps a 32-byte key in memory; a cloud KMS
// (AWS KMS, GCP KMS, Vault transit) implements the same three methods.
//
// aad is bound to the wrapped key (it names the tenant, subject and key ID),
// so that a wrapped key copied to another subject's row does not unwrap.
type KMS interface {
	// KeyID names the master key. It is stored beside every key it wraps, so
	// that a wrong key is reported as such and rotation can tell which keys
	// are done. It must not reveal the key.
	KeyID() string
	Wrap(ctx context.Context, plaintext, aad []byte) ([]byte, error)
	// Unwrap returns an error matching ErrUnwrap when wrapped was not made by
	// this master key with this aad.
	Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error)
}

// ErrUnwrap is returned when a wrapped key does not authenticate under the
// master key: a wrong master key, or a tampered key row.
var ErrUnwrap = errors.New("trailprivacy: cannot unwrap data key (wrong master key or tampered key)")

// MasterKeyLen is the length of a local master key: AES-256.
const MasterKeyLen = 32

// LocalKMS is a KMS over a 32-byte master key held in memory, from
// TRAIL_MASTER_KEY or a key file.
type LocalKMS struct {
	aead cipher.AEAD
	id   string
}

// NewLocalKMS returns a KMS over key, which must be 32 bytes.
func NewLocalKMS(key []byte) (*LocalKMS, error) {
	if len(key) != MasterKeyLen {
		return nil, fmt.Errorf("trailprivacy: master key is %d bytes, want %d", len(key), MasterKeyLen)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("trail master key id v1"))
	id := "local:" + b64.EncodeToString(m.Sum(nil)[:9])
	return &LocalKMS{aead: aead, id: id}, nil
}

// KeyID is "local:" and a 12-character fingerprint of the key.
func (k *LocalKMS) KeyID() string { return k.id }

// Wrap seals plaintext with AES-256-GCM: nonce(12) | ciphertext | tag.
func (k *LocalKMS) Wrap(_ context.Context, plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, nonceLen, nonceLen+len(plaintext)+tagLen)
	if _, err := rand.Read(out); err != nil {
		return nil, err
	}
	return k.aead.Seal(out, out, plaintext, aad), nil
}

// Unwrap opens what Wrap sealed.
func (k *LocalKMS) Unwrap(_ context.Context, wrapped, aad []byte) ([]byte, error) {
	if len(wrapped) < nonceLen+tagLen {
		return nil, ErrUnwrap
	}
	pt, err := k.aead.Open(nil, wrapped[:nonceLen], wrapped[nonceLen:], aad)
	if err != nil {
		return nil, ErrUnwrap
	}
	return pt, nil
}

// ParseMasterKey decodes a base64 master key (standard or URL alphabet,
// padded or not), the form of TRAIL_MASTER_KEY, and returns its KMS.
func ParseMasterKey(s string) (*LocalKMS, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("trailprivacy: master key is empty")
	}
	var key []byte
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			key = b
			break
		}
	}
	if key == nil {
		return nil, errors.New("trailprivacy: master key is not base64 (generate one with: openssl rand -base64 32)")
	}
	if len(key) != MasterKeyLen {
		return nil, fmt.Errorf("trailprivacy: master key is %d bytes, want %d (generate one with: openssl rand -base64 32)", len(key), MasterKeyLen)
	}
	return NewLocalKMS(key)
}

// LoadKeyFile reads a master key file: the key in base64 on one line (what
// LoadOrCreateKeyFile writes), or exactly 32 raw bytes. A missing file is an
// error: a configured key is never replaced by a new one.
func LoadKeyFile(path string) (*LocalKMS, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("trailprivacy: master key file: %w", err)
	}
	k, err := ParseMasterKey(string(b))
	if err != nil && len(b) == MasterKeyLen {
		return NewLocalKMS(b)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// LoadOrCreateKeyFile loads the master key file at path, or, when there is
// none, creates it with a new random key, mode 0600, and reports created so
// that the caller can say so ("created master key file …: back it up").
// Creation is exclusive: two processes racing end up with the same key.
func LoadOrCreateKeyFile(path string) (kms *LocalKMS, created bool, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		k, err := LoadKeyFile(path)
		return k, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("trailprivacy: create master key file: %w", err)
	}
	key := make([]byte, MasterKeyLen)
	if _, err := rand.Read(key); err != nil {
		f.Close()
		os.Remove(path)
		return nil, false, err
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, false, fmt.Errorf("trailprivacy: write master key file: %w", err)
	}
	k, err := NewLocalKMS(key)
	return k, true, err
}

// MasterKeyConfig says where the master key comes from, in the order
// OpenMasterKey tries: Env, File, then CreateFile.
type MasterKeyConfig struct {
	// Env is the value of TRAIL_MASTER_KEY (base64, 32 bytes), if set.
	Env string
	// File is --master-key-file: it must exist.
	File string
	// CreateFile, used only when neither Env nor File is set, is loaded or
	// created: the embedded store passes a path beside its database so that
	// Trail works with no set-up. Leave it empty (PostgreSQL) to make a
	// missing key an error.
	CreateFile string
}

// OpenMasterKey returns the master key the configuration names. notice is
// non-empty when a key file was created, for the caller to print. A
// configured key that cannot be read is an error, never a fallback.
func OpenMasterKey(c MasterKeyConfig) (kms *LocalKMS, notice string, err error) {
	switch {
	case c.Env != "" && c.File != "":
		return nil, "", errors.New("trailprivacy: both TRAIL_MASTER_KEY and --master-key-file are set; use one")
	case c.Env != "":
		k, err := ParseMasterKey(c.Env)
		if err != nil {
			return nil, "", fmt.Errorf("TRAIL_MASTER_KEY: %w", err)
		}
		return k, "", nil
	case c.File != "":
		k, err := LoadKeyFile(c.File)
		return k, "", err
	case c.CreateFile != "":
		k, created, err := LoadOrCreateKeyFile(c.CreateFile)
		if err != nil {
			return nil, "", err
		}
		if created {
			notice = fmt.Sprintf("created master key file %s (mode 0600); back it up: without it encrypted fields cannot be read", c.CreateFile)
		}
		return k, notice, nil
	}
	return nil, "", errors.New("trailprivacy: no master key: set TRAIL_MASTER_KEY (openssl rand -base64 32) or --master-key-file")
}

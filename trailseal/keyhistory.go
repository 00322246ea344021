package trailseal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// KeyHistory is the list of checkpoint verifier keys a deployment has
// signed with, oldest first: what `trail keys signing rotate` extends and
// `trail keys signing history` and GET /v1/keys/signing/history publish.
//
// Each key after the first carries a rotation statement signed by the key
// before it (and by itself), so a verifier that pins any one key of the
// history accepts the later keys that key vouched for, and nothing else: a
// key swapped in beside the database has no statement signed by a pinned
// key.
type KeyHistory struct {
	Keys []HistoryKey `json:"keys"`
}

// HistoryKey is one signing key of a KeyHistory.
type HistoryKey struct {
	// PublicKey is the note verifier key ("name+hash+base64").
	PublicKey string `json:"public_key"`
	// Since is when the key started signing; Until when the next key
	// replaced it (zero for the current key). Checkpoints are verified under
	// the key valid at their time.
	Since time.Time `json:"since"`
	Until time.Time `json:"until,omitzero"`
	// Rotation is the signed note that introduced this key (empty for the
	// first key): its text is RotationText(previous key, this key, Since),
	// signed by the previous key and this one.
	Rotation string `json:"rotation,omitempty"`
}

// RotationText is the text of the note that hands checkpoint signing from
// key old to key new at time at (RFC 3339, UTC, nanoseconds):
//
//	trail signing key rotation
//	<old verifier key>
//	<new verifier key>
//	<at>
func RotationText(oldKey, newKey string, at time.Time) string {
	return "trail signing key rotation\n" + oldKey + "\n" + newKey + "\n" + at.UTC().Format(time.RFC3339Nano) + "\n"
}

// ErrKeyHistory is matched by every error of a key history that does not
// verify.
var ErrKeyHistory = errors.New("trailseal: key history does not verify")

// NewKeyHistory starts a history with the key vkey, valid since since.
func NewKeyHistory(vkey string, since time.Time) *KeyHistory {
	return &KeyHistory{Keys: []HistoryKey{{PublicKey: strings.TrimSpace(vkey), Since: since.UTC()}}}
}

// Current returns the verifier key now signing, or "".
func (h *KeyHistory) Current() string {
	if h == nil || len(h.Keys) == 0 {
		return ""
	}
	return h.Keys[len(h.Keys)-1].PublicKey
}

// Rotate appends the key of newSigner (verifier key newKey) as the current
// key from at on, with a rotation statement signed by old (the current key's
// signer) and newSigner. old must be the signer of the current key.
func (h *KeyHistory) Rotate(old note.Signer, newSigner note.Signer, newKey string, at time.Time) error {
	cur := h.Current()
	if cur == "" {
		return errors.New("trailseal: rotate: the key history is empty")
	}
	cv, err := ParseVerifierKey(cur)
	if err != nil {
		return err
	}
	if cv.Name() != old.Name() || cv.KeyHash() != old.KeyHash() {
		return fmt.Errorf("trailseal: rotate: the signing key is not the history's current key %s", cur)
	}
	newKey = strings.TrimSpace(newKey)
	if newKey == cur {
		return errors.New("trailseal: rotate: the new key is the current key")
	}
	at = at.UTC()
	if last := h.Keys[len(h.Keys)-1].Since; !at.After(last) {
		return fmt.Errorf("trailseal: rotate: %s is not after the current key's start %s", at.Format(time.RFC3339Nano), last.Format(time.RFC3339Nano))
	}
	msg, err := note.Sign(&note.Note{Text: RotationText(cur, newKey, at)}, old, newSigner)
	if err != nil {
		return fmt.Errorf("trailseal: sign key rotation: %w", err)
	}
	h.Keys[len(h.Keys)-1].Until = at
	h.Keys = append(h.Keys, HistoryKey{PublicKey: newKey, Since: at, Rotation: string(msg)})
	return nil
}

// KeyWindow is one key of a verified history and the times it signed in.
type KeyWindow struct {
	Verifier note.Verifier
	Key      string
	Since    time.Time
	Until    time.Time // zero: still current
}

// Contains reports whether t falls in the window [Since, Until).
func (w KeyWindow) Contains(t time.Time) bool {
	return !t.Before(w.Since) && (w.Until.IsZero() || t.Before(w.Until))
}

// Trusted returns the keys of h that the pinned verifier keys vouch for:
// from the first key that is pinned, each later key whose rotation
// statement verifies under the key before it (and itself) and names both.
// Keys before the first pinned one are not trusted. A statement that does
// not verify is an error matching ErrKeyHistory: the history was edited.
func (h *KeyHistory) Trusted(pinned []string) ([]KeyWindow, error) {
	pin := map[string]bool{}
	for _, p := range pinned {
		pin[strings.TrimSpace(p)] = true
	}
	start := -1
	for i, k := range h.Keys {
		if pin[k.PublicKey] {
			start = i
			break
		}
	}
	if start < 0 {
		return nil, fmt.Errorf("%w: no key of the history is pinned", ErrKeyHistory)
	}
	var out []KeyWindow
	for i := start; i < len(h.Keys); i++ {
		k := h.Keys[i]
		v, err := ParseVerifierKey(k.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d: %v", ErrKeyHistory, i, err)
		}
		if i > start {
			prev := out[len(out)-1]
			if err := checkRotation(prev, k, v); err != nil {
				return nil, fmt.Errorf("%w: key %d (%s): %v", ErrKeyHistory, i, clip(k.PublicKey), err)
			}
			if !prev.Until.Equal(k.Since) {
				return nil, fmt.Errorf("%w: key %d starts at %s, the key before it ends at %s", ErrKeyHistory, i, k.Since.Format(time.RFC3339Nano), prev.Until.Format(time.RFC3339Nano))
			}
		}
		out = append(out, KeyWindow{Verifier: v, Key: k.PublicKey, Since: k.Since, Until: k.Until})
	}
	return out, nil
}

// checkRotation verifies k's rotation statement under the previous key and
// k's own key.
func checkRotation(prev KeyWindow, k HistoryKey, v note.Verifier) error {
	if k.Rotation == "" {
		return errors.New("no rotation statement")
	}
	n, err := note.Open([]byte(k.Rotation), note.VerifierList(prev.Verifier, v))
	if err != nil {
		return fmt.Errorf("rotation statement: %w", err)
	}
	signed := map[uint32]bool{}
	for _, s := range n.Sigs {
		signed[s.Hash] = true
	}
	if !signed[prev.Verifier.KeyHash()] || !signed[v.KeyHash()] {
		return errors.New("rotation statement is not signed by both keys")
	}
	if n.Text != RotationText(prev.Key, k.PublicKey, k.Since) {
		return errors.New("rotation statement does not name these keys and this time")
	}
	return nil
}

// Verifiers returns the note verifiers of windows, for Verifier.Verifiers.
func Verifiers(windows []KeyWindow) note.Verifiers {
	vs := make([]note.Verifier, len(windows))
	for i, w := range windows {
		vs[i] = w.Verifier
	}
	return note.VerifierList(vs...)
}

// SignedAt checks that the signed checkpoint note was signed by a key whose
// window holds t (the checkpoint's time): a checkpoint signed by a retired
// key after its retirement, or by a new key before it started, is refused.
// It returns the key that signed it.
func SignedAt(signed []byte, windows []KeyWindow, t time.Time) (string, error) {
	n, err := note.Open(signed, Verifiers(windows))
	if err != nil {
		return "", err
	}
	var names []string
	for _, s := range n.Sigs {
		for _, w := range windows {
			if w.Verifier.Name() == s.Name && w.Verifier.KeyHash() == s.Hash {
				if w.Contains(t) {
					return w.Key, nil
				}
				names = append(names, w.Key)
			}
		}
	}
	return "", fmt.Errorf("signed by %s, which was not the signing key at %s", strings.Join(names, ", "), t.UTC().Format(time.RFC3339))
}

// KeyHistoryPath returns where the embedded database at dbPath keeps its
// key history: dbPath+".signing.history". A key file elsewhere keeps it at
// keyFile+".history".
func KeyHistoryPath(keyFile string) string {
	return strings.TrimSuffix(keyFile, ".key") + ".history"
}

// ReadKeyHistory reads a key history file (the JSON of `trail keys signing
// history`). A missing file is fs.ErrNotExist.
func ReadKeyHistory(path string) (*KeyHistory, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseKeyHistory(b)
}

// ParseKeyHistory parses the JSON of a key history.
func ParseKeyHistory(b []byte) (*KeyHistory, error) {
	var h KeyHistory
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("trailseal: key history: %w", err)
	}
	if len(h.Keys) == 0 {
		return nil, errors.New("trailseal: key history: no keys")
	}
	for i, k := range h.Keys {
		if _, err := ParseVerifierKey(k.PublicKey); err != nil {
			return nil, fmt.Errorf("trailseal: key history: key %d: %w", i, err)
		}
	}
	return &h, nil
}

// WriteKeyHistory writes h to path atomically (mode 0600, like the key).
func WriteKeyHistory(path string, h *KeyHistory) error {
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("trailseal: write key history: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("trailseal: write key history: %w", err)
	}
	return nil
}

// LoadKeyHistory returns the history kept beside the key file keyFile, or a
// history of the one key vkey when there is none yet (a deployment that
// never rotated).
func LoadKeyHistory(keyFile, vkey string) (*KeyHistory, error) {
	h, err := ReadKeyHistory(KeyHistoryPath(keyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return NewKeyHistory(vkey, time.Time{}), nil
	}
	return h, err
}

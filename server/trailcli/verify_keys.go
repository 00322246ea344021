package trailcli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
)

// PublicKeyEnv is the environment variable that pins the checkpoint
// verifier key for verify, prove and checkpoints export, as --public-key
// does: a key, a key file, or a key history file (`trail keys signing
// history`).
const PublicKeyEnv = "TRAIL_PUBLIC_KEY"

// Key sources of a verification, in the order they are tried.
const (
	keyPinned     = "pinned"      // --public-key or $TRAIL_PUBLIC_KEY
	keyConfigured = "configured"  // --signing-key-file or $TRAIL_SIGNING_KEY: the operator's key
	keyBeside     = "beside_data" // DB.signing.key next to the database: whoever edits the database can replace it
)

// trust is the set of checkpoint keys a command trusts, with the times each
// signed in, and where they came from.
type trust struct {
	windows []trailseal.KeyWindow
	source  string
	warning string // set when the keys came from beside the data
}

func (t *trust) verifiers() note.Verifiers { return trailseal.Verifiers(t.windows) }

// besideDataWarning is printed on stderr (and put in --json) when verify
// trusts the key stored next to the database it checks.
func besideDataWarning(path string) string {
	return fmt.Sprintf("WARNING: no pinned key: trusting the checkpoint key stored beside the database (%s). Whoever can edit the database can replace that key and re-sign every checkpoint, and this check would still pass. Pin the published key: --public-key KEY|FILE or $%s (\"trail keys signing show\" or \"history\" on a trusted copy; docs/verification.md).", path, PublicKeyEnv)
}

// resolveTrust returns the keys to verify checkpoints with: the pinned
// ones (flag, else $TRAIL_PUBLIC_KEY), extended by the rotations the
// deployment's key history proves they signed; else the configured signing
// key's history; else, for the embedded store only, the key beside the
// database, with a loud warning.
func resolveTrust(e *Env, sf *SigningFlags, pins []string) (*trust, error) {
	pins = pinsOrEnv(pins)
	history, keyFile, err := deploymentHistory(e, sf)
	if err != nil && len(pins) == 0 {
		return nil, err
	}
	if len(pins) == 0 {
		first := history.Keys[0].PublicKey
		w, err := history.Trusted([]string{first})
		if err != nil {
			return nil, fmt.Errorf("the key history beside %s: %w", keyFile, err)
		}
		t := &trust{windows: w, source: keyConfigured}
		if sf.SigningKeyFile == "" && os.Getenv(trailseal.SigningKeyEnv) == "" {
			t.source = keyBeside
			t.warning = besideDataWarning(keyFile)
		}
		return t, nil
	}
	keys, pinnedHist, err := parsePins(pins)
	if err != nil {
		return nil, err
	}
	// The deployment's history, when it extends from a pinned key, says
	// which later keys the pinned one handed over to; an edited rotation
	// there is tampering, reported as such.
	for _, h := range []*trailseal.KeyHistory{history, pinnedHist} {
		if h == nil {
			continue
		}
		w, err := h.Trusted(keys)
		if errors.Is(err, trailseal.ErrKeyHistory) && strings.Contains(err.Error(), "no key of the history is pinned") {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("key history: %w", err)
		}
		return &trust{windows: w, source: keyPinned}, nil
	}
	t := &trust{source: keyPinned}
	for _, k := range keys {
		v, err := trailseal.ParseVerifierKey(k)
		if err != nil {
			return nil, &UsageError{Err: fmt.Errorf("--public-key: %w", err)}
		}
		t.windows = append(t.windows, trailseal.KeyWindow{Verifier: v, Key: k})
	}
	return t, nil
}

// parsePins reads each --public-key: a verifier key, a file holding one,
// or a key history file (JSON), whose first key is then pinned.
func parsePins(pins []string) (keys []string, hist *trailseal.KeyHistory, err error) {
	for _, p := range pins {
		p = strings.TrimSpace(p)
		if b, rerr := os.ReadFile(p); rerr == nil {
			if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
				h, err := trailseal.ParseKeyHistory(b)
				if err != nil {
					return nil, nil, Usagef("--public-key %s: %v", p, err)
				}
				hist = h
				keys = append(keys, h.Keys[0].PublicKey)
				continue
			}
			p = strings.TrimSpace(string(b))
		} else if !strings.Contains(p, "+") {
			return nil, nil, Usagef("--public-key %s: %v", p, rerr)
		}
		if _, err := trailseal.ParseVerifierKey(p); err != nil {
			return nil, nil, &UsageError{Err: fmt.Errorf("--public-key: %w", err)}
		}
		keys = append(keys, p)
	}
	return keys, hist, nil
}

// deploymentHistory returns the configured signing key's history (a
// history of that one key when it never rotated) and the key's file. With
// the key in $TRAIL_SIGNING_KEY there is no file and the history is that
// key alone.
func deploymentHistory(e *Env, sf *SigningFlags) (*trailseal.KeyHistory, string, error) {
	_, vkey, err := sf.signer(e, false)
	if err != nil {
		return nil, "", err
	}
	keyFile := sf.SigningKeyFile
	if keyFile == "" {
		if os.Getenv(trailseal.SigningKeyEnv) != "" {
			return trailseal.NewKeyHistory(vkey, time.Time{}), "$" + trailseal.SigningKeyEnv, nil
		}
		keyFile, _ = trailseal.SigningKeyPaths(e.Globals.DB)
	}
	h, err := trailseal.LoadKeyHistory(keyFile, vkey)
	if err != nil {
		return nil, keyFile, err
	}
	if h.Current() != vkey {
		return nil, keyFile, fmt.Errorf("the signing key %s is not the current key of its history %s (rotated by hand?)", keyFile, trailseal.KeyHistoryPath(keyFile))
	}
	return h, keyFile, nil
}

// warnTrust prints the trust's warning on stderr, loudly, once.
func warnTrust(e *Env, t *trust) {
	if t.warning != "" {
		fmt.Fprintln(e.Stderr, "trail: "+t.warning)
	}
}

// KindKeyNotValid: a checkpoint is signed by a trusted key that was not the
// signing key at the checkpoint's time (a retired key used after its
// rotation, or a new key before it). The verifier checks it
// (trailseal.Verifier.KeyWindows) on the checkpoints it reads.
const KindKeyNotValid = trailseal.KindKeyNotValid

// warnings is the trust's warning as a list, for --json.
func (t *trust) warnings() []string {
	if t.warning == "" {
		return nil
	}
	return []string{t.warning}
}

// pinsOrEnv returns the --public-key values, else $TRAIL_PUBLIC_KEY.
func pinsOrEnv(pins []string) []string {
	if len(pins) == 0 {
		if v := strings.TrimSpace(os.Getenv(PublicKeyEnv)); v != "" {
			return []string{v}
		}
	}
	return pins
}

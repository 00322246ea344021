package trailcli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/trailhq/trail/trailseal"
)

// SigningRotateCmd is `trail keys signing rotate`.
type SigningRotateCmd struct {
	SigningFlags
}

// Run generates a new signing key, records the rotation in the key history
// (a statement signed by the old key and the new one), then replaces the
// key file. The old private key is gone afterwards: only its public key
// stays, in the history, so that the checkpoints it signed still verify.
// A running `trail serve` keeps signing with the old key until restarted.
func (c *SigningRotateCmd) Run(e *Env) error {
	path := c.SigningKeyFile
	if path == "" {
		if os.Getenv(trailseal.SigningKeyEnv) != "" {
			return Usagef("the signing key is in $%s: rotate a key file (--signing-key-file FILE), then point $%s at nothing", trailseal.SigningKeyEnv, trailseal.SigningKeyEnv)
		}
		path, _ = trailseal.SigningKeyPaths(e.Globals.DB)
	}
	old, vkey, err := trailseal.LoadSigningKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Usagef("no signing key at %s to rotate (\"trail keys signing generate\" makes the first)", path)
	}
	if err != nil {
		return err
	}
	h, err := trailseal.LoadKeyHistory(path, vkey)
	if err != nil {
		return err
	}
	if h.Current() != vkey {
		return fmt.Errorf("%s is not the current key of the history %s: refusing to rotate", path, trailseal.KeyHistoryPath(path))
	}
	skey, nvkey, err := trailseal.GenerateSigningKey(c.origin())
	if err != nil {
		return err
	}
	ns, _, err := trailseal.ParseSigningKey(skey)
	if err != nil {
		return err
	}
	if err := h.Rotate(old, ns, nvkey, e.Now()); err != nil {
		return err
	}
	// The new key goes to a temporary file first, the history next, and
	// the key file is replaced last: an interruption leaves the old key
	// working, or a history whose current key differs from the key file,
	// which verify names.
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(skey+"\n"), 0o600); err != nil {
		return err
	}
	if err := trailseal.WriteKeyHistory(trailseal.KeyHistoryPath(path), h); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("the history names the new key, but %s still holds the old one (move %s over it): %w", path, tmp, err)
	}
	if c.SigningKeyFile == "" {
		_, pub := trailseal.SigningKeyPaths(e.Globals.DB)
		if err := os.WriteFile(pub, []byte(nvkey+"\n"), 0o600); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.Stderr, "Rotated the signing key in %s; the history is %s (publish it: verifiers that pin an older key accept the new one through it). Restart \"trail serve\" to sign with the new key. New public key:\n", path, trailseal.KeyHistoryPath(path))
	fmt.Fprintln(e.Stdout, nvkey)
	return nil
}

// SigningHistoryCmd is `trail keys signing history`.
type SigningHistoryCmd struct {
	SigningFlags
}

// Run prints the key history as JSON (what GET /v1/keys/signing/history
// serves): a deployment that never rotated has a history of one key.
func (c *SigningHistoryCmd) Run(e *Env) error {
	h, _, err := deploymentHistory(e, &c.SigningFlags) // verify_keys.go
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "%s\n", b)
	return nil
}

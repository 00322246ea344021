package trailcli

import (
	"bytes"
	"os"
)

// SessionFlags set the secret that signs the admin UI's session cookies and
// the tenant-facing viewer's tokens (trailserver.Config.SessionSecret,
// docs/ui.md "Sessions"). Unset, the first server stores a random secret
// beside the API keys, which every replica on that database reads: sessions
// already survive restarts and cross replicas. Set it to keep the secret
// out of the database (a replica given only read access, a database copied
// to staging that must not accept production's cookies) or to rotate it:
// every replica needs the same value, and changing it signs everyone out
// and withdraws every viewer link.
type SessionFlags struct {
	SessionSecret     string `name:"session-secret" env:"TRAIL_SESSION_SECRET" placeholder:"SECRET" help:"Sign UI sessions and viewer tokens with this secret (at least 32 bytes; give every replica the same) instead of one kept in the database. Prefer the environment or --session-secret-file: a flag shows in ps."`
	SessionSecretFile string `name:"session-secret-file" env:"TRAIL_SESSION_SECRET_FILE" placeholder:"FILE" help:"Read --session-secret from this file (a trailing newline is dropped)."`
}

// minSessionSecret is the shortest secret taken: an HMAC-SHA256 key of
// 32 random bytes, or its base64 (openssl rand -base64 32, 44 bytes).
const minSessionSecret = 32

// load returns the secret, or nil for the database's. Every mistake is bad
// usage (exit 2), one line naming the flag, checked before anything opens.
func (f *SessionFlags) load() ([]byte, error) {
	switch {
	case f.SessionSecret != "" && f.SessionSecretFile != "":
		return nil, Usagef("give --session-secret (TRAIL_SESSION_SECRET) or --session-secret-file (TRAIL_SESSION_SECRET_FILE), not both")
	case f.SessionSecret != "":
		if len(f.SessionSecret) < minSessionSecret {
			return nil, Usagef("--session-secret: %d bytes; give at least %d random bytes (openssl rand -base64 32)", len(f.SessionSecret), minSessionSecret)
		}
		return []byte(f.SessionSecret), nil
	case f.SessionSecretFile != "":
		b, err := os.ReadFile(f.SessionSecretFile)
		if err != nil {
			return nil, Usagef("--session-secret-file: %v", err)
		}
		b = bytes.TrimRight(b, "\r\n")
		if len(b) < minSessionSecret {
			return nil, Usagef("--session-secret-file %s: %d bytes; give at least %d random bytes (openssl rand -base64 32)", f.SessionSecretFile, len(b), minSessionSecret)
		}
		return b, nil
	}
	return nil, nil
}

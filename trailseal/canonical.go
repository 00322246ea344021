package trailseal

import (
	"fmt"

	"github.com/trailhq/trail"
	"golang.org/x/mod/sumdb/tlog"
)

// appendCanonical appends the canonical bytes of an event as stored.
func appendCanonical(dst []byte, ev *trail.Event) ([]byte, error) {
	b, err := ev.AppendCanonical(dst)
	if err != nil {
		return dst, fmt.Errorf("trailseal: canonical encoding of event %s: %w", ev.ID, err)
	}
	return b, nil
}

// CanonicalBytes returns the bytes whose tlog.RecordHash is ev's leaf hash:
// the canonical encoding of the event exactly as stored (after the privacy
// layer redacted, hashed or encrypted fields).
func CanonicalBytes(ev *trail.Event) ([]byte, error) {
	return appendCanonical(nil, ev)
}

// LeafHash returns the leaf hash of ev: tlog.RecordHash(canonical bytes),
// that is SHA-256(0x00 || bytes) as in RFC 6962.
func LeafHash(ev *trail.Event) (tlog.Hash, error) {
	b, err := CanonicalBytes(ev)
	if err != nil {
		return tlog.Hash{}, err
	}
	return tlog.RecordHash(b), nil
}

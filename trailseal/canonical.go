package trailseal

import (
	"fmt"

	"github.com/trailhq/trail"
	"golang.org/x/mod/sumdb/tlog"
)

// canonical returns the canonical bytes of an event as stored. It is a
// variable so that tests can count or break it.
var canonical = func(ev *trail.Event) ([]byte, error) { return ev.Canonical() }

// CanonicalBytes returns the bytes whose tlog.RecordHash is ev's leaf hash:
// the canonical encoding of the event exactly as stored (after the privacy
// layer redacted, hashed or encrypted fields).
func CanonicalBytes(ev *trail.Event) ([]byte, error) {
	b, err := canonical(ev)
	if err != nil {
		return nil, fmt.Errorf("trailseal: canonical encoding of event %s: %w", ev.ID, err)
	}
	return b, nil
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

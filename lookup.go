package trail

import "encoding/hex"

// Digest is a keyed pseudonym of one personal field's plaintext, written
// beside an event whose field the privacy layer encrypted, so that an exact
// name or e-mail still finds the event: the first 16 bytes of the
// HMAC-SHA256 that trailprivacy's HashFor computes for the value under the
// event's tenant key. It is not the value: without the tenant's HMAC key
// (derived from a root key wrapped by the master key) nobody can compute or
// test one, and after Forget it still matches a value someone already knows
// but reveals none (see docs/privacy.md). The zero Digest is none.
type Digest [16]byte

// IsZero reports whether d is no digest.
func (d Digest) IsZero() bool { return d == Digest{} }

// String returns d in hex, or "" for the zero Digest.
func (d Digest) String() string {
	if d.IsZero() {
		return ""
	}
	return hex.EncodeToString(d[:])
}

// Lookup holds the digests of an event's encrypted personal fields that
// queries match (Query.ActorNameDigest, Query.ActorEmailDigest). The privacy
// layer's Transform sets it from the plaintext; stores write it in columns of
// their own and never return it. It is no part of the event's JSON or its
// canonical (sealed) form: it is derived from the event, for search only.
type Lookup struct {
	ActorName, ActorEmail Digest
}

package trailarchive

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
)

// Manifest versions. Version 2 signs specified bytes: the RFC 8785 (JCS)
// canonical form of the manifest's JSON object without its "signature"
// member (docs/retention.md, "Manifest signatures"), computed from the
// file as received, so that anyone can check it with a JCS implementation
// and golang.org/x/mod/sumdb/note. Version 1 signed Go's json.Marshal of
// the Manifest struct; such manifests still verify.
const (
	ManifestV1 = 1
	ManifestV2 = 2
)

// manifestTextV2 is the first line of a version 2 manifest's signed note.
const manifestTextV2 = "trail-archive-manifest/v2"

// SignedBytes returns the bytes a version 2 manifest's signature covers,
// from the manifest file's bytes: the JSON object without its "signature"
// member, in JCS canonical form (trail.CanonicalJSON).
func SignedBytes(file []byte) ([]byte, error) {
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(file))
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	delete(obj, "signature")
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	c, err := trail.CanonicalJSON(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	return c, nil
}

// SignedText returns the note text a manifest's signature signs, given the
// bytes it covers (SignedBytes for version 2):
//
//	trail-archive-manifest/v2
//	<origin>/<log>
//	<batch>
//	<base64 (standard, padded) SHA-256 of the signed bytes>
func (m *Manifest) SignedText(signed []byte) string {
	if m.Version == ManifestV1 {
		return m.noteText(signed)
	}
	sum := sha256.Sum256(signed)
	return manifestTextV2 + "\n" + trailseal.CheckpointOrigin(m.Origin, m.Log) + "\n" + m.Batch + "\n" +
		base64.StdEncoding.EncodeToString(sum[:]) + "\n"
}

// signedBytesOf returns what m's signature covers: for version 2 the
// canonical form of m without its signature, for version 1 Go's encoding.
func (m *Manifest) signedBytesOf() ([]byte, error) {
	body, err := m.body()
	if err != nil || m.Version == ManifestV1 {
		return body, err
	}
	return SignedBytes(body)
}

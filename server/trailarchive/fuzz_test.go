package trailarchive

import (
	"testing"

	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
)

// ParseKeep accepts exactly what FormatKeep can write back to the same value.
func FuzzParseKeep(f *testing.F) {
	for _, s := range []string{"90d", "7y", "36h", "2w", "6m", "0d", "", "1x", "999999y", " 3d "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseKeep(s)
		if err != nil {
			return
		}
		if d <= 0 {
			t.Fatalf("%q: %v", s, d)
		}
		back, err := ParseKeep(FormatKeep(d))
		if err != nil || back != d {
			t.Fatalf("%q -> %v -> %q -> %v %v", s, d, FormatKeep(d), back, err)
		}
	})
}

// ParseManifest never panics, and accepts nothing but a manifest signed by
// the trusted key (a mutation of a signed one must not verify unless it
// leaves the signed content as it was).
func FuzzParseManifest(f *testing.F) {
	skey, vkey, _ := trailseal.GenerateSigningKey(trailseal.DefaultOrigin)
	signer, _, _ := trailseal.ParseSigningKey(skey)
	v, _ := trailseal.ParseVerifierKey(vkey)
	vs := note.VerifierList(v)
	cp, _ := trailseal.SignCheckpoint(signer, trailseal.DefaultOrigin, "acme", 10, [32]byte{1}, now)
	m := &Manifest{Version: ManifestVersion, Origin: trailseal.DefaultOrigin, Log: "acme", Tenant: "acme", Date: "2025-01-02",
		Batch: "b", Files: []File{{Key: "k.parquet", Rows: 2, Bytes: 9, SHA256: sha256Hex([]byte("x"))}}, Rows: 2,
		Seqs: []trailseal.SeqRange{{From: 3, To: 5}}, Checkpoint: cp}
	if err := m.Sign(signer); err != nil {
		f.Fatal(err)
	}
	good, _ := m.Encode()
	if _, err := ParseManifest(good, vs, trailseal.DefaultOrigin); err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseManifest(b, vs, trailseal.DefaultOrigin)
		if err != nil {
			return
		}
		// Whatever was accepted carries the signed content of the original.
		if got.Batch != m.Batch || got.Rows != m.Rows || got.Log != m.Log || got.Files[0].SHA256 != m.Files[0].SHA256 {
			t.Fatalf("accepted a different manifest: %+v", got)
		}
	})
}

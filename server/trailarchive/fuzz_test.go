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
	m := &Manifest{Version: ManifestV2, Origin: trailseal.DefaultOrigin, Log: "acme", Tenant: "acme", Date: "2025-01-02",
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

// ParseManifests never panics on a version 3 manifest, and accepts nothing
// but one signed by the trusted key: whatever it accepts has the batches
// of the original, each within its files.
func FuzzParseManifests(f *testing.F) {
	signer, vs := fuzzKey(f)
	m := goldenV3(f, signer)
	_, good, err := m.encodeSigned(signer)
	if err != nil {
		f.Fatal(err)
	}
	want, err := ParseManifests(good, vs, trailseal.DefaultOrigin)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"version":3}`))
	f.Add([]byte(`{"version":3,"origin":"trail.example","files":[],"logs":[{"log":"acme","batches":[["2025-01-01",[[1,2]],0,0]]}],"signature":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseManifests(b, vs, trailseal.DefaultOrigin)
		if err != nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("accepted %d batches, the signed manifest has %d", len(got), len(want))
		}
		for i, v := range got {
			w := want[i]
			if v.Batch != w.Batch || v.Log != w.Log || v.Date != w.Date || v.Rows != w.Rows || len(v.Files) != len(w.Files) {
				t.Fatalf("accepted a different batch: %+v", v)
			}
			for j, f := range v.Files {
				if f != w.Files[j] {
					t.Fatalf("accepted different rows: %+v", f)
				}
			}
		}
	})
}

func fuzzKey(f *testing.F) (note.Signer, note.Verifiers) {
	skey, vkey, _ := trailseal.GenerateSigningKey(trailseal.DefaultOrigin)
	signer, _, _ := trailseal.ParseSigningKey(skey)
	v, _ := trailseal.ParseVerifierKey(vkey)
	return signer, note.VerifierList(v)
}

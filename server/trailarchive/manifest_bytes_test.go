package trailarchive

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden manifests in testdata/manifest")

// goldenKey is the fixed signing key of the golden manifests, made from a
// published seed (its public key is testdata/manifest/key.pub): test
// material, never a deployment's key.
func goldenKey(t *testing.T) string {
	skey, _, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 32)), trailseal.DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	return skey
}

// goldenManifest is the manifest of the vectors, signed as version.
func goldenManifest(t *testing.T, version int) (*Manifest, note.Verifiers) {
	t.Helper()
	signer, vkey, err := trailseal.ParseSigningKey(goldenKey(t))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := trailseal.ParseVerifierKey(vkey)
	at := time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC)
	cp, err := trailseal.SignCheckpoint(signer, trailseal.DefaultOrigin, "acme", 10, [32]byte{1, 2, 3}, at)
	if err != nil {
		t.Fatal(err)
	}
	m := &Manifest{Version: version, Origin: trailseal.DefaultOrigin, Log: "acme", Tenant: "acme", Date: "2026-01-01",
		Batch: "acme/2026-01-01/b0001", Files: []File{{Key: "acme/2026-01-01/b0001.parquet", Rows: 2, Bytes: 1234, SHA256: sha256Hex([]byte("parquet"))}},
		Rows: 2, Seqs: []trailseal.SeqRange{{From: 3, To: 5}}, Checkpoint: cp}
	if err := m.Sign(signer); err != nil {
		t.Fatal(err)
	}
	return m, note.VerifierList(v)
}

// TestManifestGolden: the signed bytes of a version 2 manifest are the JCS
// form of the file's object without "signature", exactly as
// testdata/manifest/v2.signed holds them; the note signs their SHA-256; a
// version 1 manifest (Go's encoding, before this was specified) still
// verifies.
func TestManifestGolden(t *testing.T) {
	dir := filepath.Join("testdata", "manifest")
	for _, c := range []struct {
		version int
		name    string
	}{{ManifestV1, "v1"}, {ManifestV2, "v2"}} {
		m, vs := goldenManifest(t, c.version)
		file, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, c.name+".manifest.json")
		if *updateGolden {
			os.MkdirAll(dir, 0o755)
			os.WriteFile(path, file, 0o644)
			if c.version == ManifestV2 {
				signed, _ := SignedBytes(file)
				os.WriteFile(filepath.Join(dir, "v2.signed"), signed, 0o644)
				n, _ := note.Open([]byte(m.Signature), vs)
				os.WriteFile(filepath.Join(dir, "v2.note.txt"), []byte(n.Text), 0o644)
				_, vkey, _ := trailseal.ParseSigningKey(goldenKey(t))
				os.WriteFile(filepath.Join(dir, "key.pub"), []byte(vkey+"\n"), 0o644)
			}
		}
		golden, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to write it)", err)
		}
		if !bytes.Equal(golden, file) {
			t.Errorf("%s: the manifest encodes differently from %s", c.name, path)
		}
		got, err := ParseManifest(golden, vs, trailseal.DefaultOrigin)
		if err != nil || got.Version != c.version || got.Batch != m.Batch {
			t.Fatalf("%s: golden manifest does not verify: %v", c.name, err)
		}
	}

	// Version 2, checked the way docs/retention.md tells an outsider to.
	file, _ := os.ReadFile(filepath.Join(dir, "v2.manifest.json"))
	want, _ := os.ReadFile(filepath.Join(dir, "v2.signed"))
	signed, err := SignedBytes(file)
	if err != nil || !bytes.Equal(signed, want) {
		t.Fatalf("signed bytes differ from testdata/manifest/v2.signed: %v\n%s", err, signed)
	}
	if bytes.Contains(signed, []byte(`"signature"`)) || bytes.ContainsRune(signed, '\n') {
		t.Fatalf("signed bytes are not the canonical object without its signature: %s", signed)
	}
	text, _ := os.ReadFile(filepath.Join(dir, "v2.note.txt"))
	sum := sha256.Sum256(want)
	lines := strings.Split(string(text), "\n")
	if len(lines) != 5 || lines[0] != "trail-archive-manifest/v2" || lines[1] != "trail.example/acme" || lines[3] != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Fatalf("note text %q", text)
	}

	// The same manifest re-indented, members reordered: same signed bytes,
	// still verifies. One value changed: refused.
	_, vs := goldenManifest(t, ManifestV2)
	compact := new(bytes.Buffer)
	if err := jsonCompact(compact, file); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseManifest(compact.Bytes(), vs, trailseal.DefaultOrigin); err != nil {
		t.Fatalf("compacted manifest: %v", err)
	}
	edited := bytes.Replace(file, []byte(`"bytes": 1234`), []byte(`"bytes": 1235`), 1)
	if _, err := ParseManifest(edited, vs, trailseal.DefaultOrigin); err == nil {
		t.Fatal("an edited manifest verified")
	}
}

func jsonCompact(dst *bytes.Buffer, src []byte) error { return json.Compact(dst, src) }

// FuzzSignedBytes: never panics, and the signed bytes are a fixed point
// (canonical, without a signature member), whatever object they came from.
func FuzzSignedBytes(f *testing.F) {
	f.Add([]byte(`{"version":2,"signature":"x","rows":1}`))
	f.Add([]byte(`{"b":[1,2.50,"\u00e9"],"a":{"z":null}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := SignedBytes(b)
		if err != nil {
			return
		}
		again, err := SignedBytes(s)
		if err != nil || !bytes.Equal(again, s) {
			t.Fatalf("%q -> %q -> %q %v", b, s, again, err)
		}
	})
}

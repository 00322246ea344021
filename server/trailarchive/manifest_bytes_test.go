package trailarchive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
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

// goldenV3 is the version 3 manifest of the vectors: two files, a shared
// one and the next; acme's batches of two days (the second with two seq
// ranges) and a platform batch whose rows continue from the first file
// into the second; a checkpoint per log, signed with signer.
func goldenV3(t testing.TB, signer note.Signer) *manifestV3 {
	t.Helper()
	at := time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC)
	acme, err := trailseal.SignCheckpoint(signer, trailseal.DefaultOrigin, "acme", 10, [32]byte{1, 2, 3}, at)
	if err != nil {
		t.Fatal(err)
	}
	platform, err := trailseal.SignCheckpoint(signer, trailseal.DefaultOrigin, trailseal.PlatformLog, 3, [32]byte{4, 5, 6}, at)
	if err != nil {
		t.Fatal(err)
	}
	return &manifestV3{Version: ManifestV3, Origin: trailseal.DefaultOrigin,
		Files: []fileV3{
			{Key: "data/2026-01-01_2026-01-02_0123456789abcdef.parquet", Rows: 5, Bytes: 4321, SHA256: sha256Hex([]byte("file 1"))},
			{Key: "data/2026-01-02_2026-01-02_fedcba9876543210.parquet", Rows: 2, Bytes: 2345, SHA256: sha256Hex([]byte("file 2"))},
		},
		Logs: []logV3{
			{Log: "acme", Checkpoint: acme, Batches: []batchV3{
				{Date: "2026-01-01", Seqs: []trailseal.SeqRange{{From: 3, To: 5}}, File: 0, FirstRow: 0},
				{Date: "2026-01-02", Seqs: []trailseal.SeqRange{{From: 5, To: 6}, {From: 8, To: 9}}, File: 0, FirstRow: 2},
			}},
			{Log: trailseal.PlatformLog, Checkpoint: platform, Batches: []batchV3{
				{Date: "2026-01-02", Seqs: []trailseal.SeqRange{{From: 0, To: 3}}, File: 0, FirstRow: 4},
			}},
		}}
}

// TestManifestV3Golden: a version 3 manifest encodes exactly as
// testdata/manifest/v3.manifest.json, at the key in v3.key.txt; its signed bytes
// (v3.signed) and note text (v3.note.txt) are what docs/retention.md says,
// recomputed here from the file alone as an outsider would (batch names,
// manifest name, SHA-256); its batches' rows run across its files; an
// edited value, or the file at another manifest's key, is refused.
func TestManifestV3Golden(t *testing.T) {
	dir := filepath.Join("testdata", "manifest")
	signer, vkey, err := trailseal.ParseSigningKey(goldenKey(t))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := trailseal.ParseVerifierKey(vkey)
	vs := note.VerifierList(v)
	key, file, err := goldenV3(t, signer).encodeSigned(signer)
	if err != nil {
		t.Fatal(err)
	}
	if *updateGolden {
		os.WriteFile(filepath.Join(dir, "v3.manifest.json"), file, 0o644)
		os.WriteFile(filepath.Join(dir, "v3.key.txt"), []byte(key+"\n"), 0o644)
		signed, _ := SignedBytes(file)
		os.WriteFile(filepath.Join(dir, "v3.signed"), signed, 0o644)
		views, _ := ParseManifests(file, vs, trailseal.DefaultOrigin)
		n, _ := note.Open([]byte(views[0].Signature), vs)
		os.WriteFile(filepath.Join(dir, "v3.note.txt"), []byte(n.Text), 0o644)
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%v (run with -update to write it)", err)
		}
		return b
	}
	golden, goldenKeyName := read("v3.manifest.json"), strings.TrimSpace(string(read("v3.key.txt")))
	if !bytes.Equal(golden, file) || key != goldenKeyName {
		t.Fatalf("the manifest encodes differently from v3.manifest.json (or its key %s is not v3.key.txt's)", key)
	}
	views, err := ParseManifests(golden, vs, trailseal.DefaultOrigin)
	if err != nil || len(views) != 3 {
		t.Fatalf("golden manifest: %d batches, %v", len(views), err)
	}
	f1, f2 := "data/2026-01-01_2026-01-02_0123456789abcdef.parquet", "data/2026-01-02_2026-01-02_fedcba9876543210.parquet"
	wantRows := [][]File{
		{{Key: f1, Rows: 2, FirstRow: 0, FileRows: 5}},
		{{Key: f1, Rows: 2, FirstRow: 2, FileRows: 5}},
		{{Key: f1, Rows: 1, FirstRow: 4, FileRows: 5}, {Key: f2, Rows: 2, FirstRow: 0, FileRows: 2}},
	}
	for i, v := range views {
		if len(v.Files) != len(wantRows[i]) || v.Version != ManifestV3 {
			t.Fatalf("batch %d: files %+v", i, v.Files)
		}
		for j, f := range v.Files {
			w := wantRows[i][j]
			if f.Key != w.Key || f.Rows != w.Rows || f.FirstRow != w.FirstRow || f.FileRows != w.FileRows {
				t.Fatalf("batch %d file %d: %+v, want %+v", i, j, f, w)
			}
		}
	}

	// The outsider's check, from docs/retention.md alone.
	signed, err := SignedBytes(golden)
	if err != nil || !bytes.Equal(signed, read("v3.signed")) {
		t.Fatalf("signed bytes differ from v3.signed: %v\n%s", err, signed)
	}
	if bytes.Contains(signed, []byte(`"signature"`)) {
		t.Fatal("the signed bytes hold the signature")
	}
	var doc struct {
		Logs []struct {
			Log     string              `json:"log"`
			Batches [][]json.RawMessage `json:"batches"`
		} `json:"logs"`
	}
	if err := json.Unmarshal(golden, &doc); err != nil {
		t.Fatal(err)
	}
	lines := new(bytes.Buffer)
	first, last := "9999-12-31", "0000-01-01"
	for _, lg := range doc.Logs {
		for _, b := range lg.Batches {
			var date string
			var seqs [][2]int64
			json.Unmarshal(b[0], &date)
			json.Unmarshal(b[1], &seqs)
			h := sha256.New()
			for _, r := range seqs {
				for s := r[0]; s < r[1]; s++ {
					h.Write(binary.BigEndian.AppendUint64(nil, uint64(s)))
				}
			}
			name := fmt.Sprintf("%012d-%012d-%x", seqs[0][0], seqs[len(seqs)-1][1]-1, h.Sum(nil)[:8])
			fmt.Fprintf(lines, "tenant=%s/date=%s/%s.manifest.json\n", lg.Log, date, name)
			first, last = min(first, date), max(last, date)
		}
	}
	digest := sha256.Sum256(lines.Bytes())
	name := fmt.Sprintf("%s_%s_%x", first, last, digest[:8])
	if goldenKeyName != "manifests/"+name+".manifest.json" {
		t.Fatalf("key %s, the docs' recipe gives %s", goldenKeyName, name)
	}
	sum := sha256.Sum256(signed)
	wantText := "trail-archive-manifest/v3\ntrail.example\n" + name + "\n" + base64.StdEncoding.EncodeToString(sum[:]) + "\n"
	if text := string(read("v3.note.txt")); text != wantText {
		t.Fatalf("note text %q, the docs' recipe gives %q", text, wantText)
	}
	var sig struct {
		Signature string `json:"signature"`
	}
	json.Unmarshal(golden, &sig)
	if n, err := note.Open([]byte(sig.Signature), vs); err != nil || n.Text != wantText {
		t.Fatalf("note.Open: %v", err)
	}

	// Re-indented: still verifies. A value changed: refused.
	var pretty bytes.Buffer
	json.Indent(&pretty, golden, "", "  ")
	if _, err := ParseManifests(pretty.Bytes(), vs, trailseal.DefaultOrigin); err != nil {
		t.Fatalf("indented manifest: %v", err)
	}
	for _, edit := range [][2]string{{`"bytes":4321`, `"bytes":4322`}, {`[[3,5]]`, `[[3,6]]`}, {`,0,2]`, `,0,1]`}} {
		edited := bytes.Replace(golden, []byte(edit[0]), []byte(edit[1]), 1)
		if bytes.Equal(edited, golden) {
			t.Fatalf("%s is not in the golden manifest", edit[0])
		}
		if _, err := ParseManifests(edited, vs, trailseal.DefaultOrigin); !errors.Is(err, ErrBadManifest) {
			t.Fatalf("edited %s: %v", edit[0], err)
		}
	}
	// At another name's key: moved.
	tgt := &Dir{Root: t.TempDir()}
	ctx := context.Background()
	other := ManifestKeyV3("2026-01-01_2026-01-02_0000000000000000")
	tgt.Put(ctx, other, golden)
	tgt.Put(ctx, key, golden)
	a := &Archive{Target: tgt, Verifiers: vs}
	if _, err := a.Manifests(ctx, other); !errors.Is(err, ErrBadManifest) || !strings.Contains(err.Error(), "moved or foreign") {
		t.Fatalf("a manifest at another's key: %v", err)
	}
	if ms, err := a.Manifests(ctx, key); err != nil || len(ms) != 3 || ms[2].Key != key {
		t.Fatalf("at its key: %v", err)
	}
}

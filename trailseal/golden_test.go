package trailseal_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail/trailseal"
	"github.com/trailhq/trail/trailseal/sealtest"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors")

const vectorsDir = "testdata/vectors"

// Vectors is the JSON form of testdata/vectors/vectors.json, shown in
// docs/verification.md.
type Vectors struct {
	Comment     string            `json:"comment"`
	Origin      string            `json:"origin"`
	Log         string            `json:"log"`
	SigningKey  string            `json:"signing_key"`
	PublicKey   string            `json:"public_key"`
	Leaves      []VectorLeaf      `json:"leaves"`
	Checkpoints []VectorCheckpint `json:"checkpoints"`
}

type VectorLeaf struct {
	Seq       int64     `json:"seq"`
	EventID   string    `json:"event_id"`
	Canonical string    `json:"canonical"`
	LeafHash  tlog.Hash `json:"leaf_hash"`
}

type VectorCheckpint struct {
	Size int64     `json:"size"`
	Root tlog.Hash `json:"root"`
	Note string    `json:"note"`
}

// buildVectors seals 7 events of tenant "acme" with the fixed test key and
// returns every file of testdata/vectors.
func buildVectors(t *testing.T) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	skeyName := trailseal.DefaultOrigin
	signer, _ := sealtest.TestKey(t, skeyName)
	skey, vkey := sealtest.TestKeyPair(skeyName)
	m := trailseal.NewMemLog()
	evs := sealtest.Events(t, "acme", 0, 7)
	if _, err := m.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	now := sealtest.Base.Add(time.Hour)
	s, err := trailseal.NewSealer(m, &trailseal.Config{Signer: signer, Holder: "golden", BatchSize: 4,
		CheckpointEvents: 4, CheckpointInterval: time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SealAll(ctx); err != nil {
		t.Fatal(err)
	}
	v := Vectors{
		Comment:    "Trail integrity test vectors: 7 events of tenant acme sealed into log acme; checkpoints at sizes 4 and 7. The signing key is a published TEST key.",
		Origin:     trailseal.DefaultOrigin,
		Log:        "acme",
		SigningKey: skey,
		PublicKey:  vkey,
	}
	files := map[string][]byte{}
	var jsonl bytes.Buffer
	for i := range evs {
		b, err := trailseal.CanonicalBytes(&evs[i])
		if err != nil {
			t.Fatal(err)
		}
		v.Leaves = append(v.Leaves, VectorLeaf{Seq: int64(i), EventID: evs[i].ID.String(), Canonical: string(b), LeafHash: tlog.RecordHash(b)})
		j, err := json.Marshal(evs[i])
		if err != nil {
			t.Fatal(err)
		}
		jsonl.Write(append(j, '\n'))
	}
	cps, err := m.Checkpoints(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range cps {
		v.Checkpoints = append(v.Checkpoints, VectorCheckpint{Size: cp.Size, Root: cp.Root, Note: cp.Note})
	}
	files["vectors.json"] = mustJSON(t, v)
	files["events.jsonl"] = jsonl.Bytes()
	files["key.pub"] = []byte(vkey + "\n")
	files["checkpoint-7.note"] = []byte(cps[len(cps)-1].Note)
	p, err := trailseal.ProveInclusion(ctx, m, evs[3].ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	files["proof-3.json"] = mustJSON(t, p)
	files["event-3.canonical"] = p.Canonical
	c, err := trailseal.ProveConsistency(ctx, m, cps[0], cps[len(cps)-1])
	if err != nil {
		t.Fatal(err)
	}
	files["consistency-4-7.json"] = mustJSON(t, c)
	return files
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestGoldenVectors checks testdata/vectors against a fresh run (go test
// -run GoldenVectors -update rewrites them) and checks the vectors
// themselves with tlog and note alone.
func TestGoldenVectors(t *testing.T) {
	files := buildVectors(t)
	if *update {
		if err := os.MkdirAll(vectorsDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(vectorsDir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(vectorsDir, name))
		if err != nil {
			t.Fatalf("%v (run go test ./trailseal -run GoldenVectors -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from a fresh run: the canonical encoding, leaf hashing or checkpoint format changed", name)
		}
	}

	// The vectors are self-consistent for an independent implementation.
	var v Vectors
	if err := json.Unmarshal(files["vectors.json"], &v); err != nil {
		t.Fatal(err)
	}
	var stored []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	verifier, err := note.NewVerifier(v.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range v.Leaves {
		if tlog.RecordHash([]byte(l.Canonical)) != l.LeafHash {
			t.Fatalf("leaf %d: hash mismatch", l.Seq)
		}
		hs, err := tlog.StoredHashesForRecordHash(l.Seq, l.LeafHash, r)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hs...)
	}
	for _, cp := range v.Checkpoints {
		root, err := tlog.TreeHash(cp.Size, r)
		if err != nil || root != cp.Root {
			t.Fatalf("checkpoint %d: root %s, leaves give %s (%v)", cp.Size, cp.Root, root, err)
		}
		n, err := note.Open([]byte(cp.Note), note.VerifierList(verifier))
		if err != nil {
			t.Fatalf("checkpoint %d: %v", cp.Size, err)
		}
		want := v.Origin + "/" + v.Log + "\n" + strconv.FormatInt(cp.Size, 10) + "\n" + cp.Root.String() + "\n"
		if n.Text != want {
			t.Fatalf("checkpoint %d text %q, want %q", cp.Size, n.Text, want)
		}
	}
}

// TestVerifyProofExample builds examples/verifyproof, a program that does
// not import Trail, outside the workspace, and runs it on the golden
// vectors and on proofs made now; tampered inputs must fail.
func TestVerifyProofExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a separate module")
	}
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"main.go", "export.go", "go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join("..", "examples", "verifyproof", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(tmp, "verifyproof")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = src
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build examples/verifyproof: %v\n%s", err, out)
	}
	// The example must not import Trail.
	list := exec.Command("go", "list", "-deps", ".")
	list.Dir = src
	list.Env = build.Env
	deps, err := list.Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(deps), "trailhq") {
		t.Fatal("examples/verifyproof depends on Trail")
	}

	run := func(args ...string) (string, bool) {
		out, err := exec.Command(bin, args...).CombinedOutput()
		return string(out), err == nil
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	vec := func(name string) string { return filepath.Join(vectorsDir, name) }

	// Golden vectors.
	if out, ok := run("-key", vec("key.pub"), "-proof", vec("proof-3.json"), "-origin", trailseal.DefaultOrigin, "-log", "acme", "-event-id", goldenEvent3); !ok || !strings.HasPrefix(out, "OK:") {
		t.Fatalf("golden proof: %s", out)
	}
	if out, ok := run("-key", vec("key.pub"), "-proof", vec("proof-3.json"), "-event", vec("event-3.canonical"), "-checkpoint", vec("checkpoint-7.note"), "-origin", trailseal.DefaultOrigin, "-log", "acme", "-event-id", goldenEvent3); !ok {
		t.Fatalf("golden proof with separate files: %s", out)
	}
	if out, ok := run("-key", vec("key.pub"), "-consistency", vec("consistency-4-7.json"), "-origin", trailseal.DefaultOrigin, "-log", "acme"); !ok {
		t.Fatalf("golden consistency: %s", out)
	}

	// Fresh data from a MemLog with its own generated key.
	ctx := context.Background()
	skey, vkey, err := trailseal.GenerateSigningKey("trail.test")
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := trailseal.ParseSigningKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	m := trailseal.NewMemLog()
	evs := sealtest.Events(t, "globex", 0, 13)
	if _, err := m.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	s, err := trailseal.NewSealer(m, &trailseal.Config{Signer: signer, Origin: "trail.test", BatchSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SealAll(ctx); err != nil {
		t.Fatal(err)
	}
	key := write("fresh.pub", []byte(vkey+"\n"))
	for i := range evs {
		p, err := trailseal.ProveInclusion(ctx, m, evs[i].ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		pf := write("p.json", mustJSON(t, p))
		ask := []string{"-log", "globex", "-event-id", evs[i].ID.String()}
		if out, ok := run(append([]string{"-key", key, "-proof", pf, "-origin", "trail.test"}, ask...)...); !ok {
			t.Fatalf("event %d: %s", i, out)
		}
		if i == 6 {
			bad := p
			bad.Canonical = bytes.Replace(p.Canonical, []byte("event 6"), []byte("event 9"), 1)
			if out, ok := run(append([]string{"-key", key, "-proof", write("bad.json", mustJSON(t, bad)), "-origin", "trail.test"}, ask...)...); ok {
				t.Fatalf("tampered event verified: %s", out)
			}
			if out, ok := run(append([]string{"-key", vec("key.pub"), "-proof", pf, "-origin", "trail.test"}, ask...)...); ok {
				t.Fatalf("proof verified with another key: %s", out)
			}
			if out, ok := run(append([]string{"-key", key, "-proof", pf, "-origin", "trail.example"}, ask...)...); ok {
				t.Fatalf("proof verified for another origin: %s", out)
			}
			cut := p
			cut.Checkpoint = p.Checkpoint[:len(p.Checkpoint)-20]
			if out, ok := run(append([]string{"-key", key, "-proof", write("cut.json", mustJSON(t, cut)), "-origin", "trail.test"}, ask...)...); ok {
				t.Fatalf("truncated checkpoint verified: %s", out)
			}
			moved := p
			moved.Index = 7
			if out, ok := run(append([]string{"-key", key, "-proof", write("moved.json", mustJSON(t, moved)), "-origin", "trail.test"}, ask...)...); ok {
				t.Fatalf("proof for another index verified: %s", out)
			}
		}
	}
}

// goldenEvent3 is the event of testdata/vectors/proof-3.json: what a
// verifier asks examples/verifyproof about.
const goldenEvent3 = "01957fed-25b8-78e6-b044-38ddf301f1bb"

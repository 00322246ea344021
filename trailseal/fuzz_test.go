package trailseal_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trailhq/trail/trailseal"
	"github.com/trailhq/trail/trailseal/sealtest"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func FuzzParseCheckpointBody(f *testing.F) {
	f.Add([]byte("trail.example/acme\n7\nSBi1Klwg4vWAve9ILdq5K0xsPJ4e3MrPiq1QGXHFv1c=\n"))
	f.Add([]byte("o/a\n0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\next\n"))
	f.Add([]byte("o/a\n01\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		body, err := trailseal.ParseCheckpointBody(text)
		if err != nil {
			return
		}
		// What parses formats back to the first three lines, and reparses
		// to the same body.
		again, err := trailseal.ParseCheckpointBody(body.Format())
		if err != nil || again != body {
			t.Fatalf("round trip: %+v -> %q -> %+v, %v", body, body.Format(), again, err)
		}
		if len(body.Format()) > len(text) || string(text[:len(body.Format())]) != string(body.Format()) {
			t.Fatalf("Format %q is not the start of %q", body.Format(), text)
		}
	})
}

// fuzzLog is a small sealed log and its genuine proofs, for the proof fuzzers.
type fuzzLog struct {
	keys   note.Verifiers
	leaves []tlog.Hash
	cps    map[int64]tlog.Hash
	incl   []byte
	cons   []byte
}

func newFuzzLog(f *testing.F) *fuzzLog {
	ctx := context.Background()
	signer, verifier := sealtest.TestKey(f, "trail.test")
	m := trailseal.NewMemLog()
	evs := sealtest.Events(f, "acme", 0, 9)
	if _, err := m.Append(ctx, evs); err != nil {
		f.Fatal(err)
	}
	s, err := trailseal.NewSealer(m, &trailseal.Config{Signer: signer, Origin: "trail.test", BatchSize: 4, CheckpointEvents: 4, CheckpointInterval: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := s.SealAll(ctx); err != nil {
		f.Fatal(err)
	}
	fl := &fuzzLog{keys: note.VerifierList(verifier), cps: map[int64]tlog.Hash{}}
	ses, _ := m.Leaves(ctx, "acme", 0, 9)
	for _, se := range ses {
		fl.leaves = append(fl.leaves, se.Hash)
	}
	cps, _ := m.Checkpoints(ctx, "acme")
	for _, cp := range cps {
		fl.cps[cp.Size] = cp.Root
	}
	p, err := trailseal.ProveInclusion(ctx, m, evs[5].ID, nil)
	if err != nil {
		f.Fatal(err)
	}
	fl.incl, _ = json.Marshal(p)
	c, err := trailseal.ProveConsistency(ctx, m, cps[0], cps[len(cps)-1])
	if err != nil {
		f.Fatal(err)
	}
	fl.cons, _ = json.Marshal(c)
	return fl
}

func addFile(f *testing.F, name string) {
	if b, err := os.ReadFile(filepath.Join(vectorsDir, name)); err == nil {
		f.Add(b)
	}
}

func FuzzParseInclusionProof(f *testing.F) {
	fl := newFuzzLog(f)
	f.Add(fl.incl)
	addFile(f, "proof-3.json")
	f.Add([]byte(`{"log":"acme","index":-1,"tree_size":1,"proof":[],"checkpoint":"x"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := trailseal.ParseInclusionProof(data)
		if err != nil {
			return
		}
		if p.Index < 0 || p.Index >= p.TreeSize || p.Log == "" {
			t.Fatalf("parsed an invalid proof: %+v", p)
		}
		if p.Verify(fl.keys, "trail.test") != nil {
			return
		}
		// Verified: it must be about a real leaf at a real checkpoint.
		if p.Log != "acme" || fl.cps[p.TreeSize] != p.RootHash || p.Index >= int64(len(fl.leaves)) || fl.leaves[p.Index] != p.LeafHash {
			t.Fatalf("a forged proof verified: %+v", p)
		}
		if p.Canonical != nil && tlog.RecordHash(p.Canonical) != fl.leaves[p.Index] {
			t.Fatalf("forged canonical bytes verified")
		}
	})
}

func FuzzParseConsistencyProof(f *testing.F) {
	fl := newFuzzLog(f)
	f.Add(fl.cons)
	addFile(f, "consistency-4-7.json")
	f.Add([]byte(`{"log":"acme","old_size":2,"new_size":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := trailseal.ParseConsistencyProof(data)
		if err != nil {
			return
		}
		if p.OldSize <= 0 || p.NewSize < p.OldSize {
			t.Fatalf("parsed an invalid proof: %+v", p)
		}
		if p.Verify(fl.keys, "trail.test") != nil {
			return
		}
		if p.Log != "acme" || fl.cps[p.OldSize] != p.OldRoot || fl.cps[p.NewSize] != p.NewRoot {
			t.Fatalf("a forged consistency proof verified: %+v", p)
		}
	})
}

func FuzzOpenCheckpoint(f *testing.F) {
	fl := newFuzzLog(f)
	var p trailseal.InclusionProof
	_ = json.Unmarshal(fl.incl, &p)
	f.Add([]byte(p.Checkpoint))
	addFile(f, "checkpoint-7.note")
	f.Fuzz(func(t *testing.T, signed []byte) {
		body, err := trailseal.OpenCheckpoint(signed, fl.keys, "trail.test/acme")
		if err != nil {
			return
		}
		if fl.cps[body.Size] != body.Root {
			t.Fatalf("a forged checkpoint opened: %+v", body)
		}
	})
}

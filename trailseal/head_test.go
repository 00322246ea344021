package trailseal_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail/trailseal"
	"github.com/trailhq/trail/trailseal/sealtest"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const headDir = "testdata/head"

// goldenHead is the head of testdata/head: three logs, signed with the
// fixed test key at a fixed time.
func goldenHead(t *testing.T) (trailseal.Head, note.Verifiers) {
	t.Helper()
	signer, verifier := sealtest.TestKey(t, trailseal.DefaultOrigin)
	entries := []trailseal.HeadEntry{
		{Log: "globex", Size: 3, Root: tlog.RecordHash([]byte("globex"))},
		{Log: "_platform", Size: 1, Root: tlog.RecordHash([]byte("_platform"))},
		{Log: "acme", Size: 7, Root: tlog.RecordHash([]byte("acme"))},
	}
	h, err := trailseal.SignHead(signer, trailseal.DefaultOrigin, entries, time.Date(2026, 12, 7, 8, 0, 0, 123456789, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return h, note.VerifierList(verifier)
}

// The head's bytes are pinned: testdata/head/head-3.head is what witnesses
// keep and docs/verification.md describes (regenerate with -update).
func TestHeadGolden(t *testing.T) {
	h, vs := goldenHead(t)
	got := MarshalHeadFiles(t, h)
	if *update {
		os.MkdirAll(headDir, 0o755)
		for name, b := range got {
			if err := os.WriteFile(filepath.Join(headDir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, b := range got {
		want, err := os.ReadFile(filepath.Join(headDir, name))
		if err != nil {
			t.Fatalf("%v (run go test -run TestHeadGolden -update)", err)
		}
		if !bytes.Equal(b, want) {
			t.Errorf("%s changed:\n%s\nwant:\n%s", name, b, want)
		}
	}
	file, _ := os.ReadFile(filepath.Join(headDir, "head-3.head"))
	p, err := trailseal.ParseHead(file, vs, trailseal.DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Entries) != 3 || p.Entries[0].Log != "_platform" || p.Entries[2].Log != "globex" || p.Root != h.Root || !p.Time.Equal(h.Time) {
		t.Fatalf("parsed %+v", p)
	}
	// Checked the way docs/verification.md says an outsider does it, with
	// x/mod only: note.Open, the lines, tlog.RecordHash, tlog.TreeHash.
	entries, signed, _ := bytes.Cut(file, []byte("\n\n"))
	n, err := note.Open(signed, vs)
	if err != nil {
		t.Fatal(err)
	}
	var leaves []tlog.Hash
	for _, line := range strings.SplitAfter(string(entries)+"\n", "\n") {
		if line != "" {
			leaves = append(leaves, tlog.RecordHash([]byte(line)))
		}
	}
	root, err := tlog.TreeHash(int64(len(leaves)), memReader(leaves))
	if err != nil {
		t.Fatal(err)
	}
	want := trailseal.CheckpointOrigin(trailseal.DefaultOrigin, trailseal.HeadLog) + "\n3\n" + root.String() + "\ntime 2026-12-07T08:00:00.123456Z\n"
	if n.Text != want {
		t.Fatalf("note text %q, want %q", n.Text, want)
	}
	// Each entry's inclusion proof.
	body, err := trailseal.OpenHead([]byte(h.Note), vs, trailseal.DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range h.Entries {
		pr, err := trailseal.ProveHeadEntry(h, i)
		if err != nil {
			t.Fatal(err)
		}
		if err := trailseal.CheckHeadEntry(body, e, pr); err != nil {
			t.Fatal(err)
		}
		e.Size++
		if err := trailseal.CheckHeadEntry(body, e, pr); !errors.Is(err, trailseal.ErrBadProof) {
			t.Fatalf("altered entry passed: %v", err)
		}
	}
}

// memReader serves the stored hashes of the tree over leaves, computed
// with tlog alone.
func memReader(leaves []tlog.Hash) tlog.HashReader {
	var stored []tlog.Hash
	r := tlog.HashReaderFunc(func(ix []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(ix))
		for k, x := range ix {
			out[k] = stored[x]
		}
		return out, nil
	})
	for i, l := range leaves {
		hs, err := tlog.StoredHashesForRecordHash(int64(i), l, r)
		if err != nil {
			panic(err)
		}
		stored = append(stored, hs...)
	}
	return r
}

func MarshalHeadFiles(t *testing.T, h trailseal.Head) map[string][]byte {
	return map[string][]byte{"head-3.head": trailseal.MarshalHead(h)}
}

// Every change to a head file is refused: a byte flipped anywhere, a line
// dropped, entries reordered.
func TestParseHeadRefuses(t *testing.T) {
	h, vs := goldenHead(t)
	good := trailseal.MarshalHead(h)
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		if _, err := trailseal.ParseHead(b, vs, trailseal.DefaultOrigin); err == nil {
			t.Fatalf("byte %d flipped: accepted", i)
		}
	}
	lines := strings.SplitAfter(string(good), "\n")
	swapped := lines[1] + lines[0] + strings.Join(lines[2:], "")
	if _, err := trailseal.ParseHead([]byte(swapped), vs, ""); err == nil {
		t.Fatal("reordered entries accepted")
	}
	dropped := lines[0] + strings.Join(lines[2:], "")
	if _, err := trailseal.ParseHead([]byte(dropped), vs, ""); err == nil {
		t.Fatal("dropped entry accepted")
	}
	if _, err := trailseal.ParseHead(good, vs, "other.example"); err == nil {
		t.Fatal("another deployment's head accepted")
	}
}

func FuzzParseHead(f *testing.F) {
	signer, verifier := sealtest.TestKey(f, trailseal.DefaultOrigin)
	h, err := trailseal.SignHead(signer, "", []trailseal.HeadEntry{{Log: "a", Size: 1}, {Log: "b:c", Size: 9}}, time.Unix(1, 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(trailseal.MarshalHead(h))
	f.Add([]byte("a 1 AAAA\n\nx"))
	vs := note.VerifierList(verifier)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := trailseal.ParseHead(b, vs, "")
		if err != nil {
			return
		}
		// What parses is canonical: it marshals back to the same bytes.
		if got := trailseal.MarshalHead(p); !bytes.Equal(got, b) {
			t.Fatalf("parsed head re-marshals differently:\n%q\n%q", got, b)
		}
	})
}

func FuzzParseHeadBody(f *testing.F) {
	f.Add([]byte("trail.example/_head\n3\n" + tlog.Hash{}.String() + "\ntime 2026-12-07T08:00:00.123456Z\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		body, err := trailseal.ParseHeadBody(b)
		if err != nil {
			return
		}
		again := body.Origin + "\n" + strconv.FormatInt(body.Logs, 10) + "\n" + body.Root.String() + "\ntime " + body.Time.Format(time.RFC3339Nano) + "\n"
		if again != string(b) {
			t.Fatalf("%q parsed, formats as %q", b, again)
		}
	})
}

func FuzzWitnessCheckpointKey(f *testing.F) {
	f.Add(trailseal.WitnessCheckpointKey(trailseal.Checkpoint{Log: "acme", Size: 7, Root: tlog.RecordHash(nil)}))
	f.Fuzz(func(t *testing.T, key string) {
		w, err := trailseal.ParseWitnessCheckpointKey(key)
		if err != nil {
			return
		}
		if again := trailseal.WitnessCheckpointKey(trailseal.Checkpoint{Log: w.Log, Size: w.Size, Root: w.Root}); again != key {
			t.Fatalf("%q parsed, formats as %q", key, again)
		}
	})
}

// A directory witness never replaces an object: the same bytes again are a
// success, other bytes a conflict, and the first bytes stay.
func TestDirWitnessNeverReplaces(t *testing.T) {
	ctx := context.Background()
	w := trailseal.DirWitness{Dir: t.TempDir()}
	if err := w.Put(ctx, "checkpoints/acme/x.note", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := w.Put(ctx, "checkpoints/acme/x.note", []byte("one")); err != nil {
		t.Fatalf("same bytes again: %v", err)
	}
	if err := w.Put(ctx, "checkpoints/acme/x.note", []byte("two")); !errors.Is(err, trailseal.ErrWitnessConflict) {
		t.Fatalf("other bytes: %v, want ErrWitnessConflict", err)
	}
	if b, _ := w.Get(ctx, "checkpoints/acme/x.note"); string(b) != "one" {
		t.Fatalf("object is %q", b)
	}
	if err := w.Put(ctx, "../escape", []byte("x")); err == nil {
		t.Fatal("a key escaping the directory was written")
	}
	keys, err := w.List(ctx, "checkpoints/")
	if err != nil || len(keys) != 1 {
		t.Fatalf("list: %v %v", keys, err)
	}
	if fi, _ := os.Stat(filepath.Join(w.Dir, "checkpoints/acme/x.note")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
}

func TestDirWitnessContract(t *testing.T) {
	sealtest.RunWitness(t, trailseal.DirWitness{Dir: t.TempDir()})
}

// Under Run, witnesses are written by a goroutine of their own: every
// checkpoint reaches the witness while the sealer keeps sealing, and what
// the last steps signed is delivered before Run returns.
func TestRunWritesWitnesses(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := trailseal.NewMemLog()
	w := trailseal.DirWitness{Dir: t.TempDir()}
	signer, _ := sealtest.TestKey(t, trailseal.DefaultOrigin)
	sl, err := trailseal.NewSealer(m, &trailseal.Config{Signer: signer, Witnesses: []trailseal.Witness{w},
		PollInterval: time.Millisecond, CheckpointInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sl.Run(ctx) }()
	for i := range 5 {
		if _, err := m.Append(ctx, sealtest.Events(t, "acme", i*3, 3)); err != nil {
			t.Fatal(err)
		}
		want := trailseal.WitnessCheckpoints + "acme/" + fmt.Sprintf("%020d", (i+1)*3)
		for {
			keys, err := w.List(ctx, trailseal.WitnessCheckpoints)
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) > 0 && strings.HasPrefix(keys[len(keys)-1], want) {
				break
			}
			runtime.Gosched()
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

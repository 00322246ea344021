package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// memHashes is a tlog.HashReader over stored hashes in memory.
type memHashes []tlog.Hash

func (m memHashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = m[x]
	}
	return out, nil
}

// TestAskedFor: a proof verifies only for the origin, log and event asked
// about on the command line; a valid proof of another event, another
// tenant's log or another deployment fails.
func TestAskedFor(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "trail.test")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "trail.pub")
	os.WriteFile(keyFile, []byte(vkey+"\n"), 0o644)

	// One log per tenant: acme holds two events, globex one.
	ids := []string{"0190a5c8-7d3e-7cc1-8a55-2f0e4d7e1b2a", "0190a5c8-7d3e-7cc1-8a55-2f0e4d7e1b2b", "0190a5c8-7d3e-7cc1-8a55-2f0e4d7e1b2c"}
	tenants := []string{"acme", "acme", "globex"}
	canon := func(i int) []byte {
		return fmt.Appendf(nil, `{"action":"user.login","actor":{"id":"1","type":"user"},"id":%q,"occurred_at":"2026-01-01T00:00:00.000000Z","outcome":"success","schema_version":1,"tenant":%q}`, ids[i], tenants[i])
	}
	proofOf := func(log string, members []int, at int, origin string) string {
		var hashes memHashes
		for n, i := range members {
			more, err := tlog.StoredHashes(int64(n), canon(i), hashes)
			if err != nil {
				t.Fatal(err)
			}
			hashes = append(hashes, more...)
		}
		size := int64(len(members))
		root, _ := tlog.TreeHash(size, hashes)
		rp, err := tlog.ProveRecord(size, int64(at), hashes)
		if err != nil {
			t.Fatal(err)
		}
		cp, _ := note.Sign(&note.Note{Text: fmt.Sprintf("%s/%s\n%d\n%s\n", origin, log, size, root)}, signer)
		b, _ := json.Marshal(inclusion{Log: log, Index: int64(at), TreeSize: size, Proof: rp, Checkpoint: string(cp), Canonical: canon(members[at])})
		path := filepath.Join(t.TempDir(), "proof.json")
		os.WriteFile(path, b, 0o644)
		return path
	}
	good := proofOf("acme", []int{0, 1}, 1, "trail.test")
	asked := want{origin: "trail.test", log: "acme", eventID: ids[1]}
	if msg, err := run(keyFile, good, "", "", "", asked); err != nil || !strings.Contains(msg, "record 1 of log acme") {
		t.Fatalf("the proof asked for: %q %v", msg, err)
	}
	globex := proofOf("globex", []int{2}, 0, "trail.test")
	for name, c := range map[string]struct {
		proof string
		w     want
		msg   string
	}{
		"another event of the log":   {good, want{"trail.test", "acme", ids[0]}, "proven event is"},
		"another tenant's log":       {globex, want{"trail.test", "acme", ids[2]}, "for log"},
		"another deployment":         {good, want{"trail.other", "acme", ids[1]}, "checkpoint is for"},
		"log relabelled in the file": {relabel(t, globex, "acme"), want{"trail.test", "acme", ids[2]}, "belongs to log"},
	} {
		if _, err := run(keyFile, c.proof, "", "", "", c.w); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want an error with %q", name, err, c.msg)
		}
	}
	if err := (want{log: "acme", eventID: ids[1]}).check(keyFile, good, ""); err == nil {
		t.Error("no -origin: accepted")
	}
	if err := (want{origin: "trail.test", eventID: ids[1]}).check(keyFile, good, ""); err == nil {
		t.Error("no -log: accepted")
	}
	if err := (want{origin: "trail.test", log: "acme"}).check(keyFile, good, ""); err == nil {
		t.Error("no -event-id: accepted")
	}
}

// relabel rewrites the log field of a proof file, as a forger would.
func relabel(t *testing.T, path, log string) string {
	var m map[string]any
	b, _ := os.ReadFile(path)
	json.Unmarshal(b, &m)
	m["log"] = log
	b, _ = json.Marshal(m)
	out := filepath.Join(t.TempDir(), "relabelled.json")
	os.WriteFile(out, b, 0o644)
	return out
}

// TestCanonicalVectors: the export mode's canonical encoding, written from
// docs/canonical-encoding.md §5 alone, gives Trail's bytes for every vector
// in testdata/canonical.
func TestCanonicalVectors(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/canonical/*.json")
	if len(files) == 0 {
		t.Skip("no vectors (run inside the Trail repository)")
	}
	for _, f := range files {
		in, _ := os.ReadFile(f)
		want, err := os.ReadFile(strings.TrimSuffix(f, ".json") + ".canonical")
		if err != nil {
			continue
		}
		// The vectors are events as sent; stored events (what exports hold)
		// always carry Normalize's defaults.
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader(in))
		d.UseNumber()
		d.Decode(&m)
		if _, ok := m["outcome"]; !ok {
			m["outcome"] = "success"
		}
		if _, ok := m["schema_version"]; !ok {
			m["schema_version"] = 1
			if _, ok := m["span_id"]; ok {
				m["schema_version"] = 2 // Normalize: events with a span are version 2
			}
		}
		in, _ = json.Marshal(m)
		got, err := canonicalEvent(in)
		if err != nil || string(got) != string(want) {
			t.Errorf("%s: %v\n got %s\nwant %s", f, err, got, want)
		}
	}
}

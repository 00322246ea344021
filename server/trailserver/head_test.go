package trailserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
)

func TestHeadEndpoint(t *testing.T) {
	forEachBackend(t, testHeadEndpoint)
}

// GET /v1/head: 404 before the first head; an all-tenant key gets every
// entry and the head file; a tenant key gets only its own entry with a
// proof that checks against the signed root, never another tenant's name.
func testHeadEndpoint(t *testing.T, b backend) {
	f, sl, vkey := integrityFixture(t, b)
	if r := f.do("GET", "/v1/head", "readerAll", nil); r.status != http.StatusNotFound {
		t.Fatalf("head before sealing: %d %s", r.status, r.body)
	}
	if _, err := sl.SealAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	vs := note.VerifierList(v)
	var all trailserver.HeadView
	if r := f.do("GET", "/v1/head", "readerAll", nil); r.status != 200 || json.Unmarshal(r.body, &all) != nil {
		t.Fatalf("head: %d %s", r.status, r.body)
	}
	body, err := trailseal.OpenHead([]byte(all.Note), vs, testOrigin)
	if err != nil || body.Logs != int64(len(all.Entries)) || body.Root != all.Root || len(all.Entries) < 2 || all.Proof != nil {
		t.Fatalf("head %+v: %v", all, err)
	}
	r := f.do("GET", "/v1/head?format=file", "readerAll", nil)
	if h, err := trailseal.ParseHead(r.body, vs, testOrigin); err != nil || h.Root != all.Root {
		t.Fatalf("head file: %v\n%s", err, r.body)
	}
	var own trailserver.HeadView
	if r = f.do("GET", "/v1/head", "readerA", nil); r.status != 200 || json.Unmarshal(r.body, &own) != nil {
		t.Fatalf("tenant head: %d %s", r.status, r.body)
	}
	if own.Entries != nil || own.Entry == nil || own.Entry.Log != "acme" || own.Proof == nil || strings.Contains(string(r.body), "globex") {
		t.Fatalf("tenant head shows more or less than its own entry: %s", r.body)
	}
	if err := trailseal.CheckHeadEntry(body, *own.Entry, *own.Proof); err != nil {
		t.Fatal(err)
	}
	cp, err := trailseal.OpenCheckpoint(mustLatest(t, f), vs, testOrigin+"/acme")
	if err != nil || cp.Size != own.Entry.Size || cp.Root != own.Entry.Root {
		t.Fatalf("acme's entry %+v is not its latest checkpoint %+v: %v", own.Entry, cp, err)
	}
	if r := f.do("GET", "/v1/head?tenant=globex", "readerA", nil); r.status != http.StatusForbidden {
		t.Fatalf("another tenant's entry: %d %s", r.status, r.body)
	}
	if r := f.do("GET", "/v1/head?format=file", "readerA", nil); r.status != http.StatusBadRequest {
		t.Fatalf("head file for a tenant key: %d %s", r.status, r.body)
	}
	if r := f.do("GET", "/v1/head?format=xml", "readerAll", nil); r.status != http.StatusBadRequest {
		t.Fatalf("bad format: %d", r.status)
	}
}

func mustLatest(t *testing.T, f *fixture) []byte {
	t.Helper()
	r := f.do("GET", "/v1/checkpoints/latest?format=note", "readerA", nil)
	if r.status != 200 {
		t.Fatalf("latest: %d %s", r.status, r.body)
	}
	return r.body
}

func TestWitnessCheckpointsEndpoint(t *testing.T) {
	forEachBackend(t, testWitnessCheckpointsEndpoint)
}

// GET /v1/witness/checkpoints: a tenant reads its checkpoints as the
// witness keeps them (signed, the same as the store's while nobody
// tampered), never another tenant's; 404 without a witness.
func testWitnessCheckpointsEndpoint(t *testing.T, b backend) {
	skey, vkey, err := trailseal.GenerateSigningKey(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	signer, _, _ := trailseal.ParseSigningKey(skey)
	w := trailseal.DirWitness{Dir: t.TempDir()}
	var in *trailserver.Integrity
	f := newFixture(t, b, func(c *trailserver.Config) {
		in = &trailserver.Integrity{Log: c.Store.(trailseal.Store), Origin: testOrigin, PublicKey: vkey, Witness: w}
		c.Integrity = in
	})
	sl, err := trailseal.NewSealer(in.Log, &trailseal.Config{Signer: signer, Origin: testOrigin, Witnesses: []trailseal.Witness{w}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sl.SealAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	var list trailserver.WitnessCheckpointList
	r := f.do("GET", "/v1/witness/checkpoints", "readerA", nil)
	if r.status != 200 || json.Unmarshal(r.body, &list) != nil || list.Log != "acme" || len(list.Checkpoints) != 1 {
		t.Fatalf("witnessed checkpoints: %d %s", r.status, r.body)
	}
	v, _ := note.NewVerifier(vkey)
	if _, err := trailseal.OpenCheckpoint([]byte(list.Checkpoints[0].Note), note.VerifierList(v), testOrigin+"/acme"); err != nil {
		t.Fatal(err)
	}
	if got := mustLatest(t, f); string(got) != list.Checkpoints[0].Note {
		t.Fatalf("witness %q, store %q", list.Checkpoints[0].Note, got)
	}
	if r := f.do("GET", "/v1/witness/checkpoints?tenant=globex", "readerA", nil); r.status != http.StatusForbidden {
		t.Fatalf("another tenant's: %d", r.status)
	}
	if r := f.do("GET", "/v1/witness/checkpoints?tenant=acme&limit=0", "readerAll", nil); r.status != http.StatusBadRequest {
		t.Fatalf("limit 0: %d", r.status)
	}
	in.Witness = nil
	if r := f.do("GET", "/v1/witness/checkpoints", "readerA", nil); r.status != http.StatusNotFound {
		t.Fatalf("without a witness: %d", r.status)
	}
}

package trailserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
)

const testOrigin = "trail.test"

// integrityFixture is the usual fixture with integrity on, and a sealer.
func integrityFixture(t *testing.T, b backend) (*fixture, *trailseal.Sealer, string) {
	t.Helper()
	skey, vkey, err := trailseal.GenerateSigningKey(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := trailseal.ParseSigningKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	var in *trailserver.Integrity
	f := newFixture(t, b, func(c *trailserver.Config) {
		in = &trailserver.Integrity{Log: c.Store.(trailseal.Store), Origin: testOrigin, PublicKey: vkey}
		c.Integrity = in
	})
	sl, err := trailseal.NewSealer(in.Log, &trailseal.Config{Signer: signer, Origin: testOrigin, OnStep: in.ObserveSeal})
	if err != nil {
		t.Fatal(err)
	}
	return f, sl, vkey
}

func TestIntegrityEndpoints(t *testing.T) {
	forEachBackend(t, testIntegrityEndpoints)
}

func testIntegrityEndpoints(t *testing.T, b backend) {
	f, sl, vkey := integrityFixture(t, b)
	ctx := context.Background()
	id := f.acmeEvent.String()

	// Before sealing: 409 for the proof, 404 for the checkpoint, a lag.
	if r := f.do("GET", "/v1/events/"+id+"/proof", "readerA", nil); r.status != http.StatusConflict || r.problem(t).Type != trailserver.ProblemNotSealed {
		t.Fatalf("proof of a pending event: %d %s", r.status, r.body)
	}
	if r := f.do("GET", "/v1/checkpoints/latest?tenant=acme", "readerAll", nil); r.status != http.StatusNotFound {
		t.Fatalf("latest before any checkpoint: %d %s", r.status, r.body)
	}
	if r := f.do("GET", "/metrics", "", nil); !strings.Contains(string(r.body), "trail_seal_lag_seconds ") ||
		strings.Contains(string(r.body), "trail_seal_lag_seconds 0\n") {
		t.Fatalf("metrics before sealing show no lag:\n%s", r.body)
	}
	var ev map[string]any
	if r := f.do("GET", "/v1/events/"+id, "readerA", nil); json.Unmarshal(r.body, &ev) != nil || ev["leaf_index"] != nil {
		t.Fatalf("pending event carries a leaf_index: %s", r.body)
	}

	if st, err := sl.SealAll(ctx); err != nil || st.Sealed == 0 {
		t.Fatalf("seal: %+v %v", st, err)
	}
	if r := f.do("GET", "/metrics", "", nil); !strings.Contains(string(r.body), "trail_sealed_events_total ") {
		t.Fatalf("metrics: %s", r.body)
	}
	r := f.do("GET", "/v1/events/"+id, "readerA", nil)
	if json.Unmarshal(r.body, &ev) != nil || ev["leaf_index"] != float64(0) {
		t.Fatalf("sealed event: leaf_index missing: %s", r.body)
	}

	// The checkpoint, as JSON and as a note, verifies with the public key.
	var cp trailserver.CheckpointView
	if r := f.do("GET", "/v1/checkpoints/latest", "readerA", nil); r.status != 200 || json.Unmarshal(r.body, &cp) != nil {
		t.Fatalf("latest: %d %s", r.status, r.body)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	body, err := trailseal.OpenCheckpoint([]byte(cp.Note), note.VerifierList(v), testOrigin+"/acme")
	if err != nil || body.Size != cp.Size || cp.Tenant != "acme" || cp.PublicKey != vkey {
		t.Fatalf("checkpoint %+v: %v", cp, err)
	}
	if r := f.do("GET", "/v1/checkpoints/latest?tenant=acme&format=note", "readerAll", nil); string(r.body) != cp.Note {
		t.Fatalf("note form: %q", r.body)
	}
	var list trailserver.CheckpointList
	if r := f.do("GET", "/v1/checkpoints?tenant=acme", "readerAll", nil); json.Unmarshal(r.body, &list) != nil || len(list.Checkpoints) != 1 {
		t.Fatalf("history: %s", r.body)
	}

	// The inclusion proof verifies with trailseal and with the standalone
	// program that does not import Trail.
	r = f.do("GET", "/v1/events/"+id+"/proof", "readerA", nil)
	if r.status != 200 {
		t.Fatalf("proof: %d %s", r.status, r.body)
	}
	p, err := trailseal.ParseInclusionProof(r.body)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(note.VerifierList(v), testOrigin); err != nil {
		t.Fatalf("proof does not verify: %v", err)
	}
	runVerifyProof(t, vkey, "acme", id, r.body, true)
	// A proof whose leaf was changed must fail there too.
	var forged map[string]any
	json.Unmarshal(r.body, &forged)
	forged["index"] = float64(1)
	fb, _ := json.Marshal(forged)
	runVerifyProof(t, vkey, "acme", id, fb, false)

	// Tenant scope: another tenant's event is 404, another tenant's log 403.
	if r := f.do("GET", "/v1/events/"+id+"/proof", "readerB", nil); r.status != http.StatusNotFound {
		t.Fatalf("readerB proved acme's event: %d", r.status)
	}
	if r := f.do("GET", "/v1/checkpoints/latest?tenant=acme", "readerB", nil); r.status != http.StatusForbidden {
		t.Fatalf("readerB read acme's checkpoint: %d", r.status)
	}
	if r := f.do("GET", "/v1/checkpoints", "readerAll", nil); r.status != http.StatusBadRequest {
		t.Fatalf("all-tenant key without tenant: %d", r.status)
	}
	if r := f.do("GET", "/v1/checkpoints/latest?tenant=_platform", "readerAll", nil); r.status != 200 {
		t.Fatalf("platform log: %d %s", r.status, r.body)
	}

	// Consistency between two checkpoints.
	f.json("POST", "/v1/events", "ingestA", map[string]any{"actor": map[string]string{"type": "user", "id": "u3"}, "action": "user.login"})
	if _, err := sl.SealAll(ctx); err != nil {
		t.Fatal(err)
	}
	first := list.Checkpoints[0].Size
	r = f.do("GET", "/v1/checkpoints/consistency?tenant=acme&old="+strconv.FormatInt(first, 10), "readerAll", nil)
	if r.status != 200 {
		t.Fatalf("consistency: %d %s", r.status, r.body)
	}
	cons, err := trailseal.ParseConsistencyProof(r.body)
	if err != nil {
		t.Fatal(err)
	}
	if err := cons.Verify(note.VerifierList(v), testOrigin); err != nil || cons.NewSize <= cons.OldSize {
		t.Fatalf("consistency %d..%d: %v", cons.OldSize, cons.NewSize, err)
	}
	for _, q := range []string{"old=0", "old=x", "old=3&new=2", "old=1000"} {
		if r := f.do("GET", "/v1/checkpoints/consistency?tenant=acme&"+q, "readerAll", nil); r.status < 400 || r.status >= 500 {
			t.Errorf("%s: %d", q, r.status)
		}
	}
	if r := f.do("GET", "/v1/events/00000000-0000-7000-8000-000000000000/proof", "readerAll", nil); r.status != 404 {
		t.Fatalf("unknown event proof: %d", r.status)
	}

	// A duplicate of a sealed event carries its leaf index on ingest.
	orig, _ := f.store.Get(ctx, f.acmeEvent)
	r = f.json("POST", "/v1/events", "ingestA", orig)
	var ir trailserver.IngestResponse
	if json.Unmarshal(r.body, &ir) != nil || len(ir.Results) != 1 || ir.Results[0].LeafIndex == nil || *ir.Results[0].LeafIndex != 0 {
		t.Fatalf("duplicate ingest: %s", r.body)
	}
}

// runVerifyProof runs examples/verifyproof (its own module, no Trail code)
// on proof.
func runVerifyProof(t *testing.T, vkey, log, eventID string, proof []byte, wantOK bool) {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to run examples/verifyproof")
	}
	dir := t.TempDir()
	keyFile, proofFile := filepath.Join(dir, "trail.pub"), filepath.Join(dir, "proof.json")
	os.WriteFile(keyFile, []byte(vkey+"\n"), 0o644)
	os.WriteFile(proofFile, proof, 0o644)
	cmd := exec.Command(gobin, "run", ".", "-key", keyFile, "-proof", proofFile, "-origin", testOrigin, "-log", log, "-event-id", eventID)
	cmd.Dir = filepath.Join("..", "..", "examples", "verifyproof")
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	if ok := err == nil && strings.HasPrefix(string(out), "OK"); ok != wantOK {
		t.Fatalf("verifyproof: ok=%v, want %v: %v\n%s", ok, wantOK, err, out)
	}
}

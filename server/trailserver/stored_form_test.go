package trailserver_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/tlog"
)

// TestExportStoredForm: an admin key exports events as stored with the log
// and seq of their leaves, and an outsider rebuilds each leaf from a line
// alone; readers cannot ask for it.
func TestExportStoredForm(t *testing.T) {
	f, sl, vkey := integrityFixture(t, backends[0])
	ctx := context.Background()
	if _, err := sl.SealAll(ctx); err != nil {
		t.Fatal(err)
	}
	r := f.do("GET", "/v1/export?form=stored", "admin", nil)
	if r.status != http.StatusOK {
		t.Fatalf("export form=stored: %d %s", r.status, r.body)
	}
	lines := 0
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l trailserver.StoredLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines++
		if l.Log != trailseal.LogName(l.Event.Tenant) {
			t.Errorf("log %q for tenant %q", l.Log, l.Event.Tenant)
		}
		if l.Event.ID != f.acmeEvent {
			continue
		}
		// Byte for byte the stored event (ciphertext stays ciphertext).
		st, err := f.store.Get(ctx, l.Event.ID)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := st.Canonical()
		if got, _ := l.Event.Canonical(); !bytes.Equal(got, want) {
			t.Errorf("line differs from the stored event:\n%s\n%s", got, want)
		}
		// The leaf rebuilt from the line is the one the log proves.
		pr := f.do("GET", "/v1/events/"+f.acmeEvent.String()+"/proof", "readerA", nil)
		p, err := trailseal.ParseInclusionProof(pr.body)
		if err != nil {
			t.Fatal(err)
		}
		canon, err := l.Event.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		if l.Seq == nil || *l.Seq != p.Index || tlog.RecordHash(canon) != p.LeafHash {
			t.Fatalf("line seq %v, proof index %d; leaf rebuilt %s, proven %s", l.Seq, p.Index, tlog.RecordHash(canon), p.LeafHash)
		}
	}
	if lines == 0 {
		t.Fatal("empty export")
	}
	// An outsider with only golang.org/x/mod (examples/verifyproof -export)
	// rebuilds acme's log from the export and checks every checkpoint; a
	// line edited in the export fails.
	exp := f.do("GET", "/v1/export?tenant=acme&form=stored", "admin", nil)
	cps := f.do("GET", "/v1/checkpoints?tenant=acme", "readerA", nil)
	if exp.status != 200 || cps.status != 200 {
		t.Fatalf("export %d, checkpoints %d", exp.status, cps.status)
	}
	runVerifyExport(t, vkey, exp.body, cps.body, true)
	// The oldest event (last line) is sealed: change its action.
	i := bytes.LastIndex(exp.body, []byte(`"action":"`))
	edited := append(append(append([]byte(nil), exp.body[:i]...), `"action":"x`...), exp.body[i+len(`"action":"`):]...)
	runVerifyExport(t, vkey, edited, cps.body, false)

	// Tenant admins get their tenant's; readers and CSV are refused.
	if r := f.do("GET", "/v1/export?form=stored", "adminA", nil); r.status != http.StatusOK || strings.Contains(string(r.body), `"globex"`) {
		t.Fatalf("tenant admin: %d %.300s", r.status, r.body)
	}
	for _, c := range []struct {
		path, key string
		status    int
	}{
		{"/v1/export?form=stored", "readerA", http.StatusForbidden},
		{"/v1/export?form=stored", "readerAll", http.StatusForbidden},
		{"/v1/export?form=stored&format=csv", "admin", http.StatusBadRequest},
		{"/v1/export?form=raw", "admin", http.StatusBadRequest},
	} {
		if r := f.do("GET", c.path, c.key, nil); r.status != c.status {
			t.Errorf("%s as %s: %d, want %d: %s", c.path, c.key, r.status, c.status, r.body)
		}
	}
}

// runVerifyExport runs examples/verifyproof's export mode (its own module,
// no Trail code) on a stored-form export and a checkpoint list.
func runVerifyExport(t *testing.T, vkey string, export, checkpoints []byte, wantOK bool) {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to run examples/verifyproof")
	}
	dir := t.TempDir()
	keyFile, expFile, cpFile := filepath.Join(dir, "trail.pub"), filepath.Join(dir, "acme.jsonl"), filepath.Join(dir, "cps.json")
	os.WriteFile(keyFile, []byte(vkey+"\n"), 0o644)
	os.WriteFile(expFile, export, 0o644)
	os.WriteFile(cpFile, checkpoints, 0o644)
	cmd := exec.Command(gobin, "run", ".", "-key", keyFile, "-origin", testOrigin, "-log", "acme", "-export", expFile, "-checkpoints", cpFile)
	cmd.Dir = filepath.Join("..", "..", "examples", "verifyproof")
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	if ok := err == nil && strings.HasPrefix(string(out), "OK"); ok != wantOK {
		t.Fatalf("verifyproof -export: ok=%v, want %v: %v\n%s", ok, wantOK, err, out)
	}
}

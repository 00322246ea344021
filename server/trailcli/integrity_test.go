package trailcli

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
)

// sealedDemo returns a demo database sealed by `trail seal`.
func sealedDemo(t *testing.T) string {
	t.Helper()
	db := tempDB(t)
	mustRun(t, db, env{}, "demo", "--events", "300")
	r := mustRun(t, db, env{}, "seal")
	if !strings.Contains(r.stdout, "Sealed ") || !strings.Contains(r.stderr, "public key") {
		t.Fatalf("seal: %q %q", r.stdout, r.stderr)
	}
	return db
}

// someLeaf returns a sealed event of a tenant log and its leaf.
func someLeaf(t *testing.T, db string) trailseal.SealedEvent {
	t.Helper()
	st, err := trailsqlite.Open(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	logs, err := st.Logs(context.Background())
	if err != nil || len(logs) == 0 {
		t.Fatalf("logs: %v %v", logs, err)
	}
	for _, l := range logs {
		if l == trailseal.PlatformLog {
			continue
		}
		ses, err := st.Leaves(context.Background(), l, 3, 4)
		if err != nil || len(ses) != 1 {
			continue
		}
		return ses[0]
	}
	t.Fatal("no tenant log with 4 leaves")
	return trailseal.SealedEvent{}
}

func TestVerifyDemoAndTampering(t *testing.T) {
	db := sealedDemo(t)
	r := mustRun(t, db, env{}, "verify", "--progress")
	if !strings.Contains(r.stdout, "OK:") || !strings.Contains(r.stderr, "verifying [") {
		t.Fatalf("verify: %q %q", r.stdout, r.stderr)
	}
	priv, _ := trailseal.SigningKeyPaths(db)
	if fi, err := os.Stat(priv); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("signing key: %v %v", fi, err)
	}

	// Tamper as a DBA would: drop the append-only trigger and edit a field.
	se := someLeaf(t, db)
	sqldb, err := sql.Open("sqlite", "file:"+db+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer sqldb.Close()
	for _, q := range []string{`DROP TRIGGER trail_events_bu`, `UPDATE trail_events SET description = 'nothing happened' WHERE id = ?`} {
		if _, err := sqldb.Exec(q, se.EventID[:]); err != nil {
			t.Fatal(err)
		}
	}
	r = run(t, db, env{}, "verify")
	want := "PROBLEM tenant " + strconv.Quote(se.Log) + " seq " + strconv.FormatInt(se.Seq, 10) + ": modified"
	if r.code != ExitFailure || !strings.Contains(r.stdout, want) || !strings.Contains(r.stderr, "FAILED") {
		t.Fatalf("after an edit: exit %d, stdout %q, stderr %q; want %q", r.code, r.stdout, r.stderr, want)
	}
	// Only that tenant is affected.
	other := mustRun(t, db, env{}, "verify", "--tenant", "_platform")
	if !strings.Contains(other.stdout, "OK:") {
		t.Fatalf("platform log: %q", other.stdout)
	}
	// Delete it: now missing.
	if _, err := sqldb.Exec(`DELETE FROM trail_events WHERE id = ?`, se.EventID[:]); err != nil {
		t.Fatal(err)
	}
	r = run(t, db, env{}, "verify", "--tenant", se.Log, "--json")
	var rep trailseal.Report
	if r.code != ExitFailure || json.Unmarshal([]byte(r.stdout), &rep) != nil || len(rep.Problems) != 1 ||
		rep.Problems[0].Kind != trailseal.KindMissing || rep.Problems[0].Seq != se.Seq {
		t.Fatalf("after a delete: exit %d %s", r.code, r.stdout)
	}
}

func TestProveAndCheckpoints(t *testing.T) {
	db := sealedDemo(t)
	se := someLeaf(t, db)
	r := mustRun(t, db, env{}, "prove", se.EventID.String())
	p, err := trailseal.ParseInclusionProof([]byte(r.stdout))
	if err != nil {
		t.Fatal(err)
	}
	pub := strings.TrimSpace(mustRun(t, db, env{}, "keys", "signing", "show").stdout)
	v, err := note.NewVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(note.VerifierList(v), trailseal.DefaultOrigin); err != nil || p.Index != se.Seq {
		t.Fatalf("proof: index %d, %v", p.Index, err)
	}

	// Export the history, grow the log, and prove consistency.
	export := filepath.Join(t.TempDir(), "cps.json")
	mustRun(t, db, env{}, "checkpoints", "export", "--tenant", se.Log, export)
	mustRun(t, db, env{}, "record", "--tenant", se.Log, "--actor", "user:1", "--action", "user.login")
	mustRun(t, db, env{}, "seal")
	mustRun(t, db, env{}, "verify", "--checkpoint", export)
	r = mustRun(t, db, env{}, "prove", "--consistency", strconv.FormatInt(p.TreeSize, 10), strconv.FormatInt(p.TreeSize+1, 10), "--tenant", se.Log)
	cp, err := trailseal.ParseConsistencyProof([]byte(r.stdout))
	if err != nil || cp.Verify(note.VerifierList(v), trailseal.DefaultOrigin) != nil {
		t.Fatalf("consistency proof: %v %s", err, r.stdout)
	}

	// Bad input: clear errors, never a false OK.
	half := filepath.Join(t.TempDir(), "half.json")
	b, _ := os.ReadFile(export)
	os.WriteFile(half, b[:len(b)/2], 0o644)
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"verify", "--checkpoint", half}, ExitUsage},
		{[]string{"prove", "not-a-uuid"}, ExitUsage},
		{[]string{"prove", "0190a5c8-7d3e-7cc1-8a55-2f0e4d7e1b2a"}, ExitFailure},
		{[]string{"prove", "--consistency", "5", "3", "--tenant", se.Log}, ExitUsage},
		{[]string{"prove", "--consistency", "1", "2"}, ExitUsage},
		{[]string{"keys", "signing", "generate"}, ExitUsage}, // never overwrites
		{[]string{"checkpoints", "export", "--tenant", "nobody", "-"}, ExitFailure},
	} {
		if r := run(t, db, env{}, c.args...); r.code != c.code || strings.Contains(r.stdout, "OK") {
			t.Errorf("trail %s: exit %d (want %d), stdout %q, stderr %q", strings.Join(c.args, " "), r.code, c.code, r.stdout, r.stderr)
		}
	}
	// A checkpoint signed by another key is refused.
	other := filepath.Join(t.TempDir(), "other.key")
	mustRun(t, db, env{}, "keys", "signing", "generate", "--signing-key-file", other)
	if r := run(t, db, env{}, "verify", "--signing-key-file", other); r.code != ExitFailure || !strings.Contains(r.stdout, "bad_signature") {
		t.Fatalf("verify with another key: %d %q", r.code, r.stdout)
	}
}

func TestSigningKeyCommands(t *testing.T) {
	db := tempDB(t)
	mustRun(t, db, env{}, "migrate")
	if r := run(t, db, env{}, "keys", "signing", "show"); r.code == 0 {
		t.Fatalf("show without a key: %q", r.stdout)
	}
	gen := mustRun(t, db, env{}, "keys", "signing", "generate", "--origin", "audit.example.com")
	show := mustRun(t, db, env{}, "keys", "signing", "show")
	if gen.stdout != show.stdout || !strings.HasPrefix(show.stdout, "audit.example.com+") {
		t.Fatalf("generate %q, show %q", gen.stdout, show.stdout)
	}
	if _, err := trailseal.ParseVerifierKey(show.stdout); err != nil {
		t.Fatal(err)
	}
	// TRAIL_SIGNING_KEY wins over the file beside the database.
	skey, vkey, _ := trailseal.GenerateSigningKey("env.example")
	t.Setenv(trailseal.SigningKeyEnv, skey)
	if r := mustRun(t, db, env{}, "keys", "signing", "show"); strings.TrimSpace(r.stdout) != vkey {
		t.Fatalf("env key: %q", r.stdout)
	}
}

// TestServeSeals: `trail serve` runs the sealer, so checkpoints appear and a
// proof is served without `trail seal`; after it stops, verify passes.
func TestServeSeals(t *testing.T) {
	db := tempDB(t)
	mustRun(t, db, env{}, "demo", "--events", "200")
	base, key, stop := startServe(t, db, "--checkpoint-interval", "50ms", "--seal-interval", "20ms")
	if key == "" {
		t.Fatal("no admin key printed")
	}
	// Poll until the sealer has signed acme's checkpoint (the bound only
	// keeps a broken sealer from hanging the test).
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body := get(t, base+"/v1/checkpoints/latest?tenant=acme", key)
		if code == 200 {
			var cp struct{ Size int64 }
			if json.Unmarshal(body, &cp) != nil || cp.Size == 0 {
				t.Fatalf("checkpoint: %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint from the serving sealer: %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := get(t, base+"/metrics", ""); code != 200 || !strings.Contains(string(body), "trail_seal_lag_seconds") {
		t.Fatalf("metrics: %d", code)
	}
	if code, out := stop(); code != 0 {
		t.Fatalf("serve exit %d: %s", code, out)
	}
	mustRun(t, db, env{}, "seal") // the lease was released on shutdown
	if r := mustRun(t, db, env{}, "verify"); !strings.Contains(r.stdout, "OK:") {
		t.Fatalf("verify after serve: %q", r.stdout)
	}
}

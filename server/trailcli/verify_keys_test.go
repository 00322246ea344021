package trailcli

import (
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
)

// resignCheckpoints is the attack of issue 14: a DBA who can write the
// database and the files beside it replaces the signing key and re-signs
// every checkpoint with the new one.
func resignCheckpoints(t *testing.T, db, skey string) {
	t.Helper()
	signer, _, err := trailseal.ParseSigningKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	sqldb, err := sql.Open("sqlite", "file:"+db+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer sqldb.Close()
	dropCheckpointTriggers(t, sqldb)
	rows, err := sqldb.Query(`SELECT log, size, note FROM trail_seal_checkpoints`)
	if err != nil {
		t.Fatal(err)
	}
	type cp struct {
		log  string
		size int64
		note string
	}
	var cps []cp
	for rows.Next() {
		var c cp
		if err := rows.Scan(&c.log, &c.size, &c.note); err != nil {
			t.Fatal(err)
		}
		cps = append(cps, c)
	}
	rows.Close()
	if len(cps) == 0 {
		t.Fatal("no checkpoints to re-sign")
	}
	for _, c := range cps {
		text := c.note[:strings.Index(c.note, "\n\n")+1]
		msg, err := note.Sign(&note.Note{Text: text}, signer)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sqldb.Exec(`UPDATE trail_seal_checkpoints SET note = ? WHERE log = ? AND size = ?`, string(msg), c.log, c.size); err != nil {
			t.Fatal(err)
		}
	}
}

// swapKeyBeside replaces DB.signing.key and DB.signing.pub with a new key
// and returns it.
func swapKeyBeside(t *testing.T, db string) (skey, vkey string) {
	t.Helper()
	skey, vkey, err := trailseal.GenerateSigningKey(trailseal.DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub := trailseal.SigningKeyPaths(db)
	if err := os.WriteFile(priv, []byte(skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, []byte(vkey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return skey, vkey
}

// TestPinnedKeyCatchesSwappedKey: replacing the signing key beside a SQLite
// database and re-signing every checkpoint fails verification with the
// pinned key (flag, env, file), and without one verify says loudly that it
// trusted the file beside the data.
func TestPinnedKeyCatchesSwappedKey(t *testing.T) {
	db := sealedDemo(t)
	published := strings.TrimSpace(mustRun(t, db, env{}, "keys", "signing", "show").stdout)
	pinFile := filepath.Join(t.TempDir(), "trail.pub")
	os.WriteFile(pinFile, []byte(published+"\n"), 0o644)

	// Before the attack: pinned passes, quietly; unpinned passes, loudly.
	if r := mustRun(t, db, env{}, "verify", "--public-key", pinFile); strings.Contains(r.stderr, "WARNING") {
		t.Fatalf("pinned verify warned: %q", r.stderr)
	}
	r := mustRun(t, db, env{}, "verify")
	if !strings.Contains(r.stderr, "WARNING: no pinned key") || !strings.Contains(r.stderr, ".signing.key") {
		t.Fatalf("unpinned verify must warn on stderr: %q", r.stderr)
	}

	skey, _ := swapKeyBeside(t, db)
	resignCheckpoints(t, db, skey)

	for _, args := range [][]string{
		{"verify", "--public-key", published},
		{"verify", "--public-key", pinFile},
	} {
		r := run(t, db, env{}, args...)
		if r.code != ExitFailure || !strings.Contains(r.stdout, "bad_signature") || strings.Contains(r.stdout, "OK:") {
			t.Errorf("trail %s after the key swap: exit %d, %q", strings.Join(args, " "), r.code, r.stdout)
		}
	}
	t.Run("env", func(t *testing.T) {
		t.Setenv(PublicKeyEnv, pinFile)
		if r := run(t, db, env{}, "verify"); r.code != ExitFailure || !strings.Contains(r.stdout, "bad_signature") {
			t.Errorf("verify with $%s after the key swap: exit %d, %q", PublicKeyEnv, r.code, r.stdout)
		}
		se := someLeaf(t, db)
		if r := run(t, db, env{}, "prove", se.EventID.String()); r.code == 0 {
			t.Errorf("prove with $%s after the key swap: exit 0, %q", PublicKeyEnv, r.stdout)
		}
	})
	// Unpinned, the swapped key is trusted (nothing else to go by), and
	// verify says so on stderr and in --json.
	r = run(t, db, env{}, "verify", "--json")
	if r.code != 0 {
		t.Logf("verify --json: exit %d: %s", r.code, r.stdout)
	}
	if !strings.Contains(r.stderr, "WARNING: no pinned key") {
		t.Fatalf("unpinned verify after the swap must warn: %q", r.stderr)
	}
	var out struct {
		KeySource string   `json:"key_source"`
		Warnings  []string `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.KeySource != "beside_data" || len(out.Warnings) != 1 {
		t.Fatalf("--json: %v %+v", err, out)
	}
}

// TestSigningKeyRotation: a rotated key keeps every old checkpoint
// verifiable; a verifier that pins the first key accepts the new one
// through the signed history; an edited history, or a key swapped beside
// the database after the rotation, fails.
func TestSigningKeyRotation(t *testing.T) {
	db := sealedDemo(t)
	first := strings.TrimSpace(mustRun(t, db, env{}, "keys", "signing", "show").stdout)
	priv, _ := trailseal.SigningKeyPaths(db)
	oldKey, err := os.ReadFile(priv) // kept by the test only: rotate destroys it
	if err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, db, env{}, "keys", "signing", "rotate")
	second := strings.TrimSpace(r.stdout)
	if second == first || !strings.HasPrefix(second, trailseal.DefaultOrigin+"+") {
		t.Fatalf("rotate: %q", r.stdout)
	}
	if show := strings.TrimSpace(mustRun(t, db, env{}, "keys", "signing", "show").stdout); show != second {
		t.Fatalf("show after rotate: %q", show)
	}
	// New events are signed by the new key.
	se := someLeaf(t, db)
	mustRun(t, db, env{}, "record", "--tenant", se.Log, "--actor", "user:1", "--action", "user.login")
	mustRun(t, db, env{}, "seal")

	hist := mustRun(t, db, env{}, "keys", "signing", "history").stdout
	h, err := trailseal.ParseKeyHistory([]byte(hist))
	if err != nil || len(h.Keys) != 2 || h.Keys[0].PublicKey != first || h.Keys[1].PublicKey != second {
		t.Fatalf("history: %v %s", err, hist)
	}
	histFile := filepath.Join(t.TempDir(), "history.json")
	os.WriteFile(histFile, []byte(hist), 0o644)

	mustRun(t, db, env{}, "verify", "--public-key", first)
	mustRun(t, db, env{}, "verify", "--public-key", histFile)
	mustRun(t, db, env{}, "prove", se.EventID.String(), "--public-key", first)

	// A checkpoint signed after the rotation with the retired key (stolen,
	// or kept): signed by a trusted key, but not the key of its time.
	stale := filepath.Join(t.TempDir(), "stale.db")
	copyFile(t, db, stale)
	for _, suffix := range []string{".signing.key", ".signing.pub", ".signing.history", ".master.key"} {
		copyFile(t, db+suffix, stale+suffix)
	}
	resignNewest(t, stale, string(oldKey))
	if r := run(t, stale, env{}, "verify", "--public-key", first); r.code != ExitFailure || !strings.Contains(r.stdout, "key_not_valid_at_time") {
		t.Fatalf("a checkpoint signed by the retired key after its rotation: exit %d %q", r.code, r.stdout)
	}

	// Pinned to the second key only: the old checkpoints are not vouched for.
	if r := run(t, db, env{}, "verify", "--public-key", second); r.code != ExitFailure {
		t.Fatalf("verify pinned to the new key only: exit %d %q", r.code, r.stdout)
	}

	// A key swapped beside the database, with every checkpoint re-signed:
	// the pinned first key (or the published history) catches it.
	skey, _ := swapKeyBeside(t, db)
	resignCheckpoints(t, db, skey)
	os.Remove(trailseal.KeyHistoryPath(db + ".signing.key"))
	for _, pin := range []string{first, histFile} {
		if r := run(t, db, env{}, "verify", "--public-key", pin); r.code != ExitFailure || !strings.Contains(r.stdout, "bad_signature") {
			t.Errorf("verify --public-key %s after the swap: exit %d %q", pin, r.code, r.stdout)
		}
	}
}

// TestKeyHistoryEdited: a history whose rotation statement was forged (a
// new key "vouched for" by a statement the old key never signed) is refused.
func TestKeyHistoryEdited(t *testing.T) {
	db := sealedDemo(t)
	first := strings.TrimSpace(mustRun(t, db, env{}, "keys", "signing", "show").stdout)
	mustRun(t, db, env{}, "keys", "signing", "rotate")
	path := trailseal.KeyHistoryPath(db + ".signing.key")
	h, err := trailseal.ReadKeyHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	// Replace the new key by the attacker's, keeping the old statement.
	skey, vkey, _ := trailseal.GenerateSigningKey(trailseal.DefaultOrigin)
	h.Keys[1].PublicKey = vkey
	if err := trailseal.WriteKeyHistory(path, h); err != nil {
		t.Fatal(err)
	}
	priv, _ := trailseal.SigningKeyPaths(db)
	os.WriteFile(priv, []byte(skey+"\n"), 0o600)
	if r := run(t, db, env{}, "verify", "--public-key", first); r.code == 0 || !strings.Contains(r.stderr, "key history") {
		t.Fatalf("verify with a forged history: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// resignNewest re-signs the newest checkpoint of every log with skey.
func resignNewest(t *testing.T, db, skey string) {
	t.Helper()
	signer, _, err := trailseal.ParseSigningKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	sqldb, err := sql.Open("sqlite", "file:"+db+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer sqldb.Close()
	dropCheckpointTriggers(t, sqldb)
	var log, cp string
	var size int64
	if err := sqldb.QueryRow(`SELECT log, size, note FROM trail_seal_checkpoints ORDER BY created_at DESC LIMIT 1`).Scan(&log, &size, &cp); err != nil {
		t.Fatal(err)
	}
	msg, err := note.Sign(&note.Note{Text: cp[:strings.Index(cp, "\n\n")+1]}, signer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sqldb.Exec(`UPDATE trail_seal_checkpoints SET note = ? WHERE log = ? AND size = ?`, string(msg), log, size); err != nil {
		t.Fatal(err)
	}
}

// dropCheckpointTriggers turns off the checkpoint table's append-only
// triggers, as a DBA can.
func dropCheckpointTriggers(t *testing.T, sqldb *sql.DB) {
	t.Helper()
	rows, err := sqldb.Query(`SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'trail_seal_checkpoints'`)
	if err != nil {
		t.Fatal(err)
	}
	var triggers []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		triggers = append(triggers, n)
	}
	rows.Close()
	for _, n := range triggers {
		if _, err := sqldb.Exec(`DROP TRIGGER "` + n + `"`); err != nil {
			t.Fatal(err)
		}
	}
}

package trailseal_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail/trailseal"
	"github.com/trailhq/trail/trailseal/sealtest"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func TestParseCheckpointBody(t *testing.T) {
	t.Parallel()
	root := tlog.RecordHash([]byte("r"))
	good := "trail.example/acme\n42\n" + root.String() + "\n"
	tests := []struct {
		name, text string
		ok         bool
	}{
		{"good", good, true},
		{"extension lines", good + "ext one\n", true},
		{"size zero", "o/a\n0\n" + root.String() + "\n", true},
		{"empty", "", false},
		{"no final newline", strings.TrimSuffix(good, "\n"), false},
		{"two lines", "trail.example/acme\n42\n", false},
		{"empty origin", "\n42\n" + root.String() + "\n", false},
		{"space in origin", "trail example/acme\n42\n" + root.String() + "\n", false},
		{"negative size", "o/a\n-1\n" + root.String() + "\n", false},
		{"leading zero", "o/a\n042\n" + root.String() + "\n", false},
		{"plus sign", "o/a\n+42\n" + root.String() + "\n", false},
		{"size overflow", "o/a\n9223372036854775808\n" + root.String() + "\n", false},
		{"short hash", "o/a\n42\nAAAA\n", false},
		{"hash not base64", "o/a\n42\n" + strings.Repeat("!", 44) + "\n", false},
		{"empty extension line", good + "\n", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, err := trailseal.ParseCheckpointBody([]byte(tc.text))
			if tc.ok != (err == nil) {
				t.Fatalf("ParseCheckpointBody(%q): %v, want ok=%v", tc.text, err, tc.ok)
			}
			if err != nil && !errors.Is(err, trailseal.ErrBadCheckpoint) {
				t.Fatalf("error %v does not match ErrBadCheckpoint", err)
			}
			if tc.ok && !strings.HasPrefix(tc.text, string(body.Format())) {
				t.Fatalf("Format() = %q, not a prefix of %q", body.Format(), tc.text)
			}
		})
	}
}

func TestOpenCheckpointReasons(t *testing.T) {
	t.Parallel()
	signer, verifier := sealtest.TestKey(t, "trail.test")
	keys := note.VerifierList(verifier)
	root := tlog.RecordHash([]byte("r"))
	cp, err := trailseal.SignCheckpoint(signer, "trail.test", "acme", 9, root, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	body, err := trailseal.OpenCheckpoint([]byte(cp.Note), keys, "trail.test/acme")
	if err != nil || body.Size != 9 || body.Root != root || body.Origin != "trail.test/acme" {
		t.Fatalf("open: %+v %v", body, err)
	}
	other, _ := sealtest.TestKey(t, "attacker.test")
	otherCP, _ := trailseal.SignCheckpoint(other, "trail.test", "acme", 9, root, time.Now())
	sameName, _ := sealtest.TestKey(t, "trail.test-2") // different name, so unknown
	sameNameCP, _ := trailseal.SignCheckpoint(sameName, "trail.test", "acme", 9, root, time.Now())
	edited := strings.Replace(cp.Note, "\n9\n", "\n10\n", 1)
	tests := []struct {
		name, note, origin, reason string
	}{
		{"wrong log", cp.Note, "trail.test/globex", "wrong_log"},
		{"wrong deployment", cp.Note, "other.example/acme", "wrong_log"},
		{"other key", otherCP.Note, "", "unknown_key"},
		{"other key name", sameNameCP.Note, "", "unknown_key"},
		{"edited text", edited, "", "bad_signature"},
		{"truncated signature", cp.Note[:len(cp.Note)-10], "", "malformed"},
		{"truncated text", cp.Note[:20], "", "malformed"},
		{"empty", "", "", "malformed"},
		{"text only", "trail.test/acme\n9\n" + root.String() + "\n", "", "malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := trailseal.OpenCheckpoint([]byte(tc.note), keys, tc.origin)
			var ce *trailseal.CheckpointError
			if !errors.As(err, &ce) || !errors.Is(err, trailseal.ErrBadCheckpoint) {
				t.Fatalf("err %v, want a *CheckpointError", err)
			}
			if ce.Reason != tc.reason {
				t.Fatalf("reason %q (%v), want %q", ce.Reason, err, tc.reason)
			}
		})
	}
}

func TestSigningKeys(t *testing.T) {
	skey, vkey, err := trailseal.GenerateSigningKey("trail.example")
	if err != nil {
		t.Fatal(err)
	}
	s, gotV, err := trailseal.ParseSigningKey(skey + "\n")
	if err != nil || gotV != vkey || s.Name() != "trail.example" {
		t.Fatalf("ParseSigningKey: %v, vkey %q want %q", err, gotV, vkey)
	}
	v, err := trailseal.ParseVerifierKey(vkey)
	if err != nil || v.KeyHash() != s.KeyHash() {
		t.Fatalf("ParseVerifierKey: %v", err)
	}
	for _, bad := range []string{"", "PRIVATE+KEY", vkey, strings.Replace(skey, "trail.example", "other", 1)} {
		if _, _, err := trailseal.ParseSigningKey(bad); err == nil {
			t.Fatalf("ParseSigningKey(%q) accepted", bad)
		}
	}
	if _, err := trailseal.ParseVerifierKey(skey); err == nil {
		t.Fatal("a private key parsed as a verifier key")
	}

	t.Setenv(trailseal.SigningKeyEnv, "")
	if _, _, ok, err := trailseal.SigningKeyFromEnv(); ok || err != nil {
		t.Fatalf("unset env: ok %v err %v", ok, err)
	}
	t.Setenv(trailseal.SigningKeyEnv, skey)
	if _, v2, ok, err := trailseal.SigningKeyFromEnv(); !ok || err != nil || v2 != vkey {
		t.Fatalf("env: ok %v err %v", ok, err)
	}
	t.Setenv(trailseal.SigningKeyEnv, "garbage")
	if _, _, ok, err := trailseal.SigningKeyFromEnv(); !ok || err == nil || !strings.Contains(err.Error(), trailseal.SigningKeyEnv) {
		t.Fatalf("bad env: ok %v err %v", ok, err)
	}
}

func TestEnsureSigningKey(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "trail.db")
	var out strings.Builder
	s, vkey, created, err := trailseal.EnsureSigningKey(db, "", &out)
	if err != nil || !created {
		t.Fatalf("first call: created %v err %v", created, err)
	}
	priv, pub := trailseal.SigningKeyPaths(db)
	fi, err := os.Stat(priv)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if b, _ := os.ReadFile(pub); strings.TrimSpace(string(b)) != vkey {
		t.Fatalf("public key file %q, want %q", b, vkey)
	}
	if !strings.Contains(out.String(), vkey) || !strings.Contains(out.String(), priv) {
		t.Fatalf("did not print the public key and path: %q", out.String())
	}
	if s.Name() != trailseal.DefaultOrigin {
		t.Fatalf("key name %q", s.Name())
	}
	out.Reset()
	s2, vkey2, created, err := trailseal.EnsureSigningKey(db, "", &out)
	if err != nil || created || vkey2 != vkey || s2.KeyHash() != s.KeyHash() || out.Len() != 0 {
		t.Fatalf("second call: created %v err %v (same key: %v), printed %q", created, err, vkey2 == vkey, out.String())
	}
	// A damaged key file is an error, never silently replaced.
	if err := os.WriteFile(priv, []byte("PRIVATE+KEY+broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := trailseal.EnsureSigningKey(db, "", nil); err == nil {
		t.Fatal("a damaged key file was accepted")
	}
}

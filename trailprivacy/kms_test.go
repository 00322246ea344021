package trailprivacy

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseMasterKey(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{0xfb}, 32) // encodes differently in std and URL alphabets
	want, _ := NewLocalKMS(key)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		k, err := ParseMasterKey(" " + enc.EncodeToString(key) + "\n")
		if err != nil || k.KeyID() != want.KeyID() {
			t.Errorf("ParseMasterKey(%s) = %v", enc.EncodeToString(key), err)
		}
	}
	for _, bad := range []string{"", "not base64!", base64.StdEncoding.EncodeToString(key[:16])} {
		if _, err := ParseMasterKey(bad); err == nil {
			t.Errorf("ParseMasterKey(%q) accepted", bad)
		}
	}
	if !strings.HasPrefix(want.KeyID(), "local:") || strings.Contains(want.KeyID(), base64.RawURLEncoding.EncodeToString(key)[:8]) {
		t.Errorf("KeyID %q", want.KeyID())
	}
	other, _ := NewLocalKMS(bytes.Repeat([]byte{1}, 32))
	if other.KeyID() == want.KeyID() {
		t.Error("two keys, one ID")
	}
}

func TestLocalKMSWrap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k := testKMS(t, 1)
	w, err := k.Wrap(ctx, []byte("data key"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := k.Unwrap(ctx, w, []byte("aad")); err != nil || string(pt) != "data key" {
		t.Fatalf("Unwrap = %q, %v", pt, err)
	}
	for name, tc := range map[string]struct {
		k   *LocalKMS
		w   []byte
		aad string
	}{
		"other key": {testKMS(t, 2), w, "aad"},
		"other aad": {k, w, "dda"},
		"truncated": {k, w[:10], "aad"},
	} {
		if _, err := tc.k.Unwrap(ctx, tc.w, []byte(tc.aad)); !errors.Is(err, ErrUnwrap) {
			t.Errorf("%s: Unwrap = %v, want ErrUnwrap", name, err)
		}
	}
}

func TestKeyFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "trail.db.master.key")
	k1, created, err := LoadOrCreateKeyFile(path)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreateKeyFile = %v, created %v", err, created)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v; want 0600", fi.Mode(), err)
	}
	k2, created, err := LoadOrCreateKeyFile(path)
	if err != nil || created || k2.KeyID() != k1.KeyID() {
		t.Fatalf("second LoadOrCreateKeyFile = %v, created %v, same key %v", err, created, k2.KeyID() == k1.KeyID())
	}
	if k3, err := LoadKeyFile(path); err != nil || k3.KeyID() != k1.KeyID() {
		t.Fatalf("LoadKeyFile = %v", err)
	}
	raw := filepath.Join(dir, "raw.key")
	os.WriteFile(raw, bytes.Repeat([]byte{7}, 32), 0o600)
	if k, err := LoadKeyFile(raw); err != nil || k.KeyID() != testKMS(t, 7).KeyID() {
		t.Fatalf("raw key file: %v", err)
	}
	bad := filepath.Join(dir, "bad.key")
	os.WriteFile(bad, []byte("short\n"), 0o600)
	if _, err := LoadKeyFile(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("bad key file = %v", err)
	}
	if _, err := LoadKeyFile(filepath.Join(dir, "missing.key")); err == nil {
		t.Fatal("missing key file accepted")
	}

	// OpenMasterKey: the order of sources and the errors.
	env := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	cases := []struct {
		name    string
		cfg     MasterKeyConfig
		wantID  string
		wantErr string
		notice  bool
	}{
		{"env", MasterKeyConfig{Env: env, CreateFile: filepath.Join(dir, "unused.key")}, testKMS(t, 7).KeyID(), "", false},
		{"file", MasterKeyConfig{File: path}, k1.KeyID(), "", false},
		{"both", MasterKeyConfig{Env: env, File: path}, "", "both", false},
		{"bad env", MasterKeyConfig{Env: "nope"}, "", "TRAIL_MASTER_KEY", false},
		{"missing configured file", MasterKeyConfig{File: filepath.Join(dir, "nope.key"), CreateFile: filepath.Join(dir, "x.key")}, "", "no such file", false},
		{"nothing", MasterKeyConfig{}, "", "no master key", false},
		{"create", MasterKeyConfig{CreateFile: filepath.Join(dir, "new.key")}, "", "", true},
	}
	for _, tc := range cases {
		k, notice, err := OpenMasterKey(tc.cfg)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if tc.wantID != "" && k.KeyID() != tc.wantID {
			t.Errorf("%s: key %s, want %s", tc.name, k.KeyID(), tc.wantID)
		}
		if (notice != "") != tc.notice {
			t.Errorf("%s: notice %q", tc.name, notice)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "unused.key")); err == nil {
		t.Error("a key file was created although TRAIL_MASTER_KEY was set")
	}
}

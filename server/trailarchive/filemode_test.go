package trailarchive

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestDirTargetModes: an archive written to a directory is readable by its
// owner only — directories 0700, files 0600 — whatever the umask allows.
func TestDirTargetModes(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	root := t.TempDir()
	d := &Dir{Root: root}
	if err := d.Put(context.Background(), "acme/2026/01/batch-1.parquet", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		rel  string
		mode os.FileMode
	}{{"acme", 0o700}, {"acme/2026/01", 0o700}, {"acme/2026/01/batch-1.parquet", 0o600}} {
		fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(c.rel)))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != c.mode {
			t.Errorf("%s: mode %o, want %o", c.rel, got, c.mode)
		}
	}
}

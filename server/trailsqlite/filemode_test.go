//go:build unix

package trailsqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailsqlite"
)

// withUmask022 runs the test under the usual umask, so that a file created
// with Go's or SQLite's default 0644 would show it. Not parallel: the umask
// is the process's.
func withUmask022(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
}

func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %#o, want %#o", filepath.Base(path), got, want)
	}
}

// TestOpenCreatesOwnerOnlyFiles: a new database is 0600 as soon as Open
// returns, and the -wal and -shm files SQLite creates for the first write
// take the database file's mode.
func TestOpenCreatesOwnerOnlyFiles(t *testing.T) {
	withUmask022(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "trail.db")
	s, err := trailsqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	wantMode(t, path, 0o600)

	if _, err := s.Append(ctx, []trail.Event{newEvent(t, "acme", "user.delete")}); err != nil {
		t.Fatal(err)
	}
	// The store is open, so SQLite keeps the WAL and its index beside it.
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		wantMode(t, p, 0o600)
	}
}

// TestOpenKeepsExistingMode: a database the operator created (or chmod-ed)
// keeps its mode; Trail only chooses the mode of files it creates.
func TestOpenKeepsExistingMode(t *testing.T) {
	withUmask022(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	if err := os.WriteFile(path, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	s, err := trailsqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(ctx, []trail.Event{newEvent(t, "acme", "user.delete")}); err != nil {
		t.Fatal(err)
	}
	wantMode(t, path, 0o640)
	wantMode(t, path+"-wal", 0o640)
}

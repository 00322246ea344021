package trailcli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeNATSUnreachableCreatesNothing: trail serve --nats with no NATS
// server listening fails with one line naming --nats and leaves the
// directory as it was: no store file, no key file.
func TestServeNATSUnreachableCreatesNothing(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	r := run(t, db, env{}, "serve", "--addr", "127.0.0.1:0", "--nats", "nats://127.0.0.1:1")
	if r.code != 1 || !strings.Contains(r.stderr, "--nats nats://127.0.0.1:1") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	left, err := os.ReadDir(filepath.Dir(db))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range left {
		t.Errorf("left behind: %s", f.Name())
	}
}

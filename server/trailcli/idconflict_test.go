package trailcli

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestRecordIDOfAnotherTenant: `trail record --id` with an ID another
// tenant's event holds is bad input (exit 2), says nothing of that event,
// and stores nothing; the same event again is a duplicate.
func TestRecordIDOfAnotherTenant(t *testing.T) {
	db := filepath.Join(t.TempDir(), "t.db")
	const id = "0193a6a2-0000-7000-8000-000000000001"
	mustRun(t, db, env{}, "record", "--tenant", "acme", "--actor", "user:1", "--action", "user.delete", "--target", "user:9", "--id", id)
	r := run(t, db, env{}, "record", "--tenant", "globex", "--actor", "user:1", "--action", "user.delete", "--target", "user:9", "--id", id)
	if r.code != ExitUsage || !strings.Contains(r.stderr, "already in use") {
		t.Fatalf("reuse from another tenant: exit %d, stderr %q; want exit 2 naming the conflict", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "acme") {
		t.Errorf("the error names the tenant holding the ID: %q", r.stderr)
	}
	again := mustRun(t, db, env{}, "record", "--tenant", "acme", "--actor", "user:1", "--action", "user.delete", "--target", "user:9", "--id", id)
	if !strings.Contains(again.stdout, "duplicate") {
		t.Errorf("the same event again: %q, want duplicate", again.stdout)
	}
	q := mustRun(t, db, env{}, "query", "--tenant", "globex", "--json")
	if strings.TrimSpace(q.stdout) != "" {
		t.Errorf("globex holds events: %s", q.stdout)
	}
}

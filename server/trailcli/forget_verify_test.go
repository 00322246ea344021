package trailcli

import (
	"strings"
	"testing"
)

// TestForgetKeepsProofValid is issue 5's promise: forgetting a person erases
// their data while their events stay listed and every proof still verifies,
// because leaves hash the stored ciphertext, which erasure never touches.
func TestForgetKeepsProofValid(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	in := `{"tenant":"acme","actor":{"type":"user","id":"42","name":"Ada Lovelace","email":"ada@example.com"},"action":"user.update","target":{"type":"user","id":"42","name":"Ada Lovelace"},"description":"Updated a profile"}
{"tenant":"acme","actor":{"type":"user","id":"7","name":"Grace Hopper","email":"grace@example.com"},"action":"user.update","target":{"type":"user","id":"7"}}
`
	mustRun(t, db, env{stdin: in}, "record", "-")
	mustRun(t, db, env{}, "seal")
	if r := mustRun(t, db, env{}, "verify"); !strings.Contains(r.stdout, "OK:") {
		t.Fatalf("verify before forget: %q", r.stdout)
	}

	mustRun(t, db, env{}, "forget", "--tenant", "acme", "--subject", "user:42")

	q := mustRun(t, db, env{}, "query", "--tenant", "acme", "--actor", "user:42", "--json")
	if strings.Count(q.stdout, "\n") != 1 || !strings.Contains(q.stdout, "[erased]") || strings.Contains(q.stdout, "ada@example.com") || strings.Contains(q.stdout, "Ada Lovelace") {
		t.Fatalf("after forget the event must stay listed with its personal data erased: %q", q.stdout)
	}
	if q := mustRun(t, db, env{}, "query", "--tenant", "acme", "--actor", "user:7", "--json"); !strings.Contains(q.stdout, "grace@example.com") {
		t.Fatalf("forgetting user:42 must not erase user:7: %q", q.stdout)
	}
	if r := mustRun(t, db, env{}, "verify"); !strings.Contains(r.stdout, "OK:") {
		t.Fatalf("verify after forget: %q", r.stdout)
	}
	// The erasure is itself an event, sealed like any other.
	mustRun(t, db, env{}, "seal")
	if r := mustRun(t, db, env{}, "verify"); !strings.Contains(r.stdout, "OK:") {
		t.Fatalf("verify after sealing the erasure: %q", r.stdout)
	}
	if q := mustRun(t, db, env{}, "query", "--action", "privacy.forget", "--json"); !strings.Contains(q.stdout, `"id":"42"`) {
		t.Fatalf("the erasure was not recorded: %q", q.stdout)
	}
}

package trailcli

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecordStdinKeysOnePerSubject: `trail record -` of many people's events
// stores one key per person (made in one write for the batch, not one
// commit each) and every event opens with its person's key: e-mails come
// back, and a search by e-mail finds that person's events.
func TestRecordStdinKeysOnePerSubject(t *testing.T) {
	db := filepath.Join(t.TempDir(), "trail.db")
	var in strings.Builder
	for i := range 60 {
		u := i % 20
		fmt.Fprintf(&in, `{"tenant":"acme","actor":{"type":"user","id":"%d","name":"Person %d","email":"p%d@example.com"},"action":"user.login"}`+"\n", u, u, u)
	}
	mustRun(t, db, env{stdin: in.String()}, "record", "-")
	sqldb, err := sql.Open("sqlite", "file:"+db+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer sqldb.Close()
	var keys int
	if err := sqldb.QueryRow(`SELECT count(*) FROM trail_subject_keys WHERE tenant = 'acme' AND subject LIKE 'user:%'`).Scan(&keys); err != nil {
		t.Fatal(err)
	}
	if keys != 20 {
		t.Errorf("%d keys for acme's users, want 20 (one per person)", keys)
	}
	out := mustRun(t, db, env{}, "query", "--tenant", "acme", "--limit", "100", "--json").stdout
	if n := strings.Count(out, `"p7@example.com"`); n != 3 {
		t.Errorf("p7@example.com revealed in %d events, want 3:\n%s", n, out)
	}
	out = mustRun(t, db, env{}, "query", "--tenant", "acme", "--actor-email", "p13@example.com", "--json").stdout
	if n := strings.Count(out, "\n"); n != 3 {
		t.Errorf("--actor-email p13@example.com found %d events, want 3:\n%s", n, out)
	}
}

package trailcli

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

// keyAttackEvents records events of three subjects with personal data, so
// that each has a data key, and seals them.
const keyAttackEvents = `{"tenant":"acme","actor":{"type":"user","id":"42","name":"Ada Lovelace","email":"ada@example.com"},"action":"user.update","target":{"type":"user","id":"42","name":"Ada Lovelace"}}
{"tenant":"acme","actor":{"type":"user","id":"7","name":"Grace Hopper","email":"grace@example.com"},"action":"user.update","target":{"type":"user","id":"7","name":"Grace Hopper"}}
{"tenant":"acme","actor":{"type":"user","id":"9","name":"Edsger Dijkstra","email":"ewd@example.com"},"action":"user.update","target":{"type":"user","id":"9","name":"Edsger Dijkstra"}}
`

// keyAttack is one edit of the key table as a DBA would make it, and the
// PROBLEM line verify must print for it.
type keyAttack struct {
	name  string
	sql   []string
	wants []string
}

var keyAttacks = []keyAttack{
	{"destroyed without forget", []string{
		`UPDATE trail_subject_keys SET wrapped_key = NULL, destroyed_at = 1 WHERE tenant = 'acme' AND subject = 'user:42'`,
	}, []string{`PROBLEM tenant "acme": erased_without_forget`, "subject user:42"}},
	{"deleted row", []string{
		`DELETE FROM trail_subject_keys WHERE tenant = 'acme' AND subject = 'user:7'`,
	}, []string{`PROBLEM tenant "acme": key_missing`, "subject user:7"}},
	{"swapped wrapped keys", []string{
		`UPDATE trail_subject_keys SET wrapped_key = (SELECT wrapped_key FROM trail_subject_keys WHERE tenant = 'acme' AND subject = 'user:9') || '' WHERE tenant = 'acme' AND subject = 'user:42'`,
	}, []string{`PROBLEM tenant "acme": key_does_not_unwrap`, "subject user:42"}},
	{"forget event without erasure", []string{
		`UPDATE trail_subject_keys SET wrapped_key = 'AAAA', destroyed_at = NULL WHERE tenant = 'acme' AND subject = 'user:9'`,
	}, []string{`forget_not_erased`, "subject user:9"}},
}

// TestVerifyKeyTable: every edit of the data-key table is a PROBLEM naming
// the tenant, subject and kind, exit 1 (SQLite); an honest erasure passes.
func TestVerifyKeyTable(t *testing.T) {
	for _, a := range keyAttacks {
		t.Run(a.name, func(t *testing.T) {
			t.Parallel()
			db := tempDB(t)
			mustRun(t, db, env{stdin: keyAttackEvents}, "record", "-")
			if a.name == "forget event without erasure" {
				mustRun(t, db, env{}, "forget", "--tenant", "acme", "--subject", "user:9")
			}
			mustRun(t, db, env{}, "seal")
			if r := mustRun(t, db, env{}, "verify"); !strings.Contains(r.stdout, "OK:") {
				t.Fatalf("verify before the edit: %q", r.stdout)
			}
			sqldb, err := sql.Open("sqlite", "file:"+db+"?_pragma=busy_timeout(10000)")
			if err != nil {
				t.Fatal(err)
			}
			defer sqldb.Close()
			for _, q := range a.sql {
				if _, err := sqldb.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			r := run(t, db, env{}, "verify")
			if r.code != ExitFailure || strings.Contains(r.stdout, "OK:") {
				t.Fatalf("verify after %s: exit %d\n%s%s", a.name, r.code, r.stdout, r.stderr)
			}
			for _, w := range a.wants {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("verify after %s: no %q in\n%s", a.name, w, r.stdout)
				}
			}
		})
	}
}

// TestVerifyKeyTablePostgres: the same edits of the key table in the
// events' schema on PostgreSQL, each a PROBLEM with exit 1.
func TestVerifyKeyTablePostgres(t *testing.T) { // not parallel: sets the environment
	t.Setenv("TRAIL_MASTER_KEY", newMasterKey(t))
	for _, a := range keyAttacks {
		t.Run(a.name, func(t *testing.T) {
			dsn := freshPostgresDB(t)
			key := filepath.Join(t.TempDir(), "signing.key")
			mustRun(t, "", env{}, "keys", "signing", "generate", "--signing-key-file", key)
			pg := []string{"--postgres", dsn, "--signing-key-file", key}
			mustRun(t, "", env{stdin: keyAttackEvents}, "record", "--postgres", dsn, "-")
			if a.name == "forget event without erasure" {
				mustRun(t, "", env{}, "forget", "--postgres", dsn, "--tenant", "acme", "--subject", "user:9")
			}
			mustRun(t, "", env{}, append([]string{"seal"}, pg...)...)
			if r := mustRun(t, "", env{}, append([]string{"verify"}, pg...)...); !strings.Contains(r.stdout, "OK:") {
				t.Fatalf("verify before the edit: %q", r.stdout)
			}
			db, err := sql.Open("pgx", dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, q := range a.sql {
				if _, err := db.Exec(strings.ReplaceAll(q, "trail_subject_keys", "trail.trail_subject_keys")); err != nil {
					t.Fatal(err)
				}
			}
			r := run(t, "", env{}, append([]string{"verify"}, pg...)...)
			if r.code != ExitFailure || strings.Contains(r.stdout, "OK:") {
				t.Fatalf("verify after %s: exit %d\n%s%s", a.name, r.code, r.stdout, r.stderr)
			}
			for _, w := range a.wants {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("verify after %s: no %q in\n%s", a.name, w, r.stdout)
				}
			}
		})
	}
}

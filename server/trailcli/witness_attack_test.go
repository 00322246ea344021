package trailcli

import (
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailseal/sealtest"
	"golang.org/x/mod/sumdb/tlog"
)

// attackStore is one store under attack by its database administrator, who
// also holds the signing key (it sits beside a SQLite file, or in the
// deployment's configuration): everything in the database can be rewritten
// and re-signed. Only a witness remembers what was signed before.
type attackStore interface {
	args() []string // the CLI's store and key flags
	append(t *testing.T, evs []trail.Event)
	// exec runs statements as the administrator, guards off.
	exec(t *testing.T, stmts ...string)
	// backup returns the args of a copy of the store as it is now (a
	// backup, restored later in the attack).
	backup(t *testing.T) []string
	// schema qualifies a seal table: "trail_seal_" (SQLite) or "trail.seal_".
	seal(table string) string
	// deleteTenantSQL deletes every row of tenant.
	deleteTenantSQL(tenant string) []string
	// repend puts tenant's events that have no leaf back in the seal queue.
	repend(t *testing.T, tenant string)
	// editSQL edits the description of acme's event at seq 8.
	editSQL() []string
}

type sqliteAttack struct {
	db, key string
}

func (s *sqliteAttack) args() []string { return []string{"--db", s.db, "--signing-key-file", s.key} }

func (s *sqliteAttack) append(t *testing.T, evs []trail.Event) {
	t.Helper()
	st, err := trailsqlite.Open(context.Background(), s.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
}

func (s *sqliteAttack) exec(t *testing.T, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+s.db+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func (s *sqliteAttack) backup(t *testing.T) []string {
	t.Helper()
	b := filepath.Join(t.TempDir(), "backup.db")
	s.exec(t, "VACUUM INTO '"+b+"'")
	return []string{"--db", b, "--signing-key-file", s.key}
}

func (s *sqliteAttack) seal(table string) string { return "trail_seal_" + table }

func (s *sqliteAttack) deleteTenantSQL(tenant string) []string {
	return []string{
		"DELETE FROM trail_events WHERE tenant = '" + tenant + "'",
		"DELETE FROM trail_seal_leaves WHERE log = '" + tenant + "'",
		"DELETE FROM trail_seal_hashes WHERE log = '" + tenant + "'",
		"DELETE FROM trail_seal_logs WHERE log = '" + tenant + "'",
		"DELETE FROM trail_seal_checkpoints WHERE log = '" + tenant + "'",
	}
}

func (s *sqliteAttack) editSQL() []string {
	return []string{"DROP TRIGGER trail_events_bu",
		"UPDATE trail_events SET description = 'rewritten' WHERE id = (SELECT event_id FROM trail_seal_leaves WHERE log = 'acme' AND seq = 8)"}
}

func (s *sqliteAttack) repend(t *testing.T, tenant string) {
	s.exec(t, `INSERT INTO trail_seal_pending (seq, id) SELECT e.seq, e.id FROM trail_events e
		WHERE e.tenant = '`+tenant+`' AND NOT EXISTS (SELECT 1 FROM trail_seal_leaves l WHERE l.event_id = e.id)`)
}

// The attacks of issue 14 that the store alone cannot show, each on a
// fresh store: without a witness verify passes (exit 0) and says what it
// cannot detect; with the witness the sealer wrote to, verify fails with a
// PROBLEM line naming the tenant and the kind.
func TestWitnessCatchesRollbackAndDeletionSQLite(t *testing.T) {
	runWitnessAttacks(t, newSQLiteAttack)
}

func newSQLiteAttack(t *testing.T) attackStore {
	dir := t.TempDir()
	key := filepath.Join(dir, "signing.key")
	mustRun(t, "", env{}, "keys", "signing", "generate", "--signing-key-file", key)
	return &sqliteAttack{db: filepath.Join(dir, "trail.db"), key: key}
}

func runWitnessAttacks(t *testing.T, open func(t *testing.T) attackStore) {
	// setup seals acme (10 events in two rounds: checkpoints 6 and 10),
	// globex (7) and initech (5) with a directory witness.
	setup := func(t *testing.T) (attackStore, string) {
		s := open(t)
		wit := "dir:" + t.TempDir()
		s.append(t, append(sealtest.Events(t, "acme", 0, 6), sealtest.Events(t, "globex", 0, 7)...))
		mustRun(t, "", env{}, append([]string{"seal", "--witness", wit}, s.args()...)...)
		s.append(t, append(sealtest.Events(t, "acme", 6, 4), sealtest.Events(t, "initech", 0, 5)...))
		mustRun(t, "", env{}, append([]string{"seal", "--witness", wit}, s.args()...)...)
		r := mustRun(t, "", env{}, append([]string{"verify", "--witness", wit}, s.args()...)...)
		if !strings.Contains(r.stdout, "OK:") || !strings.Contains(r.stdout, "Witness dir:") {
			t.Fatalf("verify before the attack: %q", r.stdout)
		}
		return s, wit
	}
	// check runs verify on args without and with the witness.
	check := func(t *testing.T, args []string, wit string, want ...string) {
		t.Helper()
		r := run(t, "", env{}, append([]string{"verify"}, args...)...)
		if r.code != 0 || !strings.Contains(r.stdout, "undetectable without a witness") {
			t.Fatalf("verify without a witness: exit %d (the attack should pass unseen, and be said to be undetectable)\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = run(t, "", env{}, append([]string{"verify", "--witness", wit}, args...)...)
		if r.code != 1 {
			t.Fatalf("verify --witness: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
		}
		for _, w := range want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("verify --witness: no %q in\n%s", w, r.stdout)
			}
		}
	}
	t.Run("delete a whole tenant", func(t *testing.T) {
		s, wit := setup(t)
		s.exec(t, append(s.deleteTenantSQL("globex"), "DELETE FROM "+s.seal("heads"))...)
		check(t, s.args(), wit, `PROBLEM tenant "globex" checkpoint 7: tenant_deleted`, `PROBLEM tenant "(deployment head)": head_rolled_back`)
	})
	t.Run("roll the database back to an earlier backup", func(t *testing.T) {
		s := open(t)
		wit := "dir:" + t.TempDir()
		s.append(t, sealtest.Events(t, "acme", 0, 6))
		mustRun(t, "", env{}, append([]string{"seal", "--witness", wit}, s.args()...)...)
		old := s.backup(t)
		s.append(t, append(sealtest.Events(t, "acme", 6, 4), sealtest.Events(t, "globex", 0, 3)...))
		mustRun(t, "", env{}, append([]string{"seal", "--witness", wit}, s.args()...)...)
		// The restored backup is the store now.
		check(t, old, wit, `PROBLEM tenant "acme" checkpoint 10: rolled_back`, `PROBLEM tenant "globex" checkpoint 3: tenant_deleted`,
			`PROBLEM tenant "(deployment head)": head_rolled_back`)
	})
	t.Run("rewrite a tail with its checkpoints", func(t *testing.T) {
		s, wit := setup(t)
		rewriteTail(t, s, "size > 6")
		check(t, s.args(), wit, `PROBLEM tenant "acme" checkpoint 10: forked`)
	})
	t.Run("delete every checkpoint of a log", func(t *testing.T) {
		s, wit := setup(t)
		s.exec(t, "DELETE FROM "+s.seal("checkpoints")+" WHERE log = 'acme'", "DELETE FROM "+s.seal("heads"))
		check(t, s.args(), wit, `PROBLEM tenant "acme" checkpoint 10: checkpoints_deleted`)
	})
}

// rewriteTail edits acme's event at seq 8, drops acme's leaves and tree
// from seq 6 on and the checkpoints matching cpWhere, queues the events
// again and lets the administrator's own sealer (no witness) re-seal and
// re-sign them: a consistent, signed, rewritten tail.
func rewriteTail(t *testing.T, s attackStore, cpWhere string) {
	t.Helper()
	s.exec(t, s.editSQL()...)
	s.exec(t,
		"DELETE FROM "+s.seal("leaves")+" WHERE log = 'acme' AND seq >= 6",
		"DELETE FROM "+s.seal("hashes")+" WHERE log = 'acme' AND idx >= "+strconv.FormatInt(tlog.StoredHashIndex(0, 6), 10),
		"DELETE FROM "+s.seal("checkpoints")+" WHERE log = 'acme' AND "+cpWhere,
		"UPDATE "+s.seal("logs")+" SET size = 6 WHERE log = 'acme'")
	s.repend(t, "acme")
	mustRun(t, "", env{}, append([]string{"seal"}, s.args()...)...)
}

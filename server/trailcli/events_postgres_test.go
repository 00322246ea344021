package trailcli

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailhq/trail"
)

// pgJSON runs a read command with --json on PostgreSQL and decodes its lines.
func pgJSON(t *testing.T, args ...string) []trail.Event {
	t.Helper()
	r := mustRun(t, "", env{}, append(args, "--json")...)
	var evs []trail.Event
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev trail.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// TestRecordQueryHistoryPostgres: `trail migrate`, `record`, `query` and
// `history` with --postgres (and TRAIL_POSTGRES) round-trip events through
// the privacy layer: stored protected, read back revealed, with the same
// filters, JSON and outputs as on SQLite; no SQLite file is touched.
func TestRecordQueryHistoryPostgres(t *testing.T) { // not parallel: sets the environment
	dsn := freshPostgresDB(t)
	t.Setenv("TRAIL_MASTER_KEY", newMasterKey(t))
	t.Setenv("TRAIL_POSTGRES", "")
	policy := writeFile(t, "policy", "metadata.email pii\n")
	db := tempDB(t) // must stay absent: --postgres wins over --db

	r := mustRun(t, "", env{}, "migrate", "--postgres", dsn)
	if !strings.Contains(r.stdout, "PostgreSQL schema") {
		t.Fatalf("migrate: %q", r.stdout)
	}

	r = mustRun(t, db, env{}, "--policy", policy, "record", "--postgres", dsn, "--tenant", "acme", "--actor", "user:42",
		"--action", "subscription.update", "--target", "subscription:sub_1", "--description", "Plan changed",
		"--metadata", `{"email":"ann@example.com","password":"hunter2"}`)
	id := strings.TrimSpace(r.stdout)
	if id == "" {
		t.Fatal("record printed no ID")
	}
	// Recording the same ID again stores nothing.
	r = mustRun(t, "", env{}, "--policy", policy, "record", "--postgres", dsn, "--tenant", "acme", "--actor", "user:42",
		"--action", "subscription.update", "--target", "subscription:sub_1", "--id", id)
	if !strings.HasSuffix(strings.TrimSpace(r.stdout), "duplicate") {
		t.Fatalf("second record: %q", r.stdout)
	}
	// A batch on stdin, in one atomic batch, with a change.
	stdin := `{"tenant":"acme","actor":{"type":"user","id":"7"},"action":"subscription.update","target":{"type":"subscription","id":"sub_1"},"changes":[{"field":"plan","old":"free","new":"pro"}]}
{"tenant":"globex","actor":{"type":"user","id":"8"},"action":"user.delete","target":{"type":"user","id":"17"},"outcome":"denied"}
`
	r = mustRun(t, "", env{stdin: stdin}, "--policy", policy, "record", "--postgres", dsn, "-")
	if n := len(strings.Fields(r.stdout)); n != 2 {
		t.Fatalf("batch record printed %q", r.stdout)
	}

	// Stored protected: the e-mail is encrypted and the password redacted at rest.
	stored := pgEvents(t, dsn, "acme", "subscription.update")
	if len(stored) != 2 {
		t.Fatalf("stored %d acme events, want 2", len(stored))
	}
	for _, ev := range stored {
		b, _ := json.Marshal(ev)
		if strings.Contains(string(b), "ann@example.com") || strings.Contains(string(b), "hunter2") {
			t.Fatalf("stored in clear: %s", b)
		}
		if ev.Source != "cli" {
			t.Fatalf("source %q, want cli", ev.Source)
		}
	}

	// Query reveals, exactly like on SQLite.
	evs := pgJSON(t, "query", "--postgres", dsn, "--tenant", "acme", "--actor", "user:42")
	if len(evs) != 1 || evs[0].ID.String() != id {
		t.Fatalf("query --actor user:42: %+v", evs)
	}
	if got := evs[0].Metadata["email"]; got != "ann@example.com" {
		t.Fatalf("revealed email %v", got)
	}
	if got := evs[0].Metadata["password"]; got == "hunter2" {
		t.Fatal("password not redacted")
	}
	// Filters: action prefix, outcome, field, tenant, via TRAIL_POSTGRES.
	t.Setenv("TRAIL_POSTGRES", dsn)
	if evs := pgJSON(t, "query", "--action", "subscription.*"); len(evs) != 2 {
		t.Fatalf("--action subscription.*: %d events", len(evs))
	}
	if evs := pgJSON(t, "query", "--outcome", "denied"); len(evs) != 1 || evs[0].Tenant != "globex" {
		t.Fatalf("--outcome denied: %+v", evs)
	}
	if evs := pgJSON(t, "query", "--field", "plan"); len(evs) != 1 || evs[0].Actor.ID != "7" {
		t.Fatalf("--field plan: %+v", evs)
	}
	if evs := pgJSON(t, "query", "--tenant", "globex", "--action", "subscription.*"); len(evs) != 0 {
		t.Fatalf("--tenant globex --action subscription.*: %+v", evs)
	}
	// Paging: a cursor continues the page.
	r = mustRun(t, "", env{}, "query", "--limit", "1", "--json")
	if !strings.Contains(r.stderr, "--cursor ") {
		t.Fatalf("no cursor printed: %q", r.stderr)
	}
	cur := strings.TrimSpace(r.stderr[strings.LastIndex(r.stderr, "--cursor ")+len("--cursor "):])
	if evs := pgJSON(t, "query", "--limit", "5", "--cursor", cur); len(evs) != 2 {
		t.Fatalf("second page: %d events, want 2", len(evs))
	}
	// The table.
	r = mustRun(t, "", env{width: 200}, "query", "--tenant", "acme")
	if !strings.Contains(r.stdout, "user:42") || !strings.Contains(r.stdout, "Plan changed") {
		t.Fatalf("table:\n%s", r.stdout)
	}

	// History: the object's timeline with its changes, and as JSON.
	r = mustRun(t, "", env{width: 200}, "history", "subscription:sub_1", "--tenant", "acme")
	if !strings.Contains(r.stdout, `plan  "free" → "pro"`) || !strings.Contains(r.stdout, "Plan changed") {
		t.Fatalf("history:\n%s", r.stdout)
	}
	if evs := pgJSON(t, "history", "subscription:sub_1"); len(evs) != 2 || evs[1].ID.String() != id ||
		evs[1].Metadata["email"] != "ann@example.com" {
		t.Fatalf("history --json: %+v", evs)
	}

	// The wrong master key is an error, never ciphertext shown as data.
	t.Setenv("TRAIL_MASTER_KEY", newMasterKey(t))
	if r := run(t, "", env{}, "query"); r.code != ExitFailure || !strings.Contains(r.stderr, "master key") {
		t.Fatalf("query with another master key: exit %d %q", r.code, r.stderr)
	}
	if r := run(t, "", env{}, "query", "--postgres", ""); r.code != ExitFailure {
		// --postgres "" falls back to --db, which does not exist here.
		t.Fatalf("query --postgres \"\": exit %d %q", r.code, r.stderr)
	}
	if _, err := os.Stat(db); err == nil {
		t.Fatalf("%s was created", db)
	}
}

// TestEventsPostgresBadDSN: a DSN that does not parse or does not connect
// is a one-line error and exit 1 for every command, with nothing recorded
// anywhere.
func TestEventsPostgresBadDSN(t *testing.T) {
	t.Setenv("TRAIL_MASTER_KEY", newMasterKey(t))
	for _, dsn := range []string{"postgres://[bad", "postgres://trail@127.0.0.1:1/nodb?connect_timeout=5"} {
		for _, args := range [][]string{
			{"query", "--postgres", dsn},
			{"history", "user:1", "--postgres", dsn},
			{"record", "--postgres", dsn, "--actor", "user:1", "--action", "user.login"},
			{"migrate", "--postgres", dsn},
		} {
			r := run(t, "", env{terminal: true}, args...)
			if r.code != ExitFailure {
				t.Errorf("%v: exit %d, want %d; stderr %q", args, r.code, ExitFailure, r.stderr)
			}
			if strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "trail: ") || r.stdout != "" {
				t.Errorf("%v: stdout %q stderr %q, want one error line", args, r.stdout, r.stderr)
			}
		}
	}
}

// TestReadPostgresWithoutSchema: `trail query`, `history`, `keys`,
// `forget`, `verify` and `retention show|plan` read or administer existing
// data. On a database that was never migrated they fail with a one-line
// message pointing at `trail migrate` and create nothing, as they refuse a
// missing SQLite file (they used to migrate it: query then failed on the
// master key, leaving a whole schema behind; retention show printed the
// default policy of a deployment that did not exist; verify said "relation
// does not exist"). After `trail migrate` they run.
func TestReadPostgresWithoutSchema(t *testing.T) { // not parallel: sets the environment
	dsn := freshPostgresDB(t)
	t.Setenv("TRAIL_POSTGRES", "")
	schemas := func() int {
		return pgCount(t, dsn, "SELECT count(*) FROM pg_namespace WHERE nspname = 'trail'")
	}
	signing := filepath.Join(t.TempDir(), "signing.key")
	mustRun(t, "", env{}, "keys", "signing", "generate", "--signing-key-file", signing)
	for _, key := range []string{"", newMasterKey(t)} {
		t.Setenv("TRAIL_MASTER_KEY", key)
		for _, args := range [][]string{
			{"query", "--postgres", dsn, "--tenant", "acme"},
			{"history", "--postgres", dsn, "--tenant", "acme", "subscription:sub_1"},
			{"keys", "list", "--postgres", dsn},
			{"keys", "create", "--postgres", dsn, "--tenant", "acme", "--role", "reader"},
			{"retention", "show", "--postgres", dsn},
			{"retention", "plan", "--postgres", dsn},
			{"forget", "--postgres", dsn, "--tenant", "acme", "--subject", "user:42"},
			{"verify", "--postgres", dsn, "--signing-key-file", signing},
		} {
			r := run(t, "", env{}, args...)
			if r.code == 0 || !strings.Contains(r.stderr, "no Trail schema") || !strings.Contains(r.stderr, "trail migrate") ||
				strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
				t.Errorf("trail %s (master key set: %v): exit %d, stderr %q", strings.Join(args[:2], " "), key != "", r.code, r.stderr)
			}
			if n := schemas(); n != 0 {
				t.Fatalf("trail %s created the schema", strings.Join(args[:2], " "))
			}
		}
	}
	mustRun(t, "", env{}, "migrate", "--postgres", dsn)
	mustRun(t, "", env{}, "query", "--postgres", dsn, "--tenant", "acme")
	mustRun(t, "", env{}, "keys", "list", "--postgres", dsn)
	mustRun(t, "", env{}, "retention", "show", "--postgres", dsn)
	mustRun(t, "", env{}, "verify", "--postgres", dsn, "--signing-key-file", signing)
}

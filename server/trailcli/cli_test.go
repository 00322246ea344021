package trailcli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailsqlite"
)

type result struct {
	code           int
	stdout, stderr string
}

// env describes how a test runs the CLI.
type env struct {
	stdin    string
	terminal bool // stdin is a terminal
	width    int
}

func run(t *testing.T, db string, o env, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	w := o.width
	term := o.terminal
	e := &Env{
		Ctx:             context.Background(),
		Stdin:           strings.NewReader(o.stdin),
		Stdout:          &out,
		Stderr:          &errb,
		Loc:             time.UTC,
		StdinIsTerminal: &term,
		Width:           &w,
	}
	if db != "" {
		args = append([]string{"--db", db}, args...)
	}
	code := e.Main(args)
	return result{code, out.String(), errb.String()}
}

func mustRun(t *testing.T, db string, o env, args ...string) result {
	t.Helper()
	r := run(t, db, o, args...)
	if r.code != 0 {
		t.Fatalf("trail %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

func tempDB(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "trail.db")
}

// jsonEvents runs a query with --json and decodes its lines.
func jsonEvents(t *testing.T, db string, args ...string) []trail.Event {
	t.Helper()
	r := mustRun(t, db, env{}, append([]string{"query", "--json", "--limit", "1000"}, args...)...)
	var evs []trail.Event
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev trail.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("bad JSON line %q: %v", sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func TestRecordQueryHistoryRoundTrip(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	const id = "0193a5b2-7c00-7000-8000-000000000001"
	occurred := time.Now().Add(-time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	args := []string{"record", "--tenant", "acme", "--actor", "user:42", "--action", "user.delete", "--target", "user:17",
		"--description", "Deleted user jdoe", "--metadata", `{"reason":"left the company","ticket":4711}`,
		"--occurred-at", occurred, "--id", id}
	r := mustRun(t, db, env{terminal: true}, args...)
	if r.stdout != id+"\n" {
		t.Fatalf("record printed %q, want the ID", r.stdout)
	}
	// The same ID again is a duplicate: one row.
	r = mustRun(t, db, env{terminal: true}, args...)
	if r.stdout != id+" duplicate\n" {
		t.Fatalf("second record printed %q", r.stdout)
	}
	// A subscription change through stdin, with typed changes.
	sub := `{"tenant":"acme","actor":{"type":"user","id":"42","name":"Alice Chen"},"action":"subscription.update",` +
		`"target":{"type":"subscription","id":"sub_acme"},"description":"Changed subscription plan to pro for tenant Acme",` +
		`"changes":[{"field":"plan","old":"starter","new":"pro"},{"field":"seats","old":10,"new":25}]}`
	r = mustRun(t, db, env{stdin: sub + "\n"}, "record")
	if len(strings.Fields(r.stdout)) != 1 {
		t.Fatalf("stdin record printed %q", r.stdout)
	}

	evs := jsonEvents(t, db, "--tenant", "acme")
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2", len(evs))
	}
	del := evs[1]
	if evs[0].Action != "subscription.update" || del.ID.String() != id {
		t.Fatalf("order: %s %s", evs[0].Action, del.ID)
	}
	if del.Actor.String() != "user:42" || del.Target.String() != "user:17" || del.Tenant != "acme" ||
		del.Description != "Deleted user jdoe" || del.Source != "cli" || del.OccurredAt.Format(time.RFC3339) != occurred {
		t.Fatalf("stored event %+v", del)
	}
	if del.Metadata["reason"] != "left the company" || del.RecordedAt.IsZero() {
		t.Fatalf("metadata %v, recorded_at %v", del.Metadata, del.RecordedAt)
	}

	// Filters reach the store.
	if n := len(jsonEvents(t, db, "--action", "user.*")); n != 1 {
		t.Errorf("--action user.*: %d events", n)
	}
	if n := len(jsonEvents(t, db, "--actor", "user:42", "--target", "subscription:sub_acme")); n != 1 {
		t.Errorf("--actor --target: %d events", n)
	}
	if n := len(jsonEvents(t, db, "--field", "seats")); n != 1 {
		t.Errorf("--field seats: %d events", n)
	}
	if n := len(jsonEvents(t, db, "--tenant", "globex")); n != 0 {
		t.Errorf("--tenant globex: %d events", n)
	}
	if n := len(jsonEvents(t, db, "--until", "2h")); n != 0 {
		t.Errorf("--until 2h: %d events", n)
	}
	if n := len(jsonEvents(t, db, "--since", "2h", "--until", "30m")); n != 1 {
		t.Errorf("--since 2h --until 30m: %d events", n)
	}

	// The table for people.
	r = mustRun(t, db, env{}, "query", "--tenant", "acme")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "TIME") {
		t.Fatalf("table:\n%s", r.stdout)
	}
	for _, want := range []string{"user:42 Alice Chen", "subscription.update", "subscription:sub_acme", "Changed subscription plan to pro"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("table row %q lacks %q", lines[1], want)
		}
	}
	if !strings.Contains(lines[2], "user.delete") || !strings.Contains(lines[2], "user:17") {
		t.Errorf("table row %q", lines[2])
	}

	// History shows the changes old → new, with their JSON types.
	r = mustRun(t, db, env{}, "history", "subscription:sub_acme", "--tenant", "acme")
	for _, want := range []string{`plan   "starter" → "pro"`, "seats  10 → 25", "by user:42 Alice Chen"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("history lacks %q:\n%s", want, r.stdout)
		}
	}
	r = mustRun(t, db, env{}, "history", "user:17", "--json")
	if strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stdout, `"action":"user.delete"`) {
		t.Errorf("history --json: %q", r.stdout)
	}
}

func TestRecordStdinBatch(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	batch := `{"actor":{"type":"user","id":"1"},"action":"auth.login"}
{"actor":{"type":"user","id":"2"},"action":"auth.login","outcome":"denied"}

[{"actor":{"type":"system","id":"cron"},"action":"report.export","tenant":"globex"},
 {"actor":{"type":"user","id":"3"},"action":"auth.logout","id":"0193a5b2-7c00-7000-8000-0000000000aa"}]
`
	r := mustRun(t, db, env{stdin: batch}, "record", "--tenant", "acme", "-")
	ids := strings.Fields(r.stdout)
	if len(ids) != 4 {
		t.Fatalf("printed %q, want 4 IDs", r.stdout)
	}
	evs := jsonEvents(t, db)
	if len(evs) != 4 {
		t.Fatalf("%d events stored", len(evs))
	}
	tenants := map[string]int{}
	for _, ev := range evs {
		tenants[ev.Tenant]++
	}
	if tenants["acme"] != 3 || tenants["globex"] != 1 {
		t.Errorf("tenants %v: --tenant is the default, an event's own tenant wins", tenants)
	}
	if n := len(jsonEvents(t, db, "--outcome", "denied")); n != 1 {
		t.Errorf("%d denied", n)
	}

	// One bad line anywhere: nothing of the batch is stored, the line is named.
	bad := `{"actor":{"type":"user","id":"9"},"action":"auth.login"}
{"actor":{"type":"user","id":"9"},"action":"Auth Login"}
`
	r = run(t, db, env{stdin: bad}, "record", "--tenant", "acme")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "line 2") || !strings.Contains(r.stderr, "action") {
		t.Fatalf("bad batch: exit %d, stderr %q", r.code, r.stderr)
	}
	// A duplicate in a batch is reported and stored once.
	dup := `{"actor":{"type":"user","id":"3"},"action":"auth.logout","id":"0193a5b2-7c00-7000-8000-0000000000aa"}` + "\n" +
		`{"actor":{"type":"user","id":"4"},"action":"auth.logout","id":"0193a5b2-7c00-7000-8000-0000000000bb"}`
	r = mustRun(t, db, env{stdin: dup}, "record", "--tenant", "acme", "-")
	if !strings.Contains(r.stdout, "0193a5b2-7c00-7000-8000-0000000000aa duplicate\n") ||
		!strings.Contains(r.stdout, "0193a5b2-7c00-7000-8000-0000000000bb\n") {
		t.Fatalf("duplicate batch printed %q", r.stdout)
	}
	if n := len(jsonEvents(t, db)); n != 5 {
		t.Fatalf("%d events after the bad and duplicate batches, want 5", n)
	}
}

// countEvents counts the stored events, or returns -1 when there is no
// database.
func countEvents(t *testing.T, db string) int {
	t.Helper()
	if _, err := os.Stat(db); err != nil {
		return -1
	}
	return len(jsonEvents(t, db))
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	mustRun(t, db, env{terminal: true}, "record", "--tenant", "acme", "--actor", "user:1", "--action", "user.create", "--target", "user:2")
	rec := func(extra ...string) []string {
		return append([]string{"record", "--tenant", "acme", "--actor", "user:1", "--action", "user.delete", "--target", "user:2"}, extra...)
	}
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string // in the one-line message
	}{
		{"invalid action", "", []string{"record", "--actor", "user:1", "--action", "User Delete"}, 2, "action"},
		{"action with one segment", "", []string{"record", "--actor", "user:1", "--action", "delete"}, 2, "action"},
		{"invalid tenant", "", rec("--tenant", "acme corp"), 2, "tenant"},
		{"tenant too long", "", rec("--tenant", strings.Repeat("a", 200)), 2, "tenant"},
		{"actor type", "", rec("--actor", "robot:1"), 2, "--actor"},
		{"actor empty id", "", rec("--actor", "user:"), 2, "--actor"},
		{"actor user without id", "", rec("--actor", "user"), 2, "actor.id"},
		{"missing actor", "", []string{"record", "--action", "user.delete"}, 2, "--actor"},
		{"missing action", "", []string{"record", "--actor", "user:1"}, 2, "--action"},
		{"target without id", "", rec("--target", "user"), 2, "--target"},
		{"target type", "", rec("--target", "User:1"), 2, "--target"},
		{"target control char", "", rec("--target", "user:1\x1b[2J"), 2, "--target"},
		{"bad outcome", "", rec("--outcome", "maybe"), 2, "outcome"},
		{"bad id", "", rec("--id", "not-a-uuid"), 2, "--id"},
		{"nil id", "", rec("--id", "00000000-0000-0000-0000-000000000000"), 2, "--id"},
		{"bad metadata JSON", "", rec("--metadata", `{"a":`), 2, "--metadata"},
		{"metadata not an object", "", rec("--metadata", `[1,2]`), 2, "--metadata"},
		{"metadata huge integer", "", rec("--metadata", `{"n":1234567890123456789}`), 2, "metadata"},
		{"metadata invalid UTF-8", "", rec("--metadata", "{\"a\":\"\xff\"}"), 2, "UTF-8"},
		{"description invalid UTF-8", "", rec("--description", "bad \xff"), 2, "UTF-8"},
		{"description too long", "", rec("--description", strings.Repeat("x", 5000)), 2, "description"},
		{"occurred-at bad", "", rec("--occurred-at", "yesterday"), 2, "--occurred-at"},
		{"occurred-at future", "", rec("--occurred-at", "2999-01-01T00:00:00Z"), 2, "occurred_at"},
		{"extra argument", "", rec("oops"), 2, "unexpected argument"},
		{"stdin with --action", `{"actor":{"type":"user","id":"1"},"action":"a.b"}`, []string{"record", "-", "--action", "a.b"}, 2, "--action"},
		{"stdin invalid JSON", `{"actor":{"type":"user","id":"1"},"action":"a.b"`, []string{"record", "-"}, 2, "line 1"},
		{"stdin not an object", `"hello"`, []string{"record", "-"}, 2, "line 1"},
		{"stdin unknown field", `{"actor":{"type":"user","id":"1"},"action":"a.b","tennant":"x"}`, []string{"record", "-"}, 2, "tennant"},
		{"stdin wrong type", `{"actor":{"type":"user","id":"1"},"action":5}`, []string{"record", "-"}, 2, "action"},
		{"stdin invalid UTF-8", "{\"actor\":{\"type\":\"user\",\"id\":\"1\"},\"action\":\"a.b\"}\n{\"description\":\"\xff\"}", []string{"record", "-"}, 2, "line 2: not valid UTF-8"},
		{"stdin empty", "", []string{"record", "-"}, 2, "no events"},
		{"stdin bad time", `{"actor":{"type":"user","id":"1"},"action":"a.b","occurred_at":"soon"}`, []string{"record", "-"}, 2, "line 1"},
		{"stdin bad actor default", `{"action":"a.b"}`, []string{"record", "-", "--actor", "bot:1"}, 2, "--actor"},
		{"query bad duration", "", []string{"query", "--since", "30x"}, 2, "--since"},
		{"query bad time", "", []string{"query", "--until", "2026-13-45"}, 2, "--until"},
		{"query until before since", "", []string{"query", "--since", "1d", "--until", "2d"}, 2, "until"},
		{"query bad actor", "", []string{"query", "--actor", "tenant:acme"}, 2, "--actor"},
		{"query bad action", "", []string{"query", "--action", "User.Delete"}, 2, "action"},
		{"query bad tenant", "", []string{"query", "--tenant", "-acme"}, 2, "tenant"},
		{"query bad outcome", "", []string{"query", "--outcome", "ok"}, 2, "outcome"},
		{"query limit too big", "", []string{"query", "--limit", "5000"}, 2, "limit"},
		{"query limit not a number", "", []string{"query", "--limit", "ten"}, 2, "--limit"},
		{"query bad cursor", "", []string{"query", "--cursor", "AAAA"}, 2, "cursor"},
		{"query invalid UTF-8", "", []string{"query", "--text", "\xff"}, 2, "UTF-8"},
		{"history bad ref", "", []string{"history", "subscription"}, 2, "TYPE:ID"},
		{"history missing ref", "", []string{"history"}, 2, "type:id"},
		{"unknown flag", "", []string{"query", "--frobnicate"}, 2, "--frobnicate"},
		{"unknown command", "", []string{"frobnicate"}, 2, "frobnicate"},
		{"demo events out of range", "", []string{"demo", "--events", "0"}, 2, "--events"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := countEvents(t, db)
			r := run(t, db, env{stdin: tc.stdin, terminal: tc.stdin == ""}, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tc.code, r.stderr)
			}
			if strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "trail: ") {
				t.Errorf("stderr is not one line: %q", r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr %q does not name %q", r.stderr, tc.want)
			}
			if !utf8.ValidString(r.stderr) || strings.ContainsAny(r.stderr, "\x1b\x00") {
				t.Errorf("stderr carries raw bytes: %q", r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q", r.stdout)
			}
			if after := countEvents(t, db); after != before {
				t.Errorf("%d events before, %d after: something was written", before, after)
			}
			// Against a database that does not exist yet, bad input creates none.
			fresh := filepath.Join(t.TempDir(), "fresh.db")
			if r := run(t, fresh, env{stdin: tc.stdin, terminal: tc.stdin == ""}, tc.args...); r.code != tc.code {
				t.Errorf("on a new database: exit %d, want %d", r.code, tc.code)
			}
			if _, err := os.Stat(fresh); err == nil {
				t.Errorf("bad input created the database file")
			}
		})
	}
}

// In a script (stdin not a terminal), flags without --action are a
// forgotten --action, not an attempt to read events from stdin.
func TestRecordFlagsWithoutActionInScript(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	r := run(t, db, env{}, "record", "--actor", "user:1", "--target", "user:2")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "--action is required") || !strings.Contains(r.stderr, "--target") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(db); err == nil {
		t.Fatal("database created")
	}
}

func TestNoArgsShowsHelp(t *testing.T) {
	t.Parallel()
	r := run(t, "", env{})
	if r.code != ExitUsage || !strings.Contains(r.stdout, "record") {
		t.Fatalf("no args: exit %d, stdout %q", r.code, r.stdout)
	}
	r = run(t, "", env{}, "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "query") || !strings.Contains(r.stdout, "TRAIL_DB") {
		t.Fatalf("--help: exit %d, stdout %q", r.code, r.stdout)
	}
	r = run(t, "", env{}, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "trail ") {
		t.Fatalf("version: exit %d, %q", r.code, r.stdout)
	}
}

func TestMissingAndCorruptDatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.db")
	for _, args := range [][]string{{"query"}, {"history", "user:1"}} {
		r := run(t, missing, env{}, args...)
		if r.code != ExitFailure || !strings.Contains(r.stderr, "no Trail database") {
			t.Errorf("%v on a missing file: exit %d, %q", args, r.code, r.stderr)
		}
		if _, err := os.Stat(missing); err == nil {
			t.Fatalf("%v created %s", args, missing)
		}
	}
	corrupt := filepath.Join(dir, "corrupt.db")
	junk := bytes.Repeat([]byte("this is not a database\n"), 300)
	if err := os.WriteFile(corrupt, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"query"},
		{"migrate"},
		{"record", "--actor", "user:1", "--action", "user.delete"},
		{"demo"},
	} {
		r := run(t, corrupt, env{terminal: true}, args...)
		// Bad input, as the README says: the file named is not a database.
		if r.code != ExitUsage || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, corrupt) {
			t.Errorf("%v on a corrupt file: exit %d, stderr %q", args, r.code, r.stderr)
		}
		if got, _ := os.ReadFile(corrupt); !bytes.Equal(got, junk) {
			t.Fatalf("%v wrote to the corrupt file", args)
		}
	}
	// A damaged real database: a valid header, garbage after it.
	db := tempDB(t)
	mustRun(t, db, env{}, "migrate")
	b, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	for i := 100; i < len(b); i++ {
		b[i] = 0xA5
	}
	if err := os.WriteFile(db, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, db, env{}, "query")
	if r.code != ExitUsage || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("damaged database: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestDamagedTableExits2: a database whose header and schema read fine but
// whose events table is damaged opens, and the query that reads the
// damaged page fails with SQLite's SQLITE_CORRUPT: bad input too, exit 2.
func TestDamagedTableExits2(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	mustRun(t, db, env{stdin: eventLines("acme", 0, 50)}, "record", "-")
	st, err := trailsqlite.Open(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	var root, pageSize int64
	if err := st.DB().QueryRow(`SELECT rootpage FROM sqlite_schema WHERE name = 'trail_events'`).Scan(&root); err != nil {
		t.Fatal(err)
	}
	if err := st.DB().QueryRow(`PRAGMA page_size`).Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	st.Close() // checkpoints the WAL into the file
	f, err := os.OpenFile(db, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xA5}, int(pageSize)), (root-1)*pageSize); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r := run(t, db, env{}, "query", "--tenant", "acme")
	if r.code != ExitUsage || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "malformed") {
		t.Errorf("damaged events table: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	r := mustRun(t, db, env{}, "migrate")
	if !strings.Contains(r.stdout, "schema version") {
		t.Fatalf("migrate: %q", r.stdout)
	}
	mustRun(t, db, env{}, "migrate") // again: harmless
	if r := mustRun(t, db, env{}, "query"); r.stdout != "" || !strings.Contains(r.stderr, "no events") {
		t.Fatalf("empty query: %q %q", r.stdout, r.stderr)
	}
}

func TestEnvDB(t *testing.T) { // not parallel: sets the environment
	db := tempDB(t)
	t.Setenv("TRAIL_DB", db)
	mustRun(t, "", env{terminal: true}, "record", "--actor", "system", "--action", "platform.maintenance")
	if _, err := os.Stat(db); err != nil {
		t.Fatalf("TRAIL_DB not used: %v", err)
	}
	if n := len(jsonEvents(t, "")); n != 1 {
		t.Fatalf("%d events through TRAIL_DB", n)
	}
}

// Stored text is attacker-controlled: the table must not pass terminal
// escape sequences through.
func TestTableIsTerminalSafe(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	ev := `{"tenant":"acme","actor":{"type":"user","id":"1","name":"Eve"},"action":"project.update",` +
		`"target":{"type":"project","id":"p1"},"description":"Renamed\u001b[2J project\nto <script>alert(1)</script>\u009b31m\u001b]0;pwned\u0007"}`
	mustRun(t, db, env{stdin: ev}, "record")
	// A name with control characters is refused at write now, but rows
	// stored before that rule may hold one.
	st, err := trailsqlite.Open(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := trail.Event{ID: uuid.Must(uuid.NewV7()), OccurredAt: time.Now().UTC().Truncate(time.Microsecond), Tenant: "acme",
		Actor:  trail.Actor{Type: trail.ActorUser, ID: "2", Name: "Eve\x1b]0;pwned\x07"},
		Action: "project.update", Target: trail.Target{Type: "project", ID: "p1"}, Outcome: trail.OutcomeSuccess, SchemaVersion: trail.SchemaVersion}
	if _, err := st.Append(context.Background(), []trail.Event{old}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	for _, args := range [][]string{{"query"}, {"history", "project:p1"}} {
		r := mustRun(t, db, env{}, args...)
		if strings.ContainsAny(r.stdout, "\x1b\x07\u009b") {
			t.Errorf("%v printed a control sequence: %q", args, r.stdout)
		}
		if !strings.Contains(r.stdout, "<script>") {
			t.Errorf("%v: the text itself should stay readable: %q", args, r.stdout)
		}
	}
}

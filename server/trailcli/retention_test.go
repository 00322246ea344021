package trailcli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailsqlite"
)

// oldEvents returns events of acme and globex recorded over the two years
// before now, one a day each, cycling auth.login, billing.invoice and
// user.update.
func oldEvents() []trail.Event {
	now := time.Now()
	actions := []string{"auth.login", "billing.invoice", "user.update"}
	var evs []trail.Event
	for d := 730; d > 0; d-- {
		for j, tenant := range []string{"acme", "globex"} {
			at := now.Add(-time.Duration(d)*24*time.Hour + time.Duration(j)*time.Minute)
			evs = append(evs, trail.Event{ID: uuid.Must(uuid.NewV7()), OccurredAt: at, RecordedAt: at, Tenant: tenant,
				Actor: trail.Actor{Type: trail.ActorUser, ID: "u1"}, Action: actions[d%3], Outcome: trail.OutcomeSuccess,
				Target: trail.Target{Type: "subscription", ID: fmt.Sprint("s", d%4)}, Description: fmt.Sprint("day ", d), SchemaVersion: 1})
		}
	}
	return evs
}

// seedOld appends oldEvents to the SQLite store db.
func seedOld(t *testing.T, db string) {
	t.Helper()
	ctx := context.Background()
	st, err := trailsqlite.Open(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Append(ctx, oldEvents()); err != nil {
		t.Fatal(err)
	}
}

// sqliteCount answers the count query sql on the SQLite store db.
func sqliteCount(t *testing.T, db, sql string, args ...any) int {
	t.Helper()
	st, err := trailsqlite.Open(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n int
	if err := st.DB().QueryRow(sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func tenantCount(t *testing.T, db, tenant string) int {
	t.Helper()
	return sqliteCount(t, db, `SELECT count(*) FROM trail_events WHERE tenant = ?`, tenant)
}

func TestRetentionEndToEnd(t *testing.T) {
	db := tempDB(t)
	arc := filepath.Join(t.TempDir(), "archive")
	seedOld(t, db)
	mustRun(t, db, env{}, "seal")
	mustRun(t, db, env{}, "retention", "set", "--keep", "365d")
	mustRun(t, db, env{}, "retention", "set", "--action", "auth.*", "--keep", "90d", "--then", "delete")
	mustRun(t, db, env{}, "retention", "set", "--action", "billing.*", "--keep", "7y")
	mustRun(t, db, env{}, "retention", "hold", "--tenant", "globex", "--reason", "case 42", "--min-keep", "2y")

	// Bad input: clear one-line errors, exit 2, nothing changed.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"retention", "set", "--tenant", "acme", "--keep", "30d"}, "say which applies with --tenant acme --action auth.*"},
		{[]string{"retention", "set", "--tenant", "globex", "--action", "user.*", "--keep", "1y"}, "shorter than the legal hold on tenant globex"},
		{[]string{"retention", "set", "--keep", "ten days"}, "want a number and a unit"},
		{[]string{"retention", "set", "--action", "Bad Action", "--keep", "1d"}, "must be an action"},
		{[]string{"retention", "hold", "--tenant", "acme", "--subject", "nobody"}, "must be type:id"},
		{[]string{"retention", "release", "--tenant", "acme"}, "no legal hold on tenant acme"},
	} {
		r := run(t, db, env{}, c.args...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, c.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("trail %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(c.args, " "), r.code, r.stderr, c.want)
		}
	}
	show := mustRun(t, db, env{}, "retention", "show").stdout
	for _, w := range []string{"auth.*", "90d", "delete", "billing.*", "7y", "globex", "case 42"} {
		if !strings.Contains(show, w) {
			t.Errorf("retention show lacks %q:\n%s", w, show)
		}
	}

	acme, globex := tenantCount(t, db, "acme"), tenantCount(t, db, "globex")
	plan := mustRun(t, db, env{}, "retention", "plan").stdout
	if !strings.Contains(plan, "archive tenant=acme date=") || !strings.Contains(plan, "delete  tenant=acme") || strings.Contains(plan, "globex date") {
		t.Fatalf("plan:\n%s", plan)
	}
	if tenantCount(t, db, "acme") != acme {
		t.Fatal("plan deleted events")
	}
	// Run without a target: refused, nothing deleted.
	if r := run(t, db, env{}, "retention", "run"); r.code != ExitUsage || !strings.Contains(r.stderr, "--archive-to") {
		t.Fatalf("run without target: %d %q", r.code, r.stderr)
	}
	out := mustRun(t, db, env{}, "retention", "run", "--archive-to", arc, "--progress")
	if !strings.Contains(out.stderr, "retention [") || !strings.Contains(out.stdout, "Archived ") {
		t.Fatalf("run: %q %q", out.stdout, out.stderr)
	}
	if tenantCount(t, db, "globex") != globex || tenantCount(t, db, "acme") >= acme {
		t.Fatalf("after run: acme %d (was %d), globex %d (was %d)", tenantCount(t, db, "acme"), acme, tenantCount(t, db, "globex"), globex)
	}
	// The store still verifies over hot and purged ranges.
	if r := mustRun(t, db, env{}, "verify"); strings.Contains(r.stdout, "PROBLEM") {
		t.Fatalf("verify: %s", r.stdout)
	}
	// Archived events come back through query --archive with the same filters.
	r := mustRun(t, db, env{}, "query", "--archive", "--archive-to", arc, "--tenant", "acme", "--action", "user.*", "--json", "--limit", "1000")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) < 100 || !strings.Contains(lines[0], `"action":"user.update"`) {
		t.Fatalf("query --archive: %d lines, first %q", len(lines), lines[0])
	}
	if r := mustRun(t, db, env{}, "query", "--archive", "--archive-to", arc, "--tenant", "acme", "--action", "auth.*", "--json"); r.stdout != "" {
		t.Fatalf("deleted auth events came back from the archive: %q", r.stdout[:80])
	}
	list0 := mustRun(t, db, env{}, "archive", "list", "--archive-to", arc).stdout
	list := mustRun(t, db, env{}, "archive", "list", "--archive-to", arc, "--tenant", "acme").stdout
	if !strings.Contains(list, "acme") || strings.Count(list, "\n") < 10 {
		t.Fatalf("archive list:\n%s", list)
	}
	if v := mustRun(t, db, env{}, "archive", "verify", "--archive-to", arc).stdout; !strings.HasPrefix(v, "OK: ") {
		t.Fatalf("archive verify: %q", v)
	}
	restored := mustRun(t, db, env{}, "archive", "restore", "--archive-to", arc, "--tenant", "acme").stdout
	if strings.Count(restored, "\n") < len(lines) {
		t.Fatalf("restore: %d events", strings.Count(restored, "\n"))
	}

	// An archive file edited by hand is caught; nothing is deleted by a run.
	var victim string
	filepath.WalkDir(arc, func(p string, d os.DirEntry, err error) error {
		if victim == "" && strings.HasSuffix(p, ".parquet") {
			victim = p
		}
		return nil
	})
	b, _ := os.ReadFile(victim)
	b[len(b)/3] ^= 0x40
	os.WriteFile(victim, b, 0o600)
	r = run(t, db, env{}, "archive", "verify", "--archive-to", arc)
	if r.code != ExitFailure || !strings.Contains(r.stdout, "PROBLEM") || !strings.Contains(r.stdout, "SHA-256") {
		t.Fatalf("archive verify of an edited file: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := run(t, db, env{}, "query", "--archive", "--archive-to", arc, "--tenant", "acme"); r.code == 0 {
		t.Fatal("query --archive read an edited archive")
	}

	// A foreign manifest (another deployment's key) is refused.
	other := tempDB(t)
	seedOld(t, other)
	mustRun(t, other, env{}, "seal")
	otherArc := filepath.Join(t.TempDir(), "arc2")
	mustRun(t, other, env{}, "retention", "run", "--archive-to", otherArc)
	r = run(t, db, env{}, "archive", "list", "--archive-to", otherArc)
	named := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.code != ExitFailure || strings.Count(r.stdout, "\n") != 1 || len(named) < 2 {
		t.Fatalf("foreign archive listed: %d %q %.300q", r.code, r.stdout, r.stderr)
	}
	for _, l := range named[:len(named)-1] {
		if !strings.Contains(l, "foreign manifest") {
			t.Fatalf("foreign archive: %q", l)
		}
	}
	want := fmt.Sprintf("%d manifests could not be read", len(named)-1)
	if len(named) == 2 {
		want = "1 manifest could not be read"
	}
	if !strings.Contains(named[len(named)-1], want) {
		t.Fatalf("foreign archive: %q", named[len(named)-1])
	}

	// A bad manifest beside a good one (a copy under another name, so
	// "moved or foreign"): the good one is listed, the bad one named, and
	// the command fails.
	var manifest string
	filepath.WalkDir(arc, func(p string, d os.DirEntry, err error) error {
		if manifest == "" && strings.HasSuffix(p, ".manifest.json") {
			manifest = p
		}
		return nil
	})
	b, _ = os.ReadFile(manifest)
	copied := filepath.Join(filepath.Dir(manifest), "2000-01-01_2000-01-02_0123456789abcdef.manifest.json")
	os.WriteFile(copied, b, 0o600)
	r = run(t, db, env{}, "archive", "list", "--archive-to", arc)
	if r.code != ExitFailure || r.stdout != list0 || !strings.Contains(r.stderr, filepath.Base(copied)) || !strings.Contains(r.stderr, "moved or foreign") ||
		!strings.Contains(r.stderr, "1 manifest could not be read") || strings.Count(r.stderr, "\n") != 2 {
		t.Fatalf("archive list with an edited manifest: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// awaitServeRetention waits, a minute at most, until the server stop stops
// has archived into the directory arc (a manifest there) and purged says
// it has purged, then stops it; it fails t if that does not happen or the
// server does not exit 0.
func awaitServeRetention(t *testing.T, arc string, stop func() (int, string), purged func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var manifests int
		filepath.WalkDir(arc, func(p string, d os.DirEntry, err error) error {
			if strings.HasSuffix(p, ".manifest.json") {
				manifests++
			}
			return nil
		})
		if manifests > 0 && purged() {
			break
		}
		if time.Now().After(deadline) {
			code, out := stop()
			t.Fatalf("serve --retention did nothing (exit %d): %s", code, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, out := stop(); code != 0 {
		t.Fatalf("serve exit %d: %s", code, out)
	}
}

// trail serve --retention archives and purges by policy on its schedule.
func TestServeRetention(t *testing.T) {
	db := tempDB(t)
	arc := filepath.Join(t.TempDir(), "archive")
	seedOld(t, db)
	mustRun(t, db, env{}, "seal")
	mustRun(t, db, env{}, "retention", "set", "--keep", "365d")
	before := tenantCount(t, db, "acme")
	_, _, stop := startServe(t, db, "--retention", "--archive-to", arc, "--retention-interval", "1h")
	awaitServeRetention(t, arc, stop, func() bool { return tenantCount(t, db, "acme") < before })
	if v := mustRun(t, db, env{}, "archive", "verify", "--archive-to", arc).stdout; !strings.HasPrefix(v, "OK: ") {
		t.Fatalf("archive verify: %q", v)
	}
}

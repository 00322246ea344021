package trailcli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// seedOldPostgres is seedOld on the PostgreSQL store at dsn (schema trail).
func seedOldPostgres(t *testing.T, dsn string) {
	t.Helper()
	ctx := context.Background()
	st := openPostgres(t, dsn)
	defer st.Close()
	if _, err := st.Append(ctx, oldEvents()); err != nil {
		t.Fatal(err)
	}
}

func pgCount(t *testing.T, dsn, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := mustConn(t, dsn).QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func pgTenantCount(t *testing.T, dsn, tenant string) int {
	t.Helper()
	return pgCount(t, dsn, "SELECT count(*) FROM trail.events WHERE tenant = $1", tenant)
}

func pgPartitions(t *testing.T, dsn string) int {
	t.Helper()
	return pgCount(t, dsn, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'trail.events'::regclass")
}

// TestRetentionPostgres: `trail retention set|show|hold|plan|run|release|unset
// --postgres` end to end, then `trail verify` over the purged log and
// `trail archive verify` over the archive. Once the hold is released, the
// months past retention lose their partitions.
func TestRetentionPostgres(t *testing.T) {
	dsn := freshPostgresDB(t)
	seedOldPostgres(t, dsn)
	key := filepath.Join(t.TempDir(), "signing.key")
	arc := filepath.Join(t.TempDir(), "archive")
	mustRun(t, "", env{}, "keys", "signing", "generate", "--signing-key-file", key)
	pg := []string{"--postgres", dsn}
	trailPG := func(args ...string) result {
		t.Helper()
		return mustRun(t, "", env{}, append(args, pg...)...)
	}
	trailPG("seal", "--signing-key-file", key)
	trailPG("retention", "set", "--keep", "365d")
	trailPG("retention", "set", "--action", "auth.*", "--keep", "90d", "--then", "delete")
	trailPG("retention", "set", "--tenant", "acme", "--action", "billing.*", "--keep", "2y")
	trailPG("retention", "unset", "--tenant", "acme", "--action", "billing.*")
	trailPG("retention", "hold", "--tenant", "globex", "--reason", "case 42", "--min-keep", "1y")

	// Bad input: one line, exit 2, nothing stored.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"retention", "set", "--tenant", "acme", "--keep", "30d"}, "say which applies with --tenant acme --action auth.*"},
		{[]string{"retention", "set", "--tenant", "globex", "--action", "user.*", "--keep", "30d"}, "shorter than the legal hold on tenant globex"},
		{[]string{"retention", "release", "--tenant", "acme"}, "no legal hold on tenant acme"},
		{[]string{"retention", "unset", "--tenant", "acme", "--action", "billing.*"}, "no policy"},
		{[]string{"retention", "run", "--archive-to", arc}, "needs the sealer's key"},
	} {
		r := run(t, "", env{}, append(c.args, pg...)...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, c.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("trail %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(c.args, " "), r.code, r.stderr, c.want)
		}
	}
	show := trailPG("retention", "show").stdout
	for _, w := range []string{"auth.*", "90d", "delete", "1y", "globex", "case 42"} {
		if !strings.Contains(show, w) {
			t.Errorf("retention show lacks %q:\n%s", w, show)
		}
	}
	if strings.Contains(show, "2y") {
		t.Errorf("retention show lists the unset policy:\n%s", show)
	}

	acme, globex := pgTenantCount(t, dsn, "acme"), pgTenantCount(t, dsn, "globex")
	plan := trailPG("retention", "plan").stdout
	if !strings.Contains(plan, "archive tenant=acme date=") || !strings.Contains(plan, "delete  tenant=acme") || strings.Contains(plan, "tenant=globex date") {
		t.Fatalf("plan:\n%s", plan)
	}
	if pgTenantCount(t, dsn, "acme") != acme {
		t.Fatal("plan deleted events")
	}
	out := trailPG("retention", "run", "--archive-to", arc, "--signing-key-file", key, "--progress")
	if !strings.Contains(out.stderr, "retention [") || !strings.Contains(out.stdout, "Archived ") {
		t.Fatalf("run: %q %q", out.stdout, out.stderr)
	}
	if pgTenantCount(t, dsn, "globex") != globex || pgTenantCount(t, dsn, "acme") >= acme {
		t.Fatalf("after run: acme %d (was %d), globex %d (was %d)", pgTenantCount(t, dsn, "acme"), acme, pgTenantCount(t, dsn, "globex"), globex)
	}
	if n := pgCount(t, dsn, "SELECT count(*) FROM trail.seal_purges WHERE log = 'acme' AND archive LIKE 'manifests/%.manifest.json'"); n == 0 {
		t.Fatal("no purge recorded with its archive")
	}

	// Released: globex goes too, and the months before the 365 days (each
	// all acme and globex) lose their partitions.
	parts := pgPartitions(t, dsn)
	trailPG("retention", "release", "--tenant", "globex")
	trailPG("retention", "run", "--archive-to", arc, "--signing-key-file", key)
	if got := pgTenantCount(t, dsn, "globex"); got >= globex {
		t.Fatalf("released globex still has %d of %d events", got, globex)
	}
	got := pgPartitions(t, dsn)
	t.Logf("partitions: %d before the run, %d after", parts, got)
	if got > parts-10 {
		t.Fatalf("%d partitions after the run, %d before: the expired months were not dropped", got, parts)
	}
	if r := trailPG("retention", "plan"); !strings.Contains(r.stdout, "Total: archive 0 events in 0 batches, delete 0") {
		t.Fatalf("plan after the runs:\n%s", r.stdout)
	}

	// The log verifies with the purged events as purged; the archive too.
	v := trailPG("verify", "--signing-key-file", key)
	if !strings.Contains(v.stdout, "OK:") || !strings.Contains(v.stdout, "purged by retention") {
		t.Fatalf("verify: %q", v.stdout)
	}
	if a := mustRun(t, "", env{}, "archive", "verify", "--archive-to", arc, "--no-store", "--signing-key-file", key).stdout; !strings.HasPrefix(a, "OK: ") {
		t.Fatalf("archive verify: %q", a)
	}
}

// trail serve --postgres --retention archives and purges by policy on its
// schedule.
func TestServeRetentionPostgres(t *testing.T) {
	dsn := freshPostgresDB(t)
	seedOldPostgres(t, dsn)
	key := filepath.Join(t.TempDir(), "signing.key")
	arc := filepath.Join(t.TempDir(), "archive")
	mustRun(t, "", env{}, "keys", "signing", "generate", "--signing-key-file", key)
	mustRun(t, "", env{}, "seal", "--postgres", dsn, "--signing-key-file", key)
	mustRun(t, "", env{}, "retention", "set", "--keep", "365d", "--postgres", dsn)
	master := masterKeyFile(t)
	before := pgTenantCount(t, dsn, "acme")
	_, _, stop := startServe(t, tempDB(t), "--postgres", dsn, "--signing-key-file", key, "--master-key-file", master,
		"--retention", "--archive-to", arc, "--retention-interval", "1h")
	awaitServeRetention(t, arc, stop, func() bool { return pgTenantCount(t, dsn, "acme") < before })
	if v := mustRun(t, "", env{}, "verify", "--postgres", dsn, "--signing-key-file", key).stdout; !strings.Contains(v, "OK:") {
		t.Fatalf("verify: %q", v)
	}
}

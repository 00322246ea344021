package trailcli

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/trailhq/trail/server/trailarchive"
	"github.com/trailhq/trail/trailprivacy"
)

// On PostgreSQL (--postgres): `trail verify --archive-to` passes over hot
// and archived events after `retention run`, and names the batch of an
// edited file; `trail archive list|verify|restore` and `trail query
// --archive` read the archive with the deployment's keys, the latter
// revealing protected fields with the PostgreSQL store's privacy keys.
func TestVerifyArchivePostgres(t *testing.T) {
	const email = "pat.archived@example.org"
	dsn := freshPostgresDB(t)
	ctx := context.Background()
	master := masterKeyFile(t)
	// acme's events over two years, with a protected e-mail address,
	// written in their stored form as `trail serve --postgres` would.
	st := openPostgres(t, dsn)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	kms, _, err := trailprivacy.OpenMasterKey(trailprivacy.MasterKeyConfig{File: master})
	if err != nil {
		t.Fatal(err)
	}
	ks, err := trailprivacy.NewSQLKeyStoreIn(db, st.Schema())
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Init(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := trailprivacy.New(ctx, trailprivacy.Config{KMS: kms, Keys: ks})
	if err != nil {
		t.Fatal(err)
	}
	evs := privateEvents(t, p, email, 730, 0, 2, "auth.login", "billing.invoice", "user.update")
	if _, err := st.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	db.Close()
	st.Close()

	key := filepath.Join(t.TempDir(), "signing.key")
	arc := filepath.Join(t.TempDir(), "archive")
	mustRun(t, "", env{}, "keys", "signing", "generate", "--signing-key-file", key)
	pg := []string{"--postgres", dsn, "--signing-key-file", key}
	trailPG := func(args ...string) result {
		t.Helper()
		return mustRun(t, "", env{}, append(args, pg...)...)
	}
	trailPG("seal")
	mustRun(t, "", env{}, "retention", "set", "--keep", "365d", "--postgres", dsn)
	mustRun(t, "", env{}, "retention", "set", "--action", "auth.*", "--keep", "90d", "--then", "delete", "--postgres", dsn)
	// A file per batch (--archive-file-bytes 1): the edit below damages
	// one batch, found beside its manifest.
	out := trailPG("retention", "run", "--archive-to", arc, "--archive-file-bytes", "1").stdout
	m := regexp.MustCompile(`Archived (\d+) events in (\d+) batches`).FindStringSubmatch(out)
	if m == nil || m[1] == "0" {
		t.Fatalf("retention run: %q", out)
	}

	v := trailPG("verify", "--archive-to", arc).stdout
	if !strings.Contains(v, " hot and "+m[1]+" archived events in 1 logs") || !strings.Contains(v, "every archived range is in the archive") {
		t.Fatalf("verify --postgres --archive-to:\n%s", v)
	}
	if v := trailPG("verify").stdout; !strings.Contains(v, "note: "+m[1]+" archived events were not checked") {
		t.Fatalf("verify --postgres without a target:\n%s", v)
	}
	if a := trailPG("archive", "verify", "--archive-to", arc).stdout; a != fmt.Sprintf("OK: %s batches, %s archived events verified against their leaves in the store.\n", m[2], m[1]) {
		t.Fatalf("archive verify --postgres: %q", a)
	}
	list := trailPG("archive", "list", "--archive-to", arc).stdout
	if strings.Count(list, "\nacme ") < 10 {
		t.Fatalf("archive list --postgres:\n%s", list)
	}
	restored := trailPG("archive", "restore", "--archive-to", arc, "--tenant", "acme").stdout
	if strings.Contains(restored, email) || !strings.Contains(restored, "enc:v1:") {
		t.Fatalf("archive restore prints the stored form: %.300s", restored)
	}
	q := mustRun(t, "", env{}, "--master-key-file", master, "query", "--archive", "--archive-to", arc, "--postgres", dsn,
		"--signing-key-file", key, "--tenant", "acme", "--json", "--limit", "1000").stdout
	if strings.Count(q, email) < 10 || strings.Contains(q, "enc:v1:") {
		t.Fatalf("query --archive --postgres does not reveal: %.300s", q)
	}
	// Without a configured key, a PostgreSQL deployment's archive is not
	// checked with a key found beside some SQLite file.
	if r := run(t, "", env{}, "archive", "verify", "--archive-to", arc, "--postgres", dsn); r.code != ExitUsage || !strings.Contains(r.stderr, "--public-key") {
		t.Fatalf("archive verify --postgres without a key: %d %q", r.code, r.stderr)
	}

	// An edited archive file: both verifications name it.
	keys, err := (&trailarchive.Dir{Root: arc}).List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	// A batch's own file, and the manifest naming it (version 3: under
	// manifests/, one per file here).
	i := slices.IndexFunc(keys, func(k string) bool { return strings.HasSuffix(k, ".parquet") })
	manifest := manifestNaming(t, keys, func(k string) []byte { b, _ := os.ReadFile(filepath.Join(arc, filepath.FromSlash(k))); return b }, keys[i])
	data := filepath.Join(arc, filepath.FromSlash(keys[i]))
	b, _ := os.ReadFile(data)
	b[len(b)/2] ^= 0x10
	os.WriteFile(data, b, 0o600)
	r := run(t, "", env{}, append([]string{"verify", "--archive-to", arc}, pg...)...)
	if r.code != ExitFailure || !strings.Contains(r.stdout, `PROBLEM tenant "acme" seq `) || !strings.Contains(r.stdout, "archive file edited or corrupted: batch "+manifest) {
		t.Fatalf("verify --postgres after an edit: exit %d\n%s", r.code, r.stdout)
	}
	if r := run(t, "", env{}, append([]string{"archive", "verify", "--archive-to", arc}, pg...)...); r.code != ExitFailure || !strings.Contains(r.stdout, "SHA-256") {
		t.Fatalf("archive verify --postgres after an edit: exit %d\n%s", r.code, r.stdout)
	}
}

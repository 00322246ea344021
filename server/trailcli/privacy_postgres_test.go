package trailcli

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/trailpgx"
	"github.com/trailhq/trail/trailprivacy"
)

// pgEvents returns the stored (not revealed) events of one action in the
// CLI's PostgreSQL store.
func pgEvents(t *testing.T, dsn, tenant, action string) []trail.Event {
	t.Helper()
	st, err := trailpgx.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	page, err := st.Query(context.Background(), trail.Query{Tenant: tenant, Action: action, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return page.Events
}

// pgDump is every row of the test database, as pg_dump writes it.
func pgDump(t *testing.T, dsn string) []byte {
	t.Helper()
	bin, err := exec.LookPath("pg_dump")
	if err != nil {
		testenv.Unavailable(t, "pg_dump", err)
	}
	out, err := exec.Command(bin, "--data-only", "-d", dsn).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	if !strings.Contains(string(out), "COPY ") {
		t.Fatalf("pg_dump dumped no data: %.300s", out)
	}
	return out
}

func newMasterKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}

// TestPrivacyPostgresCLI: `trail hash`, `trail forget` and `trail keys
// rotate-master` with --postgres work on the data keys `trail serve
// --postgres` wrote (the key table in the events' schema), record their own
// events there, and leave nothing readable at rest.
func TestPrivacyPostgresCLI(t *testing.T) { // not parallel: sets the environment
	dsn := freshPostgresDB(t)
	k1 := newMasterKey(t)

	// No master key on PostgreSQL is an error, never plaintext.
	t.Setenv("TRAIL_MASTER_KEY", "")
	if r := run(t, "", env{}, "hash", "--postgres", dsn, "--tenant", "acme", "x"); r.code != ExitFailure {
		t.Fatalf("hash --postgres without a master key: exit %d %q", r.code, r.stderr)
	}
	t.Setenv("TRAIL_MASTER_KEY", k1)

	// Ingest through the server on PostgreSQL.
	policy := writeFile(t, "policy", "metadata.email hmac\ncontact pii\n")
	base, key, stop := startServe(t, tempDB(t), "--postgres", dsn, "--policy", policy)
	if key == "" {
		t.Fatal("no admin key printed")
	}
	for _, ev := range []string{cliEvent,
		`{"tenant":"acme","actor":{"type":"user","id":"7"},"action":"user.invite","metadata":{"email":"bob@example.org"}}`} {
		if code, b := post(t, base+"/v1/events", key, ev); code/100 != 2 {
			t.Fatalf("ingest: %d %s", code, b)
		}
	}
	if code, _ := stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	noPlaintext(t, "after ingest", pgDump(t, dsn), append(cliSecrets, "bob@example.org")...)

	// hash: the pseudonym the store holds, and the lookup recorded.
	r := mustRun(t, "", env{}, "hash", "--postgres", dsn, "--tenant", "acme", "bob@example.org")
	hm := strings.TrimSpace(r.stdout)
	if !regexp.MustCompile(`^hmac:v1:[A-Za-z0-9_-]{43}$`).MatchString(hm) {
		t.Fatalf("hash printed %q", r.stdout)
	}
	if inv := pgEvents(t, dsn, "acme", "user.invite"); len(inv) != 1 || inv[0].Metadata["email"] != hm {
		t.Fatalf("trail hash --postgres differs from the stored pseudonym: %s vs %+v", hm, inv)
	}
	if n := len(pgEvents(t, dsn, "acme", "privacy.hash")); n != 1 {
		t.Errorf("%d privacy.hash events, want 1", n)
	}

	// forget: bad subjects change nothing; then the key is destroyed in
	// the events' schema and the erasure recorded.
	if r := run(t, "", env{}, "forget", "--postgres", dsn, "--tenant", "acme", "--subject", "user:nobody"); r.code != ExitFailure || !strings.Contains(r.stderr, "nothing to forget") {
		t.Errorf("forget an unknown subject: %d %q", r.code, r.stderr)
	}
	r = mustRun(t, "", env{}, "forget", "--postgres", dsn, "--tenant", "acme", "--subject", "user:42")
	if !strings.Contains(r.stdout, "Forgot user:42") {
		t.Errorf("forget: %q", r.stdout)
	}
	if r := run(t, "", env{}, "forget", "--postgres", dsn, "--tenant", "acme", "--subject", "user:42"); r.code != ExitFailure || !strings.Contains(r.stderr, "already forgotten") {
		t.Errorf("forget twice: %d %q", r.code, r.stderr)
	}
	if fe := pgEvents(t, dsn, "acme", "privacy.forget"); len(fe) != 1 || fe[0].Target.ID != "42" || fe[0].Actor.ID != "cli" {
		t.Errorf("privacy.forget events: %+v", fe)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := trailpgx.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	schema := st.Schema()
	st.Close()
	var tables []string
	rows, err := db.Query(`SELECT table_schema FROM information_schema.tables WHERE table_name = 'trail_subject_keys'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		rows.Scan(&s)
		tables = append(tables, s)
	}
	rows.Close()
	if len(tables) != 1 || tables[0] != schema {
		t.Fatalf("trail_subject_keys in schemas %v, want only the events' schema %q", tables, schema)
	}
	var destroyed int
	if err := db.QueryRow(`SELECT count(*) FROM "` + schema + `".trail_subject_keys WHERE tenant = 'acme' AND subject = 'user:42' AND destroyed_at IS NOT NULL AND wrapped_key IS NULL`).Scan(&destroyed); err != nil || destroyed != 1 {
		t.Fatalf("destroyed keys of user:42: %d %v", destroyed, err)
	}
	reveal := func(kmsKey string) trail.Event {
		t.Helper()
		raw, _ := base64.StdEncoding.DecodeString(kmsKey)
		kms, err := trailprivacy.NewLocalKMS(raw)
		if err != nil {
			t.Fatal(err)
		}
		ks, err := trailprivacy.NewSQLKeyStoreIn(db, schema)
		if err != nil {
			t.Fatal(err)
		}
		p, err := trailprivacy.New(context.Background(), trailprivacy.Config{KMS: kms, Keys: ks})
		if err != nil {
			t.Fatal(err)
		}
		evs := pgEvents(t, dsn, "acme", "user.update")
		if len(evs) != 1 {
			t.Fatalf("%d user.update events", len(evs))
		}
		if err := p.Reveal(context.Background(), &evs[0]); err != nil {
			t.Fatal(err)
		}
		return evs[0]
	}
	if ev := reveal(k1); ev.Actor.Email != trailprivacy.Erased || ev.Actor.Name != trailprivacy.Erased {
		t.Errorf("after forget the actor reads %q %q, want %q", ev.Actor.Name, ev.Actor.Email, trailprivacy.Erased)
	}

	// rotate-master: every live key re-wrapped, events untouched, the old
	// key refused, pseudonyms unchanged.
	before, _ := json.Marshal(pgEvents(t, dsn, "acme", ""))
	k2 := newMasterKey(t)
	r = mustRun(t, "", env{}, "keys", "rotate-master", "--postgres", dsn, "--new-key-file", writeFile(t, "new.key", k2+"\n"))
	if !strings.Contains(r.stdout, "Re-wrapped") || !strings.Contains(r.stdout, "start Trail with the new key") {
		t.Errorf("rotate-master: %q", r.stdout)
	}
	if after, _ := json.Marshal(pgEvents(t, dsn, "acme", "")); string(after) != string(before) {
		t.Error("rotation changed stored events")
	}
	if r := run(t, "", env{}, "hash", "--postgres", dsn, "--tenant", "acme", "bob@example.org"); r.code != ExitFailure || !strings.Contains(r.stderr, "wrong master key") {
		t.Errorf("the old key still opens the data: %d %q", r.code, r.stderr)
	}
	t.Setenv("TRAIL_MASTER_KEY", k2)
	if r := mustRun(t, "", env{}, "hash", "--postgres", dsn, "--tenant", "acme", "bob@example.org"); strings.TrimSpace(r.stdout) != hm {
		t.Errorf("the pseudonym changed with the master key: %q, was %q", r.stdout, hm)
	}
	if ev := reveal(k2); ev.Actor.Email != trailprivacy.Erased {
		t.Errorf("after rotation the forgotten actor reads %q", ev.Actor.Email)
	}
	noPlaintext(t, "at the end", pgDump(t, dsn), append(cliSecrets, "bob@example.org")...)
}

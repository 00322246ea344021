package trailcli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/internal/demo"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailprivacy"
)

const (
	cliEmail    = "alice.cli@example.org"
	cliPassword = "S3cret-Passw0rd!"
	cliOldPass  = "hunter2-old-pass"
	cliToken    = "tok_live_ABCDEF123456"
	cliName     = "Alice Example"
	cliIP       = "198.51.100.7"
)

var cliSecrets = []string{cliEmail, cliPassword, cliOldPass, cliToken, cliName, cliIP}

var cliEvent = fmt.Sprintf(`{"tenant":"acme","actor":{"type":"user","id":"42","name":%q,"email":%q,"ip":%q},"action":"user.update","target":{"type":"user","id":"42"},"description":"Changed password","changes":[{"field":"password","old":%q,"new":%q}],"metadata":{"api_token":%q,"contact":%q}}`,
	cliName, cliEmail, cliIP, cliOldPass, cliPassword, cliToken, cliEmail)

// dbBytes is everything at rest of the SQLite database db.
func dbBytes(t *testing.T, db string) []byte {
	t.Helper()
	var all []byte
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		b, err := os.ReadFile(db + suffix)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	if len(all) == 0 {
		t.Fatalf("no bytes in %s", db)
	}
	return all
}

// noEmails fails t if the SQLite file db (or its WAL) holds an e-mail
// address in the clear: any of the demo's people, the given ones, or
// anything shaped like one at a tenant's example domain. The platform's
// domain is matched by name only: "trail.example" is also the default
// checkpoint origin, stored in clear in every signed note, and a binary
// byte 0x40 ('@') before it (a tree size of 64) would look like an address.
// Each file is searched on its own, and a hit is reported with its place.
func noEmails(t *testing.T, when, db string, extra ...string) {
	t.Helper()
	d, err := demo.Generate(demo.Config{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	known := append([]string(nil), extra...)
	for _, u := range d.Staff {
		known = append(known, u.Email)
	}
	for _, tn := range d.Tenants {
		for _, u := range tn.Users {
			known = append(known, u.Email)
		}
	}
	shaped := regexp.MustCompile(`[a-z0-9._-]+@([a-z0-9-]+)\.(example|org)`)
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(db + suffix)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		report := func(lo, hi int) {
			t.Errorf("%s: e-mail address %q readable in %s at offset %d: %q", when, b[lo:hi], filepath.Base(db+suffix), lo,
				b[max(0, lo-32):min(len(b), hi+32)])
		}
		for _, e := range known {
			if i := bytes.Index(b, []byte(e)); i >= 0 {
				report(i, i+len(e))
			}
		}
		for _, m := range shaped.FindAllSubmatchIndex(b, -1) {
			if string(b[m[2]:m[3]]) != "trail" {
				report(m[0], m[1])
				break
			}
		}
	}
}

func noPlaintext(t *testing.T, when string, b []byte, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("%s: %q readable", when, s)
		}
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func eventsByAction(evs []trail.Event, action string) []trail.Event {
	var out []trail.Event
	for _, ev := range evs {
		if ev.Action == action {
			out = append(out, ev)
		}
	}
	return out
}

// TestPrivacyCLI: `trail record` stores an event with an e-mail address, a
// password and a token unreadable in the SQLite file; `trail query` and
// `trail history` reveal what may be shown; `trail forget` erases the
// subject while its events are still listed, and is itself recorded.
func TestPrivacyCLI(t *testing.T) {
	t.Setenv("TRAIL_MASTER_KEY", "")
	db := tempDB(t)
	policy := writeFile(t, "policy", "contact pii\n")
	r := mustRun(t, db, env{stdin: cliEvent}, "--policy", policy, "record", "-")
	if !strings.Contains(r.stderr, "created master key file "+db+".master.key") {
		t.Errorf("no notice of the created key file: %q", r.stderr)
	}
	fi, err := os.Stat(db + ".master.key")
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	noPlaintext(t, "after record", dbBytes(t, db), cliSecrets...)

	evs := jsonEvents(t, db, "--tenant", "acme", "--action", "user.update")
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	ev := evs[0]
	if ev.Actor.Email != cliEmail || ev.Actor.Name != cliName || ev.Actor.IP != cliIP {
		t.Errorf("query does not reveal the actor: %+v", ev.Actor)
	}
	if len(ev.Changes) != 1 || !ev.Changes[0].Redacted || ev.Changes[0].New != nil {
		t.Errorf("password change: %+v", ev.Changes)
	}
	if ev.Metadata["api_token"] != trailprivacy.Redacted || ev.Metadata["contact"] != cliEmail {
		t.Errorf("metadata: %v", ev.Metadata)
	}
	if h := mustRun(t, db, env{}, "history", "user:42", "--tenant", "acme"); !strings.Contains(h.stdout, cliName) && !strings.Contains(h.stdout, "user:42") {
		t.Errorf("history: %q", h.stdout)
	}

	// Forget: bad input and unknown subjects change nothing.
	before := dbBytes(t, db)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"forget", "--tenant", "acme", "--subject", "user:999"}, ExitFailure, "nothing to forget"},
		{[]string{"forget", "--tenant", "globex", "--subject", "user:42"}, ExitFailure, "nothing to forget"},
		{[]string{"forget", "--tenant", "acme", "--subject", "User 42"}, ExitUsage, "--subject"},
		{[]string{"forget", "--tenant", "acme"}, ExitUsage, "--subject"},
		{[]string{"forget", "--tenant", "a b", "--subject", "user:42"}, ExitUsage, "--tenant"},
	} {
		r := run(t, db, env{}, c.args...)
		if r.code != c.code || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, r.code, r.stderr, c.code, c.want)
		}
	}
	if !bytes.Equal(before, dbBytes(t, db)) {
		t.Error("a refused forget changed the database")
	}

	r = mustRun(t, db, env{}, "forget", "--tenant", "acme", "--subject", "user:42")
	if !strings.Contains(r.stdout, "Forgot user:42") {
		t.Errorf("forget: %q", r.stdout)
	}
	if r := run(t, db, env{}, "forget", "--tenant", "acme", "--subject", "user:42"); r.code != ExitFailure || !strings.Contains(r.stderr, "already forgotten") {
		t.Errorf("forget twice: %d %q", r.code, r.stderr)
	}
	noPlaintext(t, "after forget", dbBytes(t, db), cliSecrets...)

	all := jsonEvents(t, db, "--tenant", "acme")
	upd := eventsByAction(all, "user.update")
	if len(upd) != 1 {
		t.Fatalf("the subject's event is gone: %d", len(upd))
	}
	if a := upd[0].Actor; a.Email != trailprivacy.Erased || a.Name != trailprivacy.Erased || a.IP != trailprivacy.Erased || a.ID != "42" {
		t.Errorf("after forget the actor reads %+v", a)
	}
	if upd[0].Metadata["contact"] != trailprivacy.Erased {
		t.Errorf("pii metadata after forget: %v", upd[0].Metadata)
	}
	fe := eventsByAction(all, "privacy.forget")
	if len(fe) != 1 || fe[0].Target != (trail.Target{Type: "user", ID: "42"}) || fe[0].Actor.Type != trail.ActorSystem {
		t.Fatalf("the erasure event: %+v", fe)
	}
	b, _ := json.Marshal(all)
	noPlaintext(t, "query after forget", b, cliSecrets...)
	h := mustRun(t, db, env{}, "history", "user:42", "--tenant", "acme", "--json")
	if !strings.Contains(h.stdout, trailprivacy.Erased) {
		t.Errorf("history after forget: %q", h.stdout)
	}

	// The key row is a tombstone: no key material left.
	st, err := trailsqlite.Open(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var live, dead int
	if err := st.DB().QueryRow(`SELECT count(*) FILTER (WHERE wrapped_key IS NOT NULL), count(*) FILTER (WHERE wrapped_key IS NULL)
		FROM trail_subject_keys WHERE tenant = 'acme' AND subject = 'user:42'`).Scan(&live, &dead); err != nil || live != 0 || dead != 1 {
		t.Fatalf("key rows of user:42: live %d, destroyed %d, %v", live, dead, err)
	}
}

// TestHashCLI: `trail hash` prints the pseudonym stored for a field the
// policy hashes, and records the lookup without the value.
func TestHashCLI(t *testing.T) {
	t.Setenv("TRAIL_MASTER_KEY", "")
	db := tempDB(t)
	policy := writeFile(t, "policy.json", `{"rules":[{"match":"metadata.email","action":"hmac"}]}`)
	mustRun(t, db, env{stdin: `{"tenant":"acme","actor":{"type":"user","id":"7"},"action":"user.invite","metadata":{"email":"bob@example.org"}}`},
		"--policy", policy, "record", "-")
	noPlaintext(t, "after record", dbBytes(t, db), "bob@example.org")
	r := mustRun(t, db, env{}, "hash", "--tenant", "acme", "bob@example.org")
	hm := strings.TrimSpace(r.stdout)
	if !regexp.MustCompile(`^hmac:v1:[A-Za-z0-9_-]{43}$`).MatchString(hm) {
		t.Fatalf("hash printed %q", r.stdout)
	}
	evs := jsonEvents(t, db, "--tenant", "acme")
	if inv := eventsByAction(evs, "user.invite"); len(inv) != 1 || inv[0].Metadata["email"] != hm {
		t.Errorf("the stored pseudonym differs from trail hash: %v vs %s", inv, hm)
	}
	if other := mustRun(t, db, env{}, "hash", "--tenant", "globex", "bob@example.org"); strings.TrimSpace(other.stdout) == hm {
		t.Error("pseudonyms are the same in two tenants")
	}
	lookups := eventsByAction(evs, "privacy.hash")
	if len(lookups) != 1 {
		t.Fatalf("%d privacy.hash events", len(lookups))
	}
	b, _ := json.Marshal(lookups)
	noPlaintext(t, "the lookup event", b, "bob@example.org")

	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"hash", "bob@example.org"}, ExitUsage},
		{[]string{"hash", "--tenant", "acme", ""}, ExitUsage},
		{[]string{"hash", "--tenant", "Not A Tenant", "x"}, ExitUsage},
	} {
		if r := run(t, db, env{}, c.args...); r.code != c.code || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: exit %d %q", c.args, r.code, r.stderr)
		}
	}
	if r := run(t, filepath.Join(t.TempDir(), "none.db"), env{}, "hash", "--tenant", "acme", "x"); r.code != ExitFailure {
		t.Errorf("hash without a database: %d %q", r.code, r.stderr)
	}
}

// TestPrivacyBadConfig: a malformed policy or an unknown action is bad
// usage and stores nothing; a wrong, malformed or missing master key is a
// clear error, never plaintext.
func TestPrivacyBadConfig(t *testing.T) {
	t.Setenv("TRAIL_MASTER_KEY", "")
	db := tempDB(t)
	mustRun(t, db, env{stdin: cliEvent}, "record", "-")
	count := func() int { return len(jsonEvents(t, db)) }
	n := count()

	for _, c := range []struct {
		name, policy, want string
	}{
		{"unknown action", "password frobnicate\n", "line 1: unknown action: want omit, redact, hmac, pii or keep"},
		{"malformed rule", "password\n", "line 1: not a policy rule"},
		{"empty segment", "metadata..x pii\n", "line 1: pattern has an empty path segment"},
		{"bad JSON action", `{"rules":[{"match":"x","action":"shred"}]}`, "rules[0]: unknown action"},
	} {
		p := writeFile(t, "policy", c.policy)
		r := run(t, db, env{stdin: cliEvent}, "--policy", p, "record", "-")
		if r.code != ExitUsage || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, c.want) || !strings.Contains(r.stderr, "--policy") {
			t.Errorf("%s: exit %d, stderr %q", c.name, r.code, r.stderr)
		}
	}
	if r := run(t, db, env{}, "--policy", filepath.Join(t.TempDir(), "missing"), "query"); r.code != ExitUsage {
		t.Errorf("missing policy file: %d %q", r.code, r.stderr)
	}
	fresh := tempDB(t)
	if r := run(t, fresh, env{stdin: cliEvent}, "--policy", writeFile(t, "bad", "x shred\n"), "record", "-"); r.code != ExitUsage {
		t.Errorf("bad policy on a new database: %d %q", r.code, r.stderr)
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Errorf("a bad policy left a database behind: %v", err)
	}

	other := make([]byte, 32)
	rand.Read(other)
	t.Setenv("TRAIL_MASTER_KEY", base64.StdEncoding.EncodeToString(other))
	for _, args := range [][]string{{"query"}, {"record", "-"}, {"forget", "--tenant", "acme", "--subject", "user:42"}, {"hash", "--tenant", "acme", "x"}} {
		r := run(t, db, env{stdin: cliEvent}, args...)
		if r.code != ExitFailure || !strings.Contains(r.stderr, "wrong master key") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v with a wrong key: exit %d, stderr %q", args, r.code, r.stderr)
		}
		if r.stdout != "" {
			t.Errorf("%v with a wrong key printed %q", args, r.stdout)
		}
	}
	t.Setenv("TRAIL_MASTER_KEY", "not-a-key")
	if r := run(t, db, env{}, "query"); r.code != ExitFailure || !strings.Contains(r.stderr, "TRAIL_MASTER_KEY") {
		t.Errorf("malformed key: %d %q", r.code, r.stderr)
	}
	t.Setenv("TRAIL_MASTER_KEY", "")
	if r := run(t, db, env{}, "--master-key-file", filepath.Join(t.TempDir(), "nope.key"), "query"); r.code != ExitFailure || !strings.Contains(r.stderr, "nope.key") {
		t.Errorf("missing key file: %d %q", r.code, r.stderr)
	}
	if got := count(); got != n {
		t.Errorf("bad configuration stored events: %d, want %d", got, n)
	}
	// The configured key file that is the right one works.
	if r := mustRun(t, db, env{}, "--master-key-file", db+".master.key", "query", "--json"); !strings.Contains(r.stdout, cliEmail) {
		t.Errorf("the right key file does not reveal: %q", r.stdout)
	}
}

// TestRotateMasterCLI: rotation re-wraps the data keys; the old key no
// longer opens the data, the new one does, and the events are unchanged.
func TestRotateMasterCLI(t *testing.T) {
	t.Setenv("TRAIL_MASTER_KEY", "")
	db := tempDB(t)
	mustRun(t, db, env{stdin: cliEvent}, "record", "-")
	oldKey, err := os.ReadFile(db + ".master.key")
	if err != nil {
		t.Fatal(err)
	}
	stored := func() string {
		st, err := trailsqlite.Open(context.Background(), db, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		p, err := st.Query(context.Background(), trail.Query{AllTenants: true, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(p.Events)
		return string(b)
	}
	before := stored()
	k := make([]byte, 32)
	rand.Read(k)
	newFile := writeFile(t, "new.key", base64.StdEncoding.EncodeToString(k)+"\n")
	if r := run(t, db, env{}, "keys", "rotate-master", "--new-key-file", db+".master.key"); r.code != ExitUsage {
		t.Errorf("rotating to the same key: %d %q", r.code, r.stderr)
	}
	if r := run(t, db, env{}, "keys", "rotate-master", "--new-key-file", filepath.Join(t.TempDir(), "missing")); r.code != ExitUsage {
		t.Errorf("missing new key: %d %q", r.code, r.stderr)
	}
	r := mustRun(t, db, env{}, "keys", "rotate-master", "--new-key-file", newFile)
	if !strings.Contains(r.stdout, "Re-wrapped") {
		t.Errorf("rotate: %q", r.stdout)
	}
	if stored() != before {
		t.Error("rotation changed stored events")
	}
	if got := jsonEvents(t, db, "--action", "user.update"); len(got) != 1 || got[0].Actor.Email != cliEmail {
		t.Fatalf("after rotation: %+v", got)
	}
	t.Setenv("TRAIL_MASTER_KEY", strings.TrimSpace(string(oldKey)))
	if r := run(t, db, env{}, "query"); r.code != ExitFailure || !strings.Contains(r.stderr, "wrong master key") {
		t.Errorf("the old key still opens the data: %d %q", r.code, r.stderr)
	}
}

// TestDemoStoresNoSecrets: the demo's careless events (a password in a diff,
// API tokens and e-mail addresses in metadata) are stored unreadable, and
// the CLI still shows them revealed.
func TestDemoStoresNoSecrets(t *testing.T) {
	t.Setenv("TRAIL_MASTER_KEY", "")
	db := tempDB(t)
	mustRun(t, db, env{}, "demo", "--events", "400")
	at := dbBytes(t, db)
	noPlaintext(t, "demo", at, "correct-horse-battery-staple", "Spring2024!")
	if m := regexp.MustCompile(`trl_live_[0-9a-f]{8,}`).Find(at); m != nil {
		t.Errorf("demo: API token %q readable", m) // a 4-digit key_prefix may show
	}
	noEmails(t, "demo", db)
	careless := 0
	for _, ev := range jsonEvents(t, db, "--action", "api_key.create") {
		if _, ok := ev.Metadata["token"]; !ok {
			continue
		}
		careless++
		if ev.Metadata["token"] != trailprivacy.Redacted || !strings.Contains(fmt.Sprint(ev.Metadata["created_by"]), "@") {
			t.Errorf("demo event as shown: %v", ev.Metadata)
		}
	}
	if careless == 0 {
		t.Fatal("no api_key.create event with a token: the test checks nothing")
	}
}

func post(t *testing.T, url, key, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestServeDemoPrivacy: `trail serve --demo` seeds the demo through the
// privacy layer, ingests through it, reveals on reads, and serves the
// privacy endpoints; the data at rest holds none of the secrets.
func TestServeDemoPrivacy(t *testing.T) {
	t.Setenv("TRAIL_MASTER_KEY", "")
	db := filepath.Join(t.TempDir(), "trail.db")
	// The demo's policy, and the test event's metadata.contact as pii.
	policy := writeFile(t, "policy", DemoPolicy+"contact pii\n")
	base, key, stop := startServe(t, db, "--demo", "--policy", policy)
	if key == "" {
		t.Fatal("no admin key printed")
	}
	if code, b := post(t, base+"/v1/events", key, cliEvent); code/100 != 2 {
		t.Fatalf("ingest: %d %s", code, b)
	}
	code, body := get(t, base+"/v1/events?tenant=acme&action=user.update&actor=user:42", key)
	if code != 200 || !bytes.Contains(body, []byte(cliEmail)) || bytes.Contains(body, []byte(cliToken)) {
		t.Fatalf("read: %d %.400s", code, body)
	}
	code, body = post(t, base+"/v1/hash", key, `{"tenant":"acme","value":"x"}`)
	if code != 200 || !bytes.Contains(body, []byte(`"hmac:v1:`)) {
		t.Fatalf("hash: %d %s", code, body)
	}
	if code, body = post(t, base+"/v1/forget", key, `{"tenant":"acme","subject":"user:42"}`); code != 200 {
		t.Fatalf("forget: %d %s", code, body)
	}
	code, body = get(t, base+"/v1/events?tenant=acme&action=user.update&actor=user:42", key)
	if code != 200 || !bytes.Contains(body, []byte(trailprivacy.Erased)) || bytes.Contains(body, []byte(cliEmail)) {
		t.Fatalf("read after forget: %d %.400s", code, body)
	}
	if exit, out := stop(); exit != 0 {
		t.Fatalf("exit %d: %s", exit, out)
	}
	at := dbBytes(t, db)
	noPlaintext(t, "serve --demo", at, append(cliSecrets, "correct-horse-battery-staple", "Spring2024!")...)
	noEmails(t, "serve --demo", db, cliEmail)
}

package trailserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailpgx"
	"github.com/trailhq/trail/trailprivacy"
)

// Secrets an event carries into the API; none may be stored readable.
const (
	knownEmail    = "alice.secret@example.org"
	knownPassword = "Tr0ub4dor&3-horse"
	knownToken    = "tok_live_9f8e7d6c5b4a3210"
	knownName     = "Alice Zebedee"
	knownIP       = "198.51.100.77"
)

var knownSecrets = []string{knownEmail, knownPassword, knownToken, knownName, knownIP}

// privacyFor opens the privacy layer over the key table beside the store's
// events: the same SQLite file, or the store's PostgreSQL schema. storage
// returns what is at rest: the SQLite files' bytes, or a pg_dump of the
// schema.
func privacyFor(t *testing.T, st trail.Store) (p *trailprivacy.Privacy, storage func() []byte) {
	t.Helper()
	ctx := context.Background()
	kms, err := trailprivacy.NewLocalKMS(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	var ks *trailprivacy.SQLKeyStore
	switch s := st.(type) {
	case *trailsqlite.Store:
		ks = trailprivacy.NewSQLKeyStore(s.DB())
		storage = func() []byte {
			var all []byte
			for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
				b, err := os.ReadFile(s.Path() + suffix)
				if err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
				all = append(all, b...)
			}
			if len(all) == 0 {
				t.Fatal("no database bytes read")
			}
			return all
		}
	case *trailpgx.Store:
		if ks, err = trailprivacy.NewSQLKeyStoreIn(pgDB, s.Schema()); err != nil {
			t.Fatal(err)
		}
		storage = func() []byte {
			bin, err := exec.LookPath("pg_dump")
			if err != nil {
				testenv.Unavailable(t, "pg_dump", err)
			}
			out, err := exec.Command(bin, "--schema="+s.Schema(), "--data-only", "-d", testenv.PostgresDSN()).Output()
			if err != nil {
				t.Fatalf("pg_dump: %v", err)
			}
			if !bytes.Contains(out, []byte("COPY ")) {
				t.Fatalf("pg_dump dumped no data: %.300s", out)
			}
			return out
		}
	default:
		t.Fatalf("no privacy layer for %T", st)
	}
	if err := ks.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if p, err = trailprivacy.New(ctx, trailprivacy.Config{KMS: kms, Keys: ks}); err != nil {
		t.Fatal(err)
	}
	return p, storage
}

func assertNoPlaintext(t *testing.T, when string, stored []byte, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if bytes.Contains(stored, []byte(s)) {
			t.Errorf("%s: %q is stored in plaintext", when, s)
		}
	}
}

// TestPrivacyEndToEnd ingests an event carrying an e-mail address, a
// password and a token through the API, on SQLite and PostgreSQL: nothing
// of it is readable at rest, reads reveal it, and after POST /v1/forget the
// subject's fields read "[erased]" while its events are still listed.
func TestPrivacyEndToEnd(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		var p *trailprivacy.Privacy
		var storage func() []byte
		f := newFixture(t, b, func(c *trailserver.Config) {
			p, storage = privacyFor(t, c.Store)
			c.Transform, c.Reveal = p, p
			c.Privacy = &trailserver.PrivacyConfig{Admin: p, HashRate: 1, HashBurst: 3}
		})
		ev := fmt.Sprintf(`{"tenant":"acme","actor":{"type":"user","id":"42","name":%q,"email":%q,"ip":%q},
			"action":"user.update","target":{"type":"user","id":"42","name":%q},
			"changes":[{"field":"password","old":"old-pass-1","new":%q},{"field":"plan","old":"free","new":"pro"}],
			"metadata":{"api_token":%q,"source_ip":"10.0.0.1"}}`,
			knownName, knownEmail, knownIP, knownName, knownPassword, knownToken)
		if r := f.do("POST", "/v1/events", "ingestA", []byte(ev)); r.status/100 != 2 {
			t.Fatalf("ingest: %d %s", r.status, clip(r.body))
		}
		assertNoPlaintext(t, "after ingest", storage(), append(knownSecrets, "old-pass-1")...)

		// Reads reveal: the name and e-mail are back, the secrets stay out.
		r := f.do("GET", "/v1/events?tenant=acme&action=user.update", "readerA", nil)
		if r.status != 200 || !bytes.Contains(r.body, []byte(knownEmail)) || !bytes.Contains(r.body, []byte(knownName)) {
			t.Fatalf("read: %d %s", r.status, clip(r.body))
		}
		assertNoPlaintext(t, "read", r.body, knownPassword, knownToken, "old-pass-1")
		if !bytes.Contains(r.body, []byte(`"redacted":true`)) || !bytes.Contains(r.body, []byte(`"plan"`)) {
			t.Errorf("read: the password change should be redacted, the plan kept: %s", clip(r.body))
		}

		// Pseudonym lookup: admin only, scoped, recorded, rate-limited.
		r = f.do("POST", "/v1/hash", "adminA", []byte(`{"tenant":"acme","value":"bob@example.org"}`))
		var h struct{ HMAC string }
		if r.status != 200 || json.Unmarshal(r.body, &h) != nil || h.HMAC != p.HashFor("acme", "bob@example.org") {
			t.Fatalf("hash: %d %s", r.status, clip(r.body))
		}
		for _, c := range []struct {
			key, body string
			status    int
			field     string
		}{
			{"readerA", `{"tenant":"acme","value":"x"}`, 403, ""},
			{"adminA", `{"tenant":"globex","value":"x"}`, 403, "tenant"},
			{"adminA", `{"tenant":"acme","value":""}`, 400, "value"},
			{"adminA", `{"tenant":"acme","value":"x","extra":1}`, 400, ""},
		} {
			r := f.do("POST", "/v1/hash", c.key, []byte(c.body))
			if r.status != c.status {
				t.Errorf("hash %s as %s: %d %s, want %d", c.body, c.key, r.status, clip(r.body), c.status)
				continue
			}
			if p := r.problem(t); c.field != "" && p.Field != c.field {
				t.Errorf("hash %s: problem field %q, want %q", c.body, p.Field, c.field)
			}
		}
		// Only answered lookups spend the burst of 3: one above, two more
		// pass, then 429.
		limited := false
		for range 3 {
			if r := f.do("POST", "/v1/hash", "adminA", []byte(`{"tenant":"acme","value":"y"}`)); r.status == 429 {
				limited = true
				break
			}
		}
		if !limited {
			t.Error("hash: never rate-limited")
		}
		r = f.do("GET", "/v1/events?tenant=acme&action=privacy.hash", "readerA", nil)
		if r.status != 200 || !bytes.Contains(r.body, []byte(`"privacy.hash"`)) || bytes.Contains(r.body, []byte("bob@example.org")) {
			t.Fatalf("the lookup is not recorded, or records the value: %s", clip(r.body))
		}

		// Forget: bad input first, which changes nothing.
		for _, c := range []struct {
			key, body string
			status    int
		}{
			{"adminA", `{"tenant":"acme","subject":"user:nobody"}`, 404},
			{"adminA", `{"tenant":"acme","subject":"User 42"}`, 400},
			{"adminA", `{"tenant":"globex","subject":"user:42"}`, 403},
			{"readerA", `{"tenant":"acme","subject":"user:42"}`, 403},
		} {
			if r := f.do("POST", "/v1/forget", c.key, []byte(c.body)); r.status != c.status {
				t.Errorf("forget %s as %s: %d %s, want %d", c.body, c.key, r.status, clip(r.body), c.status)
			} else {
				r.problem(t)
			}
		}
		if r := f.do("GET", "/v1/events?tenant=acme&action=user.update", "readerA", nil); !bytes.Contains(r.body, []byte(knownEmail)) {
			t.Fatalf("a refused forget changed something: %s", clip(r.body))
		}

		r = f.do("POST", "/v1/forget", "adminA", []byte(`{"tenant":"acme","subject":"user:42"}`))
		var fr trailserver.ForgetResult
		if r.status != 200 || json.Unmarshal(r.body, &fr) != nil || fr.Subject != "user:42" || fr.EventID == "" {
			t.Fatalf("forget: %d %s", r.status, clip(r.body))
		}
		if r := f.do("POST", "/v1/forget", "adminA", []byte(`{"tenant":"acme","subject":"user:42"}`)); r.status != 409 {
			t.Errorf("forget twice: %d %s", r.status, clip(r.body))
		}
		assertNoPlaintext(t, "after forget", storage(), append(knownSecrets, "old-pass-1")...)

		// Every read path shows the subject's fields erased, and the event
		// is still there.
		for _, path := range []string{
			"/v1/events?tenant=acme&action=user.update",
			"/v1/objects/user/42/history?tenant=acme",
			"/v1/export?tenant=acme&format=jsonl&action=user.update",
			"/v1/export?tenant=acme&format=csv&action=user.update",
		} {
			r := f.do("GET", path, "readerA", nil)
			if r.status != 200 || !bytes.Contains(r.body, []byte(trailprivacy.Erased)) || !bytes.Contains(r.body, []byte("user.update")) {
				t.Errorf("%s after forget: %d %s", path, r.status, clip(r.body))
			}
			assertNoPlaintext(t, path, r.body, knownSecrets...)
		}
		r = f.do("GET", "/v1/events/"+fr.EventID, "readerA", nil)
		if r.status != 200 || !bytes.Contains(r.body, []byte(`"privacy.forget"`)) || !bytes.Contains(r.body, []byte(`"id":"42"`)) {
			t.Errorf("the erasure event: %d %s", r.status, clip(r.body))
		}
	})
}

// Without the privacy layer, the privacy endpoints say so.
func TestPrivacyEndpointsOff(t *testing.T) {
	f := newFixture(t, backends[0], nil)
	for _, path := range []string{"/v1/hash", "/v1/forget"} {
		r := f.do("POST", path, "admin", []byte(`{"tenant":"acme","value":"x"}`))
		if r.status != 404 || !strings.Contains(r.problem(t).Detail, "privacy") {
			t.Errorf("%s: %d %s", path, r.status, clip(r.body))
		}
	}
}

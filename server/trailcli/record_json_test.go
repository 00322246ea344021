package trailcli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestRecordStdinRefusesWhatJSONHides: `trail record -` refuses what
// encoding/json would let through silently (a member given twice, the last
// one winning, also as names that differ only in letter case; an explicit nil UUID id
// or zero occurred_at, both read as "fill in") and personal fields that are
// wrong as plaintext: one line on stderr naming the line and the field,
// exit 2, nothing written and no database created.
func TestRecordStdinRefusesWhatJSONHides(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	mustRun(t, db, env{terminal: true}, "record", "--tenant", "acme", "--actor", "user:1", "--action", "user.create")
	const good = `{"tenant":"acme","actor":{"type":"user","id":"1"},"action":"user.update"}`
	for _, tc := range []struct{ name, stdin, want string }{
		{"tenant twice", good + "\n" + `{"tenant":"acme","tenant":"globex","actor":{"type":"user","id":"1"},"action":"user.update"}`, `line 2: invalid event: tenant: duplicate key "tenant"`},
		{"actor id twice", `{"tenant":"acme","actor":{"type":"user","id":"1","id":"2"},"action":"user.update"}`, "line 1: invalid event: actor.id: duplicate"},
		{"metadata key twice", `{"tenant":"acme","actor":{"type":"user","id":"1"},"action":"user.update","metadata":{"role":"user","role":"admin"}}`, "metadata.role: duplicate"},
		{"array element, tenant twice", "[" + good + `,{"tenant":"acme","tenant":"globex","actor":{"type":"user","id":"1"},"action":"user.update"}]`, "line 1, element 1: invalid event: tenant: duplicate"},
		{"pretty-printed, action twice", "{\n  \"tenant\": \"acme\",\n  \"actor\": {\"type\": \"user\", \"id\": \"1\"},\n  \"action\": \"user.update\",\n  \"action\": \"user.delete\"\n}", "line 1: invalid event: action: duplicate"},
		{"tenant in capitals", `{"tenant":"acme","Tenant":"globex","actor":{"type":"user","id":"1"},"action":"user.update"}`, `tenant: given twice, in names that differ only in letter case`},
		{"duplicate control-character name", `{"tenant":"acme","actor":{"type":"user","id":"1"},"action":"user.update","metadata":{"\u001b[2J":1,"\u001b[2J":2}}`, `metadata["\x1b[2J"]: duplicate`},
		{"nil UUID id", `{"id":"00000000-0000-0000-0000-000000000000","tenant":"acme","actor":{"type":"user","id":"1"},"action":"user.update"}`, "line 1: invalid event: id: the nil UUID"},
		{"zero occurred_at", good + "\n" + `{"occurred_at":"0001-01-01T00:00:00Z","tenant":"acme","actor":{"type":"user","id":"1"},"action":"user.update"}`, "line 2: invalid event: occurred_at: "},
		{"actor.ip not an address", `{"tenant":"acme","actor":{"type":"user","id":"1","ip":"999.1.1.1"},"action":"user.update"}`, "line 1: invalid event: actor.ip: "},
		{"actor.email with a newline", `{"tenant":"acme","actor":{"type":"user","id":"1","email":"ann@acme.test\nBcc: x@y"},"action":"user.update"}`, "line 1: invalid event: actor.email: contains control characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, path := range []string{db, filepath.Join(t.TempDir(), "fresh.db")} {
				before := countEvents(t, path)
				r := run(t, path, env{stdin: tc.stdin}, "record", "-")
				if r.code != 2 {
					t.Errorf("exit %d, want 2 (stderr %q)", r.code, r.stderr)
				}
				if strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "trail: ") || !strings.Contains(r.stderr, tc.want) {
					t.Errorf("stderr %q, want one line with %q", r.stderr, tc.want)
				}
				if strings.ContainsAny(r.stderr, "\x1b\x00") {
					t.Errorf("stderr carries raw bytes: %q", r.stderr)
				}
				if r.stdout != "" {
					t.Errorf("stdout %q", r.stdout)
				}
				if after := countEvents(t, path); after != before {
					t.Errorf("%d events before, %d after: something was written", before, after)
				}
			}
		})
	}
	if _, err := os.Stat(db); err != nil {
		t.Fatal(err)
	}
	// Left out, or null, id and occurred_at are filled in: a fresh UUIDv7 each.
	r := mustRun(t, db, env{stdin: good + "\n" + good + "\n" + `{"id":null,"occurred_at":null,"tenant":"acme","actor":{"type":"user","id":"1"},"action":"user.update"}` + "\n"}, "record", "-")
	ids := strings.Fields(r.stdout)
	seen := map[uuid.UUID]bool{}
	for _, s := range ids {
		id, err := uuid.Parse(s)
		if err != nil || id.Version() != 7 || seen[id] {
			t.Errorf("id %q: want a fresh UUIDv7 (%v)", s, err)
		}
		seen[id] = true
	}
	if len(ids) != 3 {
		t.Errorf("recorded %q, want 3 IDs", r.stdout)
	}
}

package trailcli

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailsqlite"
)

// retentionEventsOf reads the retention.* events of tenant from the SQLite
// file db, oldest first.
func retentionEventsOf(t *testing.T, db, tenant string) []trail.Event {
	t.Helper()
	st, err := trailsqlite.Open(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p, err := st.Query(context.Background(), trail.Query{Tenant: tenant, AllTenants: tenant == "", Action: "retention.*", Limit: trail.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	var out []trail.Event
	for i := len(p.Events) - 1; i >= 0; i-- {
		if p.Events[i].Tenant == tenant {
			out = append(out, p.Events[i])
		}
	}
	return out
}

// The CLI's retention changes and runs are events of the store, by
// system:cli like trail forget's, through the privacy layer; a refused
// change records nothing; the run's retention.purge event is sealed by the
// next seal, and the log and the archive still verify.
func TestRetentionCLIAudits(t *testing.T) {
	db := tempDB(t)
	arc := filepath.Join(t.TempDir(), "archive")
	seedOld(t, db)
	mustRun(t, db, env{}, "seal")
	mustRun(t, db, env{}, "retention", "set", "--keep", "365d")
	mustRun(t, db, env{}, "retention", "set", "--action", "auth.*", "--keep", "90d", "--then", "delete")
	mustRun(t, db, env{}, "retention", "hold", "--tenant", "globex", "--reason", "case 42")
	if r := run(t, db, env{}, "retention", "set", "--tenant", "acme", "--keep", "30d"); r.code != ExitUsage {
		t.Fatalf("conflicting policy: exit %d", r.code)
	}
	mustRun(t, db, env{}, "retention", "run", "--archive-to", arc)
	mustRun(t, db, env{}, "retention", "release", "--tenant", "globex")

	want := map[string][]string{
		"":       {"retention.policy.set", "retention.policy.set"},
		"acme":   {"retention.purge"},
		"globex": {"retention.hold.place", "retention.hold.release"},
	}
	for tenant, actions := range want {
		evs := retentionEventsOf(t, db, tenant)
		var got []string
		for _, ev := range evs {
			got = append(got, ev.Action)
			if ev.Actor.Type != trail.ActorSystem || ev.Actor.ID != "cli" || ev.Source != "cli" {
				t.Errorf("tenant %q %s by %s:%s source %q, want system:cli, cli", tenant, ev.Action, ev.Actor.Type, ev.Actor.ID, ev.Source)
			}
			if ev.Action == "retention.purge" && (ev.Metadata["archive"] != arc || ev.Metadata["run"] == nil) {
				t.Errorf("purge event metadata %v", ev.Metadata)
			}
		}
		if strings.Join(got, " ") != strings.Join(actions, " ") {
			t.Errorf("tenant %q: %v, want %v", tenant, got, actions)
		}
	}
	mustRun(t, db, env{}, "seal")
	v := mustRun(t, db, env{}, "verify", "--archive-to", arc).stdout
	if !strings.Contains(v, "OK:") {
		t.Fatalf("verify: %s", v)
	}
}

// On PostgreSQL the same events, in the same transaction as the change.
func TestRetentionCLIAuditsPostgres(t *testing.T) {
	dsn := freshPostgresDB(t)
	seedOldPostgres(t, dsn)
	pg := []string{"--postgres", dsn}
	mustRun(t, "", env{}, append([]string{"retention", "set", "--action", "auth.*", "--keep", "90d", "--then", "delete"}, pg...)...)
	mustRun(t, "", env{}, append([]string{"retention", "hold", "--tenant", "globex", "--min-keep", "1y"}, pg...)...)
	if r := run(t, "", env{}, append([]string{"retention", "set", "--tenant", "globex", "--action", "user.*", "--keep", "30d"}, pg...)...); r.code != ExitUsage {
		t.Fatalf("policy shorter than the hold: exit %d", r.code)
	}
	if n := pgCount(t, dsn, `SELECT count(*) FROM trail.events WHERE action LIKE 'retention.%' AND actor_type = 'system' AND actor_id = 'cli'`); n != 2 {
		t.Fatalf("%d retention events by system:cli, want 2", n)
	}
	if n := pgCount(t, dsn, `SELECT count(*) FROM trail.events WHERE tenant = 'globex' AND action = 'retention.hold.place' AND target_type = 'legal_hold'`); n != 1 {
		t.Fatalf("%d hold events in globex, want 1", n)
	}
}

// trail serve serves the retention endpoints on its store, audited with the
// key as actor and through the privacy layer (the key's IP encrypted at
// rest), with or without --retention.
func TestServeRetentionAPI(t *testing.T) {
	db := tempDB(t)
	base, key, stop := startServe(t, db)
	if key == "" {
		t.Fatal("no admin key printed")
	}
	req, _ := http.NewRequest("PUT", base+"/v1/retention/policies", strings.NewReader(`{"action":"auth.*","keep":"90d","then":"delete"}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /v1/retention/policies: %d", resp.StatusCode)
	}
	if code, out := stop(); code != 0 {
		t.Fatalf("serve exit %d: %s", code, out)
	}
	evs := retentionEventsOf(t, db, "")
	if len(evs) != 1 || evs[0].Action != "retention.policy.set" || evs[0].Actor.Type != trail.ActorService ||
		!strings.HasPrefix(evs[0].Actor.ID, "key-") || !strings.HasPrefix(evs[0].Actor.IP, "enc:") {
		t.Fatalf("events: %+v", evs)
	}
}

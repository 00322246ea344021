package trailcli

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/trailhq/trail/server/trailarchive"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/server/trailsqlite"
)

// trail retention hold checks a hold as POST /v1/retention/holds does (one
// function, trailarchive's Hold.Validate): a reason of more than one line,
// or too long, is a one-line error naming the reason, exit 2, and nothing is
// written; the API refuses the same reasons on the field reason.
func TestRetentionHoldReasonOneLine(t *testing.T) {
	db := tempDB(t)
	st, err := trailsqlite.Open(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	api := RetentionAPI(trailarchive.NewSQLite(st), nil)
	for _, reason := range []string{
		"case 42\nReleased by the court: purge everything",
		"case 42\r",
		"case\t42",
		"case 42\u2028forged",
		"case 42\u0085",
		strings.Repeat("x", trailarchive.MaxHoldReason+1),
	} {
		r := run(t, db, env{}, "retention", "hold", "--tenant", "acme", "--reason", reason)
		if r.code != ExitUsage || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "reason must be one line") ||
			strings.Contains(r.stderr, "trailarchive:") || r.stdout != "" {
			t.Errorf("trail retention hold --reason %.40q: exit %d, stdout %q, stderr %q; want exit 2 and one line naming the reason", reason, r.code, r.stdout, r.stderr)
		}
		_, err := api.PlaceHold(context.Background(), trailserver.RetentionHold{Tenant: "acme", Reason: reason}, false)
		var re *trailserver.RetentionError
		if !errors.As(err, &re) || re.Field != "reason" || re.Conflict || re.Forbidden {
			t.Errorf("the API places a hold with reason %.40q: %v, want a 400 on reason", reason, err)
		}
	}
	st.Close()
	if n := sqliteCount(t, db, `SELECT count(*) FROM trail_retention_holds`); n != 0 {
		t.Fatalf("%d holds written by refused commands", n)
	}
	if evs := retentionEventsOf(t, db, "acme"); len(evs) != 0 {
		t.Fatalf("%d events recorded by refused commands", len(evs))
	}
	mustRun(t, db, env{}, "retention", "hold", "--tenant", "acme", "--reason", "case 42 — Müller v. Acme")
	if show := mustRun(t, db, env{}, "retention", "show").stdout; !strings.Contains(show, "case 42 — Müller v. Acme") {
		t.Fatalf("retention show:\n%s", show)
	}
}

// The CLI reaches the store itself and acts for every tenant, as an
// all-tenant admin key does: it may weaken a hold, recorded as a weakening.
func TestRetentionCLIWeakensHold(t *testing.T) {
	db := tempDB(t)
	mustRun(t, db, env{}, "migrate")
	mustRun(t, db, env{}, "retention", "hold", "--tenant", "acme", "--reason", "case 42", "--min-keep", "7y")
	if r := run(t, db, env{}, "retention", "set", "--tenant", "acme", "--keep", "1d", "--then", "delete"); r.code != ExitUsage ||
		!strings.Contains(r.stderr, "trail: conflicting policy: keep 1d is shorter than the legal hold on tenant acme") {
		t.Fatalf("keep 1d under the hold: exit %d, %q", r.code, r.stderr)
	}
	mustRun(t, db, env{}, "retention", "hold", "--tenant", "acme", "--reason", "case 42")
	evs := retentionEventsOf(t, db, "acme")
	if ev := evs[len(evs)-1]; ev.Action != trailarchive.ActionHoldPlace || ev.Metadata["weakened"] != "min_keep" {
		t.Fatalf("weakening recorded as %s, metadata %v", ev.Action, ev.Metadata)
	}
	mustRun(t, db, env{}, "retention", "set", "--tenant", "acme", "--keep", "1d", "--then", "delete")
}

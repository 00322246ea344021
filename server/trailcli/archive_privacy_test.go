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
	"github.com/trailhq/trail/trailprivacy"
)

// TestArchivePrivacy: events archived by retention keep their stored form
// (the Parquet files and `archive restore` hold ciphertext, never the
// e-mail address), `trail query --archive` reveals them like `trail query`,
// and after `trail forget` the archived fields read "[erased]" too.
func TestArchivePrivacy(t *testing.T) { // not parallel: sets the environment
	t.Setenv("TRAIL_MASTER_KEY", "")
	const email = "ann.archived@example.org"
	db := tempDB(t)
	arc := filepath.Join(t.TempDir(), "archive")
	ctx := context.Background()
	st, p := encryptedSQLite(t, db)
	evs := privateEvents(t, p, email, 200, 100, 1, "user.update")
	if _, err := st.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	st.Close()

	mustRun(t, db, env{}, "seal")
	mustRun(t, db, env{}, "retention", "set", "--keep", "90d")
	mustRun(t, db, env{}, "retention", "run", "--archive-to", arc)
	if n := tenantCount(t, db, "acme"); n >= len(evs) {
		t.Fatalf("retention archived nothing: %d events left", n)
	}
	filepath.WalkDir(arc, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(path)
			noPlaintext(t, path, b, email)
		}
		return nil
	})

	query := func() string {
		t.Helper()
		return mustRun(t, db, env{}, "query", "--archive", "--archive-to", arc, "--tenant", "acme", "--action", "user.update", "--json", "--limit", "1000").stdout
	}
	if out := query(); strings.Count(out, email) < 10 || strings.Contains(out, "enc:v1:") {
		t.Fatalf("query --archive does not reveal: %.400s", out)
	}
	restored := mustRun(t, db, env{}, "archive", "restore", "--archive-to", arc, "--tenant", "acme").stdout
	if strings.Contains(restored, email) || !strings.Contains(restored, "enc:v1:") {
		t.Errorf("archive restore should print the stored form: %.400s", restored)
	}

	mustRun(t, db, env{}, "forget", "--tenant", "acme", "--subject", "user:u1")
	if out := query(); strings.Contains(out, email) || strings.Count(out, trailprivacy.Erased) < 10 {
		t.Errorf("query --archive after forget: %.400s", out)
	}
}

// privateEvents returns events of acme by user:u1 with the e-mail address
// email, in their stored form (normalized, then transformed by p): one every
// step days, from days ago down to (not including) until days ago, the day
// d's action actions[d%len(actions)].
func privateEvents(t *testing.T, p *trailprivacy.Privacy, email string, days, until, step int, actions ...string) []trail.Event {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	var evs []trail.Event
	for d := days; d > until; d -= step {
		at := now.Add(-time.Duration(d) * 24 * time.Hour)
		ev := trail.Event{ID: uuid.Must(uuid.NewV7()), OccurredAt: at, RecordedAt: at, Tenant: "acme",
			Actor:  trail.Actor{Type: trail.ActorUser, ID: "u1", Email: email},
			Action: actions[d%len(actions)], Target: trail.Target{Type: "user", ID: "u1"}, Description: fmt.Sprint("day ", d)}
		if err := ev.Normalize(); err != nil {
			t.Fatal(err)
		}
		if err := p.Transform(ctx, &ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	return evs
}

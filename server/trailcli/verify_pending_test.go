package trailcli

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailhq/trail/trailseal/sealtest"
)

// eventLines returns n JSON Lines events of tenant for `trail record -`.
func eventLines(tenant string, from, n int) string {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, `{"tenant":%q,"actor":{"type":"user","id":"%d"},"action":"auth.login"}`+"\n", tenant, i)
	}
	return b.String()
}

// TestVerifyReportsUnsealed: events recorded since the last seal are named
// in verify's summary (text and JSON), per tenant with --tenant, and are not
// a failure: the exit status stays 0.
func TestVerifyReportsUnsealed(t *testing.T) {
	db := tempDB(t)
	mustRun(t, db, env{stdin: eventLines("acme", 0, 3) + eventLines("globex", 0, 2)}, "record", "-")
	mustRun(t, db, env{}, "seal")
	mustRun(t, db, env{stdin: eventLines("acme", 3, 4) + eventLines("globex", 2, 1)}, "record", "-")

	r := mustRun(t, db, env{}, "verify")
	for _, want := range []string{
		"Verified 5 sealed events in 2 logs",
		"5 events are not sealed yet, so not verified: run \"trail seal\"",
		"OK: every sealed event matches its leaf",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("verify lacks %q:\n%s", want, r.stdout)
		}
	}
	r = mustRun(t, db, env{}, "verify", "--tenant", "acme")
	if !strings.Contains(r.stdout, "Verified 3 sealed events in 1 logs") || !strings.Contains(r.stdout, "4 events are not sealed yet") {
		t.Errorf("verify --tenant acme:\n%s", r.stdout)
	}
	r = mustRun(t, db, env{}, "verify", "--json")
	var rep struct {
		Events  int64 `json:"events"`
		Pending int64 `json:"pending"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Events != 5 || rep.Pending != 5 {
		t.Errorf("verify --json: %+v %v\n%s", rep, err, r.stdout)
	}

	// Once sealed, nothing is pending and the summary says so by omission.
	mustRun(t, db, env{}, "seal")
	r = mustRun(t, db, env{}, "verify")
	if !strings.Contains(r.stdout, "Verified 10 events in 2 logs") || strings.Contains(r.stdout, "not sealed") || !strings.Contains(r.stdout, "OK: every event matches") {
		t.Errorf("verify after seal:\n%s", r.stdout)
	}
}

// TestVerifyReportsUnsealedPostgres: the same count on PostgreSQL's queue.
func TestVerifyReportsUnsealedPostgres(t *testing.T) {
	dsn := freshPostgresDB(t)
	ctx := context.Background()
	st := openPostgres(t, dsn)
	defer st.Close()
	if _, err := st.Append(ctx, append(sealtest.Events(t, "acme", 0, 6), sealtest.Events(t, "globex", 0, 2)...)); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "signing.key")
	pg := []string{"--postgres", dsn, "--signing-key-file", key}
	mustRun(t, "", env{}, "keys", "signing", "generate", "--signing-key-file", key)
	mustRun(t, "", env{}, append([]string{"seal"}, pg...)...)
	if _, err := st.Append(ctx, sealtest.Events(t, "acme", 6, 3)); err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, "", env{}, append([]string{"verify"}, pg...)...)
	if !strings.Contains(r.stdout, "Verified 8 sealed events in 2 logs") || !strings.Contains(r.stdout, "3 events are not sealed yet") {
		t.Errorf("verify:\n%s", r.stdout)
	}
	r = mustRun(t, "", env{}, append([]string{"verify", "--tenant", "globex"}, pg...)...)
	if !strings.Contains(r.stdout, "Verified 2 events in 1 logs") || strings.Contains(r.stdout, "not sealed") {
		t.Errorf("verify --tenant globex:\n%s", r.stdout)
	}
}

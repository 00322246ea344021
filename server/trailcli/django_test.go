package trailcli

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
)

// djangoPython is Debian's python3 with python3-django and
// python3-psycopg2, which .ci/run installs.
func djangoPython(t *testing.T) string {
	t.Helper()
	py := "/usr/bin/python3"
	out, err := exec.Command(py, "-c", "import django, psycopg2; print(django.get_version())").CombinedOutput()
	if err != nil {
		testenv.Unavailable(t, "python3-django and python3-psycopg2 (apt-get install python3-django python3-psycopg2)", errors.New(strings.TrimSpace(string(out))))
	}
	return py
}

// TestDjangoExample runs examples/django, the seed's SaaS with no Python
// audit code beyond a middleware: a plan changed through the app's ORM and
// then through a Django admin action, and an admin command, are all in
// `trail history` with the Django user (or the command) as actor.
func TestDjangoExample(t *testing.T) {
	t.Parallel()
	py := djangoPython(t)
	dsn := freshPostgresDB(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := writeFile(t, "master.key", newMasterKey(t))
	dir, err := filepath.Abs("../../examples/django")
	if err != nil {
		t.Fatal(err)
	}
	django := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(py, append([]string{"manage.py"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PGDATABASE="+strings.TrimPrefix(u.Path, "/"), "PGHOST="+u.Hostname(),
			"PGPORT="+u.Port(), "PGUSER="+u.User.Username(), "PYTHONDONTWRITEBYTECODE=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("manage.py %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return string(out)
	}
	django("migrate", "--noinput")
	mustRun(t, "", env{}, "migrate", "--postgres", dsn, "--master-key-file", keyFile)
	mustRun(t, "", env{}, "capture", "enable", "billing_subscription", "--name", "subscription",
		"--tenant-column", "tenant_id", "--ignore", "updated_at", "--postgres", dsn, "--master-key-file", keyFile)

	var ids struct{ Subscription, Nina, Sam int }
	out := django("scenario")
	if err := json.Unmarshal([]byte(out[strings.LastIndexByte(strings.TrimSpace(out), '\n')+1:]), &ids); err != nil {
		t.Fatalf("scenario output %q: %v", out, err)
	}
	if got := django("close_trials", "acme"); !strings.Contains(got, "1 trials closed") {
		t.Fatalf("close_trials: %q", got)
	}

	sub := "subscription:" + itoa(ids.Subscription)
	evs := pgJSON(t, "history", sub, "--tenant", "acme", "--postgres", dsn, "--master-key-file", keyFile)
	// Newest first: the admin action, the app's change, the creation.
	if len(evs) != 3 {
		t.Fatalf("history of %s: %d events, want 3: %+v", sub, len(evs), evs)
	}
	admin, app, created := evs[0], evs[1], evs[2]
	check := func(name string, ev trail.Event, action, actor, request string, changes map[string][2]string) {
		t.Helper()
		if ev.Action != action || ev.Actor.String() != actor || ev.RequestID != request || ev.Tenant != "acme" || ev.Source != "trigger" {
			t.Errorf("%s: %s by %s in request %q, tenant %q, source %q; want %s by %s in %q, tenant acme, source trigger",
				name, ev.Action, ev.Actor, ev.RequestID, ev.Tenant, ev.Source, action, actor, request)
		}
		if len(ev.Changes) != len(changes) {
			t.Errorf("%s: changes %+v, want %v", name, ev.Changes, changes)
		}
		for _, c := range ev.Changes {
			if w, ok := changes[c.Field]; !ok || string(c.Old) != w[0] || string(c.New) != w[1] {
				t.Errorf("%s: change %s %s -> %s, want %v", name, c.Field, c.Old, c.New, w)
			}
		}
	}
	check("the app's plan change", app, "subscription.update", "user:"+itoa(ids.Nina), "req-app-1",
		map[string][2]string{"plan": {`"free"`, `"pro"`}})
	check("the admin action", admin, "subscription.update", "user:"+itoa(ids.Sam), "req-admin-1",
		map[string][2]string{"plan": {`"pro"`, `"enterprise"`}, "seats": {"3", "50"}})
	if created.Action != "subscription.insert" || created.Actor.Type != trail.ActorSystem {
		t.Errorf("creation outside a request: %s by %s, want subscription.insert by the database role", created.Action, created.Actor)
	}
	// The admin command names itself.
	closed := pgJSON(t, "query", "--tenant", "acme", "--actor", "system:close_trials", "--postgres", dsn, "--master-key-file", keyFile)
	if len(closed) != 1 || closed[0].Action != "subscription.update" {
		t.Errorf("close_trials events: %+v", closed)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

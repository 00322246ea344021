package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/trailtest"
)

// TestMain gives the tests a fresh master key, as a user sets one with
// export TRAIL_MASTER_KEY=$(openssl rand -base64 32). It is set here, for
// the whole binary, because the tests run in parallel (t.Setenv refuses
// parallel tests) and the commands run() starts read it too.
func TestMain(m *testing.M) {
	var key [32]byte
	rand.Read(key[:])
	os.Setenv("TRAIL_MASTER_KEY", base64.StdEncoding.EncodeToString(key[:]))
	os.Exit(m.Run())
}

// testApp is the service on the machine's PostgreSQL, with its tables and
// Trail in two schemas of the test's own, set up and seeded.
type testApp struct {
	*App
	pool               *pgxpool.Pool
	schema, trailSchem string
	srv                *httptest.Server
}

func newTestApp(t *testing.T) testApp {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.PostgresDSN())
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		testenv.Unavailable(t, "PostgreSQL", err)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "t_saas_" + hex.EncodeToString(b[:])
	ta := testApp{pool: pool, schema: schema, trailSchem: schema + "_trail"}
	t.Cleanup(func() {
		if ta.srv != nil {
			ta.srv.Close()
		}
		if ta.App != nil {
			ta.App.Close()
		}
		pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+ta.schema+" CASCADE; DROP SCHEMA IF EXISTS "+ta.trailSchem+" CASCADE")
		pool.Close()
	})
	ta.App, err = NewApp(ctx, pool, ta.schema, ta.trailSchem)
	if err != nil {
		t.Fatal(err)
	}
	if err := ta.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ta.Setup(ctx); err != nil { // idempotent
		t.Fatalf("second setup: %v", err)
	}
	if err := ta.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	ta.srv = httptest.NewServer(ta.Handler())
	return ta
}

func (ta testApp) do(t *testing.T, method, path, user, reqID, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, ta.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.Header.Set("X-User-Id", user)
	}
	if reqID != "" {
		req.Header.Set("X-Request-Id", reqID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// "Who changed that subscription?" A user changes the plan over HTTP, the
// operator changes it with the admin command; Trail's query API answers with
// both, newest first, each with its actor, sentence and typed change.
func TestWhoChangedTheSubscription(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t)
	ctx := context.Background()

	if resp := ta.do(t, "PUT", "/tenants/acme/subscription", "1", "req-plan-1", `{"plan":"pro"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("change plan: %s", resp.Status)
	}
	var out bytes.Buffer
	err := run(ctx, []string{"admin", "change-plan", "--tenant", "acme", "--plan", "enterprise",
		"--postgres", testenv.PostgresDSN(), "--schema", ta.schema, "--trail-schema", ta.trailSchem}, &out)
	if err != nil {
		t.Fatalf("admin change-plan: %v", err)
	}
	var plan string
	if err := ta.pool.QueryRow(ctx, "SELECT plan FROM "+ta.schema+".subscriptions WHERE id = 'sub_acme'").Scan(&plan); err != nil || plan != "enterprise" {
		t.Fatalf("plan %q, %v", plan, err)
	}

	// Through Trail's query API: target subscription:sub_acme in tenant acme.
	p, err := ta.Trail().Query(ctx, trail.Query{Tenant: "acme", TargetType: "subscription", TargetID: "sub_acme"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 2 {
		t.Fatalf("%d events for subscription:sub_acme, want 2", len(p.Events))
	}
	admin, user := p.Events[0], p.Events[1]
	checks := []struct {
		ev                trail.Event
		actor, desc, from string
		to                string
		request           bool
	}{
		{admin, "system:saas-admin", "Changed subscription plan to enterprise for tenant Acme Corp", `"pro"`, `"enterprise"`, false},
		{user, "user:1", "Changed subscription plan to pro for tenant Acme Corp", `"free"`, `"pro"`, true},
	}
	for _, c := range checks {
		ev := c.ev
		if ev.Actor.String() != c.actor || ev.Description != c.desc || ev.Action != "subscription.update" || ev.Tenant != "acme" || ev.Source != "saas" {
			t.Errorf("event: actor %s, action %s, tenant %s, source %q, description %q; want %s, %q", ev.Actor, ev.Action, ev.Tenant, ev.Source, ev.Description, c.actor, c.desc)
		}
		if len(ev.Changes) != 1 || ev.Changes[0].Field != "plan" || string(ev.Changes[0].Old) != c.from || string(ev.Changes[0].New) != c.to {
			t.Errorf("%s: changes %+v", c.actor, ev.Changes)
		}
		if c.request && ev.RequestID != "req-plan-1" {
			t.Errorf("%s: request %q", c.actor, ev.RequestID)
		}
	}
	if admin.Actor.Type != trail.ActorSystem {
		t.Errorf("the admin command's actor is %q, want system", admin.Actor.Type)
	}
	// The user's IP address is personal data: stored encrypted under the
	// master key, read back decrypted through the client.
	stored, err := ta.Trail().Store().Get(ctx, user.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(user.Actor.IP, "127.0.0.1") || stored.Actor.IP == "" || strings.Contains(stored.Actor.IP, "127.0.0.1") {
		t.Errorf("actor IP %q, stored as %q: want it stored encrypted and read back decrypted", user.Actor.IP, stored.Actor.IP)
	}

	// The same answer over the service's API and its command line.
	resp := ta.do(t, "GET", "/tenants/acme/subscriptions/sub_acme/history", "", "", "")
	var hist []trail.Event
	if err := json.NewDecoder(resp.Body).Decode(&hist); err != nil || len(hist) != 2 || hist[1].Actor.ID != "1" {
		t.Errorf("history endpoint: %v, %+v", err, hist)
	}
	out.Reset()
	err = run(ctx, []string{"who-changed", "--tenant", "acme", "--subscription", "sub_acme",
		"--postgres", testenv.PostgresDSN(), "--schema", ta.schema, "--trail-schema", ta.trailSchem}, &out)
	if err != nil || !strings.Contains(out.String(), "user:1") || !strings.Contains(out.String(), "system:saas-admin") {
		t.Errorf("who-changed: %v\n%s", err, out.String())
	}
	// Another tenant's subscription history is not mixed in.
	if p, err := ta.Trail().Query(ctx, trail.Query{Tenant: "globex", TargetType: "subscription"}); err != nil || len(p.Events) != 0 {
		t.Errorf("globex: %d events, %v", len(p.Events), err)
	}
}

// Deleting a user is captured by the trigger, with the acting user, the
// tenant and the request from the transaction; a DELETE typed in psql is
// captured too, attributed to the database role.
func TestDeleteUserCapturedByTrigger(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t)
	ctx := context.Background()
	if resp := ta.do(t, "DELETE", "/tenants/acme/users/2", "1", "req-del-2", ""); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %s", resp.Status)
	}
	p, err := ta.Trail().Query(ctx, trail.Query{Tenant: "acme", Action: "users.delete"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 1 {
		t.Fatalf("%d users.delete events, want 1", len(p.Events))
	}
	ev := p.Events[0]
	if ev.Actor.String() != "user:1" || ev.Target.String() != "users:2" || ev.RequestID != "req-del-2" || ev.Source != "trigger" {
		t.Errorf("actor %s target %s request %q source %q", ev.Actor, ev.Target, ev.RequestID, ev.Source)
	}
	got := map[string]trail.Change{}
	for _, c := range ev.Changes {
		got[c.Field] = c
	}
	if string(got["email"].Old) != `"bob@acme.example"` || got["email"].New != nil || !got["password_hash"].Redacted {
		t.Errorf("changes %+v", ev.Changes)
	}
	if _, ok := got["updated_at"]; ok {
		t.Errorf("updated_at is ignored but was recorded")
	}

	// psql: no Trail context at all.
	if _, err := ta.pool.Exec(ctx, "DELETE FROM "+ta.schema+".users WHERE id = 3"); err != nil {
		t.Fatal(err)
	}
	var role string
	if err := ta.pool.QueryRow(ctx, "SELECT session_user").Scan(&role); err != nil {
		t.Fatal(err)
	}
	p, err = ta.Trail().Query(ctx, trail.Query{Tenant: "globex", Action: "users.delete"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 1 || p.Events[0].Actor != (trail.Actor{Type: trail.ActorSystem, ID: "db:" + role}) || p.Events[0].Target.ID != "3" {
		t.Fatalf("psql delete: %+v", p.Events)
	}
}

// Bad requests change nothing and record nothing.
func TestBadRequestsRecordNothing(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t)
	for _, c := range []struct {
		method, path, user, body string
		status                   int
	}{
		{"PUT", "/tenants/acme/subscription", "1", `{"plan":"platinum"}`, http.StatusBadRequest},
		{"PUT", "/tenants/acme/subscription", "1", `{"plan":`, http.StatusBadRequest},
		{"PUT", "/tenants/nope/subscription", "1", `{"plan":"pro"}`, http.StatusNotFound},
		{"PUT", "/tenants/acme/subscription", "", `{"plan":"pro"}`, http.StatusUnauthorized},
		{"DELETE", "/tenants/globex/users/1", "1", "", http.StatusNotFound}, // user 1 is acme's
		{"DELETE", "/tenants/acme/users/x", "1", "", http.StatusBadRequest},
	} {
		if resp := ta.do(t, c.method, c.path, c.user, "", c.body); resp.StatusCode != c.status {
			t.Errorf("%s %s %s: %s, want %d", c.method, c.path, c.body, resp.Status, c.status)
		}
	}
	if err := run(context.Background(), []string{"admin", "change-plan", "--tenant", "acme", "--plan", "gold",
		"--postgres", testenv.PostgresDSN(), "--schema", ta.schema, "--trail-schema", ta.trailSchem}, &bytes.Buffer{}); err == nil {
		t.Error("admin change-plan to an unknown plan succeeded")
	}
	// Only the seed's captured inserts exist.
	p, err := ta.Trail().Query(context.Background(), trail.Query{AllTenants: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range p.Events {
		if ev.Action != "users.insert" || ev.Actor.String() != "system:saas-seed" {
			t.Errorf("unexpected event %s by %s", ev.Action, ev.Actor)
		}
	}
	var plan string
	if err := ta.pool.QueryRow(context.Background(), "SELECT plan FROM "+pgx.Identifier{ta.schema, "subscriptions"}.Sanitize()+" WHERE id = 'sub_acme'").Scan(&plan); err != nil || plan != "free" {
		t.Errorf("plan %q, %v", plan, err)
	}
}

// A plan change that fails leaves no event: ChangePlan records the change,
// then finds that globex's three users do not fit the free plan's two seats
// and returns an error, so its transaction rolls back, event included. The
// test hands ChangePlan a trailtest.TxRecorder, which takes the service's
// real transactions and keeps only the events of those that commit.
func TestRefusedPlanChangeLeavesNoEvent(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t)
	ctx := context.Background()
	rec := trailtest.NewTxRecorderConfig(t, ta.pool, &trail.Config{Source: "saas"})
	ta.audit = rec

	resp := ta.do(t, "PUT", "/tenants/globex/subscription", "3", "req-free", `{"plan":"free"}`)
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("change globex to free: %s, want 409", resp.Status)
	}
	if _, err := ta.AdminChangePlan(ctx, "globex", "free"); !errors.Is(err, ErrTooSmall) {
		t.Fatalf("admin change to free: %v, want ErrTooSmall", err)
	}
	trailtest.RequireNotRecorded(t, rec, trailtest.Match{Action: "subscription.update"})
	// Recorded, then rolled back: not "never recorded".
	if rb := rec.RolledBack(); len(rb) != 2 || rb[0].Tenant != "globex" || rb[0].Actor.String() != "user:3" || rb[1].Actor != AdminActor {
		t.Fatalf("rolled back: %d events %+v, want the two refused changes", len(rb), rb)
	}
	var plan string
	if err := ta.pool.QueryRow(ctx, "SELECT plan FROM "+ta.schema+".subscriptions WHERE id = 'sub_globex'").Scan(&plan); err != nil || plan != "team" {
		t.Fatalf("plan %q, %v; want team, unchanged", plan, err)
	}

	// A change that fits commits, and its event is kept.
	if resp := ta.do(t, "PUT", "/tenants/globex/subscription", "3", "req-pro", `{"plan":"pro"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("change globex to pro: %s", resp.Status)
	}
	ev := trailtest.RequireRecorded(t, rec, trailtest.Match{
		Tenant: "globex", Actor: "user:3", Action: "subscription.update", Target: "subscription:sub_globex", Changed: "plan",
	})
	if ev.Description != "Changed subscription plan to pro for tenant Globex" || ev.RequestID != "req-pro" || ev.Source != "saas" {
		t.Errorf("kept event: description %q, request %q, source %q", ev.Description, ev.RequestID, ev.Source)
	}
	trailtest.RequireCount(t, rec, trailtest.Match{Action: "subscription.*"}, 1)
	if n := rec.Pending(); n != 0 {
		t.Errorf("%d events of unfinished transactions", n)
	}
}

// Without a master key the commands fail, and say how to make one.
func TestNoMasterKey(t *testing.T) {
	t.Setenv("TRAIL_MASTER_KEY", "") // not parallel: it changes the environment
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.PostgresDSN())
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		testenv.Unavailable(t, "PostgreSQL", err)
	}
	defer pool.Close()
	var b [6]byte
	rand.Read(b[:])
	schema := "t_saas_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE; DROP SCHEMA IF EXISTS "+schema+"_trail CASCADE")
	})
	err = run(ctx, []string{"setup", "--postgres", testenv.PostgresDSN(), "--schema", schema, "--trail-schema", schema + "_trail"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "TRAIL_MASTER_KEY") || !strings.Contains(err.Error(), "openssl rand -base64 32") {
		t.Errorf("setup without a master key: %v; want an error saying how to set TRAIL_MASTER_KEY", err)
	}
}

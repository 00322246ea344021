package trailarchive

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
)

// now is the fixed clock of the tests.
var now = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	store   *trailsqlite.Store
	backend *SQLite
	signer  note.Signer
	vkey    string
	vs      note.Verifiers
	dir     string
	target  *Dir
}

// newFixture opens a SQLite store holding events of tenants acme and globex
// (and the platform), one every `step` over the two years before now, with
// actions auth.login, billing.invoice and user.update in turn; all sealed
// and checkpointed.
func newFixture(t testing.TB, step time.Duration) *fixture {
	t.Helper()
	return newFixtureSpan(t, 730*Day, step)
}

// newFixtureSpan is newFixture over the span before now.
func newFixtureSpan(t testing.TB, span, step time.Duration) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := trailsqlite.Open(ctx, filepath.Join(dir, "trail.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	skey, vkey, err := trailseal.GenerateSigningKey(trailseal.DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := trailseal.ParseSigningKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := trailseal.ParseVerifierKey(vkey)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: st, backend: NewSQLite(st), signer: signer, vkey: vkey, vs: note.VerifierList(v),
		dir: dir, target: &Dir{Root: filepath.Join(dir, "archive")}}
	f.backend.Now = func() time.Time { return now }
	var evs []trail.Event
	actions := []string{"auth.login", "billing.invoice", "user.update"}
	tenants := []string{"acme", "globex", ""}
	i := 0
	for at := now.Add(-span); at.Before(now); at = at.Add(step) {
		tenant := tenants[i%3]
		evs = append(evs, trail.Event{
			ID: uuid.Must(uuid.NewV7()), OccurredAt: at.Add(-time.Second), RecordedAt: at, Tenant: tenant,
			Actor: trail.Actor{Type: trail.ActorUser, ID: fmt.Sprintf("u%d", i%5)}, Action: actions[(i/3)%3],
			Target: trail.Target{Type: "subscription", ID: fmt.Sprintf("s%d", i%7)}, Outcome: trail.OutcomeSuccess,
			Description: fmt.Sprintf("event %d", i), Metadata: map[string]any{"n": float64(i)}, SchemaVersion: 1,
		})
		i++
	}
	for len(evs) > 0 {
		n := min(len(evs), 1000)
		if _, err := st.Append(ctx, evs[:n]); err != nil {
			t.Fatal(err)
		}
		evs = evs[n:]
	}
	f.seal(t)
	return f
}

func (f *fixture) seal(t testing.TB) {
	t.Helper()
	sl, err := trailseal.NewSealer(f.store, &trailseal.Config{Signer: f.signer, Origin: trailseal.DefaultOrigin,
		CheckpointEvents: 1, CheckpointInterval: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sl.SealAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	sl.Release(context.Background())
}

func (f *fixture) runner(t testing.TB, mod func(*Config)) *Runner {
	t.Helper()
	cfg := Config{Backend: f.backend, Target: f.target, Signer: f.signer, PublicKey: f.vkey, Now: func() time.Time { return now }}
	if mod != nil {
		mod(&cfg)
	}
	r, err := NewRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// count returns the events stored per tenant.
func (f *fixture) count(t testing.TB, tenant string) int {
	t.Helper()
	var n int
	if err := f.store.DB().QueryRow(`SELECT count(*) FROM trail_events WHERE tenant = ?`, tenant).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// verifyStore runs the log verifier over the store and fails on any problem.
func (f *fixture) verifyStore(t testing.TB) *trailseal.Report {
	t.Helper()
	v := &trailseal.Verifier{Store: f.store, Verifiers: f.vs}
	rep, err := v.Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("store does not verify: %+v", rep.Problems[:min(3, len(rep.Problems))])
	}
	return rep
}

func (f *fixture) setPolicies(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	for _, p := range []Policy{
		{Keep: 365 * Day, Then: ThenArchive},
		{Action: "auth.*", Keep: 90 * Day, Then: ThenDelete},
		{Action: "billing.*", Keep: 7 * Year, Then: ThenArchive},
	} {
		if err := f.backend.SetPolicy(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
}

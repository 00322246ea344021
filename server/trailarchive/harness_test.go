package trailarchive

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailpgx"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
)

// now is the fixed clock of the tests.
var now = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// The stores the run tests run on.
const (
	onSQLite   = "sqlite"
	onPostgres = "postgres"
)

var backends = []string{onSQLite, onPostgres}

// eachBackend runs test as a parallel subtest on each store.
func eachBackend(t *testing.T, test func(t *testing.T, kind string)) {
	for _, kind := range backends {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			test(t, kind)
		})
	}
}

// eachBackendVersion runs test on each store, writing manifests of
// version 3 (one for the batches each file completes: Trail now) and of
// version 2 (one per batch: archives of earlier releases).
func eachBackendVersion(t *testing.T, test func(t *testing.T, kind string, version int)) {
	eachBackend(t, func(t *testing.T, kind string) {
		for _, v := range []int{ManifestV3, ManifestV2} {
			t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) { test(t, kind, v) })
		}
	})
}

// withVersion makes a runner write manifests of version (ManifestV2: one
// per batch, as earlier releases did).
func withVersion(version int) func(*Config) {
	return func(c *Config) { c.manifestVersion = version }
}

type fixture struct {
	kind    string
	store   trailseal.Store // the sealed log: sqlite or pg
	sqlite  *trailsqlite.Store
	pg      *trailpgx.Store
	backend Backend
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
	return newFixtureOn(t, onSQLite, 730*Day, step)
}

// newFixtureOn is newFixtureSpan on the store kind: SQLite, or a schema of
// its own on the PostgreSQL test server.
func newFixtureOn(t testing.TB, kind string, span, step time.Duration) *fixture {
	t.Helper()
	f := openFixture(t, kind)
	f.appendEvents(t, fixtureEvents(span, step))
	f.seal(t)
	return f
}

// openFixture opens an empty store of kind, with keys and a target.
func openFixture(t testing.TB, kind string) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	f := &fixture{kind: kind, dir: dir}
	switch kind {
	case onSQLite:
		st, err := trailsqlite.Open(ctx, filepath.Join(dir, "trail.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		b := NewSQLite(st)
		b.Now = func() time.Time { return now }
		f.store, f.sqlite, f.backend = st, st, b
	case onPostgres:
		st := newPostgresStore(t)
		b := NewPostgres(st)
		b.Now = func() time.Time { return now }
		f.store, f.pg, f.backend = st, st, b
	default:
		t.Fatalf("unknown store %q", kind)
	}
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
	f.signer, f.vkey, f.vs, f.target = signer, vkey, note.VerifierList(v), &Dir{Root: filepath.Join(dir, "archive")}
	return f
}

// fixtureEvents returns events of tenants acme and globex (and the
// platform), one every step over the span before now, with actions
// auth.login, billing.invoice and user.update in turn.
func fixtureEvents(span, step time.Duration) []trail.Event {
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
	return evs
}

// appendEvents stores evs as given (RecordedAt included).
func (f *fixture) appendEvents(t testing.TB, evs []trail.Event) {
	t.Helper()
	ctx := context.Background()
	for len(evs) > 0 {
		n := min(len(evs), 1000)
		var err error
		if f.pg != nil {
			_, err = f.pg.Append(ctx, evs[:n])
		} else {
			_, err = f.sqlite.Append(ctx, evs[:n])
		}
		if err != nil {
			t.Fatal(err)
		}
		evs = evs[n:]
	}
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
	return len(f.events(t, tenant))
}

// storedEvent is what the tests check of an event row.
type storedEvent struct {
	Action, ActorID string
	RecordedAt      time.Time
}

// events reads tenant's event rows straight from the store's table, except
// retention's own events (audit.go): what the fixture and tests put there.
func (f *fixture) events(t testing.TB, tenant string) []storedEvent {
	t.Helper()
	var out []storedEvent
	if f.pg != nil {
		rows, err := testPool(t).Query(context.Background(), `SELECT action, actor_id, recorded_at FROM `+f.pg.Table("events")+` WHERE tenant = $1 AND action NOT LIKE 'retention.%'`, tenant)
		if err != nil {
			t.Fatal(err)
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (storedEvent, error) {
			var e storedEvent
			return e, row.Scan(&e.Action, &e.ActorID, &e.RecordedAt)
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	rows, err := f.sqlite.DB().Query(`SELECT action, actor_id, recorded_at FROM trail_events WHERE tenant = ? AND action NOT LIKE 'retention.%'`, tenant)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var e storedEvent
		var rec int64
		if err := rows.Scan(&e.Action, &e.ActorID, &rec); err != nil {
			t.Fatal(err)
		}
		e.RecordedAt = time.UnixMicro(rec)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
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

// purgedOf counts the leaves rep reports purged, over every log.
func purgedOf(rep *trailseal.Report) int64 {
	var n int64
	for _, l := range rep.Logs {
		n += l.Purged
	}
	return n
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

// putHold places h, failing t if it cannot.
func (f *fixture) putHold(t testing.TB, h Hold) {
	t.Helper()
	if err := f.backend.PutHold(context.Background(), h); err != nil {
		t.Fatal(err)
	}
}

// archive is the fixture's archive, read with its verifier keys.
func (f *fixture) archive() *Archive {
	return &Archive{Target: f.target, Verifiers: f.vs}
}

// verifyArchive verifies the archive's batches of sel against the store's
// log, failing t if it cannot; the report's problems are the caller's.
func (f *fixture) verifyArchive(t testing.TB, sel Selection) *VerifyReport {
	t.Helper()
	vr, err := f.archive().Verify(context.Background(), f.store, sel)
	if err != nil {
		t.Fatal(err)
	}
	return vr
}

// crashAt makes a runner fail with err right after archiving its nth batch,
// before purging it: a crash between archive and purge.
func crashAt(n int, err error) func(*Config) {
	archived := 0
	return func(c *Config) {
		c.afterArchive = func(*Batch) error {
			if archived++; archived == n {
				return err
			}
			return nil
		}
	}
}

// planned is how most run tests start: two years of events of kind, one a
// day, under setPolicies' three policies; a runner of them (changed by mod
// unless nil); and its plan.
func planned(t testing.TB, kind string, mod func(*Config)) (*fixture, *Runner, *Plan) {
	t.Helper()
	f := newFixtureOn(t, kind, 730*Day, 24*time.Hour)
	f.setPolicies(t)
	r := f.runner(t, mod)
	plan, err := r.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return f, r, plan
}

// testPool returns the package's shared pool to the PostgreSQL test server,
// or skips (fails with TRAIL_REQUIRE_SERVICES) when it is not there.
func testPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return testenv.PostgresPool(t, 12)
}

// newPostgresStore returns a migrated store in a schema of its own, dropped
// at the end of the test.
func newPostgresStore(t testing.TB) *trailpgx.Store {
	t.Helper()
	p := testPool(t)
	schema := testenv.FreshSchema(t, p)
	ctx := context.Background()
	st, err := trailpgx.New(ctx, p, &trailpgx.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

// manifestFiles returns the data file keys the manifest at key names (for
// each batch it holds, in order, once each), after checking it.
func (f *fixture) manifestFiles(t testing.TB, key string) []string {
	t.Helper()
	ms, err := f.archive().Manifests(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		for _, file := range m.Files {
			if !slices.Contains(out, file.Key) {
				out = append(out, file.Key)
			}
		}
	}
	return out
}

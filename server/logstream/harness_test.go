package logstream

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailpgx"
	"github.com/trailhq/trail/trailprivacy"
	"github.com/trailhq/trail/trailseal"
	"github.com/trailhq/trail/trailsql"
)

// fixture is a store of one kind with its sealer, privacy layer, stream
// manager and runner.
type fixture struct {
	kind    string
	events  trail.Store
	log     trailseal.Store
	sealer  *trailseal.Sealer
	priv    *trailprivacy.Privacy
	m       *Manager
	r       *Runner
	errs    chan error
	dialer  *Dialer
	counter int
	start   map[string]int64 // stream ID -> its tenant log's size at creation
}

const (
	onSQLite   = "sqlite"
	onPostgres = "postgres"
)

func eachStore(t *testing.T, test func(t *testing.T, f *fixture)) {
	for _, kind := range []string{onSQLite, onPostgres} {
		t.Run(kind, func(t *testing.T) { test(t, newFixture(t, kind)) })
	}
}

func newFixture(t testing.TB, kind string) *fixture {
	t.Helper()
	ctx := context.Background()
	var key [32]byte
	rand.Read(key[:])
	kms, err := trailprivacy.NewLocalKMS(key[:])
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{kind: kind, errs: make(chan error, 1000), dialer: &Dialer{Timeout: 5 * time.Second}, start: map[string]int64{}}
	var st *Store
	switch kind {
	case onSQLite:
		s, err := trailsqlite.Open(ctx, filepath.Join(t.TempDir(), "trail.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		f.events, f.log = s, s
		if f.priv, _, err = (trailprivacy.Setup{KMS: kms}).Open(ctx, s.DB(), "", ""); err != nil {
			t.Fatal(err)
		}
		if st, err = NewSQLiteStore(ctx, s.DB(), s); err != nil {
			t.Fatal(err)
		}
	case onPostgres:
		p := testenv.PostgresPool(t, 16)
		schema := testenv.FreshSchema(t, p)
		s, err := trailpgx.New(ctx, p, &trailpgx.Config{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("pgx", testenv.PostgresDSN())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		ss, err := trailsql.New(ctx, db, &trailpgx.Config{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		f.events, f.log = s, s
		if f.priv, _, err = (trailprivacy.Setup{KMS: kms}).Open(ctx, db, schema, ""); err != nil {
			t.Fatal(err)
		}
		if st, err = NewPostgresStore(ctx, db, schema, ss); err != nil {
			t.Fatal(err)
		}
	}
	skey, _, err := trailseal.GenerateSigningKey(trailseal.DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := trailseal.ParseSigningKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	if f.sealer, err = trailseal.NewSealer(f.log, &trailseal.Config{Signer: signer, Origin: trailseal.DefaultOrigin}); err != nil {
		t.Fatal(err)
	}
	f.m = &Manager{Store: st, KMS: kms, Transform: f.priv, Log: f.log, Dialer: f.dialer}
	f.r = &Runner{Manager: f.m, Reveal: f.priv.Reveal, BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		OnError: func(_ string, err error) {
			select {
			case f.errs <- err:
			default:
			}
		}}
	return f
}

// admin is an all-tenant admin's context.
func adminCtx() context.Context {
	return trail.WithSource(trail.WithActor(context.Background(), trail.Actor{Type: trail.ActorService, ID: "key-test"}), "test")
}

// record appends n events of tenant (through the privacy layer, as ingest
// does) and returns their IDs in order.
func (f *fixture) record(t testing.TB, tenant string, n int) []uuid.UUID {
	t.Helper()
	ctx := context.Background()
	var ids []uuid.UUID
	for n > 0 {
		k := min(n, 500)
		evs := make([]trail.Event, k)
		for i := range evs {
			f.counter++
			action := []string{"user.update", "auth.login", "invoice.create", "project.delete"}[f.counter%4]
			evs[i] = trail.Event{Tenant: tenant, Actor: trail.Actor{Type: trail.ActorUser, ID: fmt.Sprintf("u%d", f.counter%7), Email: "a@example.com", IP: "192.0.2.7"},
				Action: action, Target: trail.Target{Type: "project", ID: fmt.Sprintf("p%d", f.counter)},
				Description: fmt.Sprintf("event %d", f.counter), Metadata: map[string]any{"n": float64(f.counter)}}
			if err := evs[i].Normalize(); err != nil {
				t.Fatal(err)
			}
			if err := f.priv.Transform(ctx, &evs[i]); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, evs[i].ID)
		}
		if _, err := f.events.Append(ctx, evs); err != nil {
			t.Fatal(err)
		}
		n -= k
	}
	return ids
}

// step seals what is pending and runs one delivery pass.
func (f *fixture) step(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	for {
		st, err := f.sealer.Step(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Sealed == 0 {
			break
		}
	}
	if err := f.r.Step(ctx); err != nil {
		t.Fatal(err)
	}
}

// until steps until cond holds; it fails after a generous bound so that a
// broken delivery fails the test instead of hanging it (the bound is never
// what the test waits for).
func (f *fixture) until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			var last error
			select {
			case last = <-f.errs:
			default:
			}
			t.Fatalf("%s: not reached (last delivery error: %v)", what, last)
		}
		f.step(t)
	}
}

func (f *fixture) health(t testing.TB, id string) Health {
	t.Helper()
	s, err := f.m.Get(context.Background(), Caller{All: true}, id)
	if err != nil {
		t.Fatal(err)
	}
	return s.Health
}

func queryAction(tenant, action string) trail.Query {
	return trail.Query{Tenant: tenant, Action: action, Limit: 100}
}

func (f *fixture) size(t testing.TB, tenant string) int64 {
	t.Helper()
	n, err := f.log.TreeSize(context.Background(), trailseal.LogName(tenant))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func logName(tenant string) string { return trailseal.LogName(tenant) }

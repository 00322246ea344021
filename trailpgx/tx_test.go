package trailpgx_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/trailpgx"
)

// business creates a table in the store's schema standing for the caller's
// own data, and returns a function that writes one row of it in tx.
func business(t *testing.T, s *trailpgx.Store) (write func(ctx context.Context, tx pgx.Tx, id string) error, exists func(id string) bool) {
	t.Helper()
	tbl := pgx.Identifier{s.Schema(), "subscriptions"}.Sanitize()
	if _, err := testPool(t).Exec(context.Background(), "CREATE TABLE "+tbl+" (id text PRIMARY KEY, plan text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	write = func(ctx context.Context, tx pgx.Tx, id string) error {
		_, err := tx.Exec(ctx, "INSERT INTO "+tbl+" (id, plan) VALUES ($1, 'pro')", id)
		return err
	}
	exists = func(id string) bool {
		var ok bool
		if err := testPool(t).QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM "+tbl+" WHERE id = $1)", id).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	return write, exists
}

func userCtx() context.Context {
	ctx := trail.WithTenant(context.Background(), "acme")
	ctx = trail.WithActor(ctx, trail.Actor{Type: trail.ActorUser, ID: "42"})
	return trail.WithRequest(ctx, trail.Request{ID: "req-1"})
}

func planChange(subID string) trail.Event {
	return trail.Event{ID: uuid.Must(uuid.NewV7()), Action: "subscription.update", Target: trail.Target{Type: "subscription", ID: subID},
		Description: "Changed subscription plan to pro for tenant acme", Changes: []trail.Change{trail.Changed("plan", "free", "pro")}}
}

func found(t *testing.T, s *trailpgx.Store, id uuid.UUID) bool {
	t.Helper()
	_, err := s.Get(context.Background(), id)
	if err != nil && !errors.Is(err, trail.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// The event exists if and only if the business transaction commits.
func TestRecordTxFate(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	client, err := trail.NewClient[pgx.Tx](s, &trail.Config{Plaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	write, exists := business(t, s)
	p := testPool(t)
	errBusiness := errors.New("business rule says no")

	cases := []struct {
		name   string
		run    func(ctx context.Context, sub string, ev trail.Event) error
		commit bool
	}{
		{"commit", func(ctx context.Context, sub string, ev trail.Event) error {
			return trailpgx.WithTx(ctx, p, func(tx pgx.Tx) error {
				if err := write(ctx, tx, sub); err != nil {
					return err
				}
				_, err := client.RecordTx(ctx, tx, ev)
				return err
			})
		}, true},
		{"rollback on error", func(ctx context.Context, sub string, ev trail.Event) error {
			err := trailpgx.WithTx(ctx, p, func(tx pgx.Tx) error {
				if err := write(ctx, tx, sub); err != nil {
					return err
				}
				if _, err := client.RecordTx(ctx, tx, ev); err != nil {
					return err
				}
				return errBusiness
			})
			if !errors.Is(err, errBusiness) {
				return errors.New("WithTx did not return fn's error")
			}
			return nil
		}, false},
		{"panic", func(ctx context.Context, sub string, ev trail.Event) (err error) {
			defer func() {
				if r := recover(); r != "boom" {
					err = errors.New("panic did not propagate")
				}
			}()
			trailpgx.WithTx(ctx, p, func(tx pgx.Tx) error {
				if err := write(ctx, tx, sub); err != nil {
					return err
				}
				if _, err := client.RecordTx(ctx, tx, ev); err != nil {
					return err
				}
				panic("boom")
			})
			return nil
		}, false},
		{"cancelled context", func(ctx context.Context, sub string, ev trail.Event) error {
			ctx, cancel := context.WithCancel(ctx)
			err := trailpgx.WithTx(ctx, p, func(tx pgx.Tx) error {
				if err := write(ctx, tx, sub); err != nil {
					return err
				}
				if _, err := client.RecordTx(ctx, tx, ev); err != nil {
					return err
				}
				cancel() // the request goes away before commit
				return nil
			})
			if !errors.Is(err, context.Canceled) {
				return errors.New("commit with a cancelled context did not fail with context.Canceled")
			}
			return nil
		}, false},
		{"statement fails after record", func(ctx context.Context, sub string, ev trail.Event) error {
			err := trailpgx.WithTx(ctx, p, func(tx pgx.Tx) error {
				if err := write(ctx, tx, sub); err != nil {
					return err
				}
				if _, err := client.RecordTx(ctx, tx, ev); err != nil {
					return err
				}
				return write(ctx, tx, sub) // duplicate key
			})
			if err == nil {
				return errors.New("duplicate business row did not fail")
			}
			return nil
		}, false},
		{"manual tx, commit", func(ctx context.Context, sub string, ev trail.Event) error {
			tx, err := p.Begin(ctx)
			if err != nil {
				return err
			}
			defer tx.Rollback(ctx)
			if err := write(ctx, tx, sub); err != nil {
				return err
			}
			if _, err := client.RecordTx(ctx, tx, ev); err != nil {
				return err
			}
			return tx.Commit(ctx)
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sub := "sub-" + uuid.NewString()
			ev := planChange(sub)
			if err := c.run(userCtx(), sub, ev); err != nil {
				t.Fatal(err)
			}
			if got := found(t, s, ev.ID); got != c.commit {
				t.Errorf("event stored = %t, want %t", got, c.commit)
			}
			if got := exists(sub); got != c.commit {
				t.Errorf("business row stored = %t, want %t", got, c.commit)
			}
			if c.commit {
				got, _ := s.Get(context.Background(), ev.ID)
				if got.Tenant != "acme" || got.Actor.ID != "42" || got.RequestID != "req-1" {
					t.Errorf("event not filled from the context: tenant %q actor %v request %q", got.Tenant, got.Actor, got.RequestID)
				}
			}
		})
	}
}

// counter counts the statements a connection sends.
type counter struct{ n atomic.Int64 }

func (c *counter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *counter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func traced(t *testing.T) (*pgx.Conn, *counter) {
	t.Helper()
	testPool(t)
	cfg, err := pgx.ParseConfig(testenv.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{}
	cfg.Tracer = c
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn, c
}

// BeginTx sets the context's actor, tenant and request as transaction
// settings in the same message as BEGIN, and RecordTx is one statement.
func TestBeginTxSettingsAndRoundTrips(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	client, _ := trail.NewClient[pgx.Tx](s, &trail.Config{Plaintext: true})
	conn, cnt := traced(t)
	ctx := userCtx()
	tx, err := trailpgx.BeginTx(ctx, conn, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		t.Fatal(err)
	}
	if n := cnt.n.Load(); n != 1 {
		t.Errorf("BeginTx sent %d statements, want 1 (BEGIN and set_config together)", n)
	}
	var actor, tenant, req string
	if err := tx.QueryRow(ctx, "SELECT current_setting('trail.actor'), current_setting('trail.tenant'), current_setting('trail.request_id')").Scan(&actor, &tenant, &req); err != nil {
		t.Fatal(err)
	}
	if actor != "user:42" || tenant != "acme" || req != "req-1" {
		t.Errorf("settings = %q %q %q, want user:42 acme req-1", actor, tenant, req)
	}
	before := cnt.n.Load()
	ev := planChange("sub-1")
	if _, err := client.RecordTx(ctx, tx, ev); err != nil {
		t.Fatal(err)
	}
	if n := cnt.n.Load() - before; n != 1 {
		t.Errorf("RecordTx sent %d statements, want 1", n)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// Local settings end with the transaction.
	if err := conn.QueryRow(ctx, "SELECT current_setting('trail.tenant', true)").Scan(&tenant); err != nil {
		t.Fatal(err)
	}
	if tenant != "" {
		t.Errorf("trail.tenant leaked out of the transaction: %q", tenant)
	}
	if !found(t, s, ev.ID) {
		t.Error("event not stored")
	}
	// A hostile value is a literal, not SQL.
	evil := trail.WithTenant(context.Background(), "x'); DROP TABLE pg_class; --")
	tx, err = trailpgx.BeginTx(evil, conn, pgx.TxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, "SELECT current_setting('trail.tenant')").Scan(&tenant); err != nil || tenant != "x'); DROP TABLE pg_class; --" {
		t.Errorf("quoted setting = %q, %v", tenant, err)
	}
	tx.Rollback(ctx)
}

// The package-level RecordTx uses the default client.
func TestPackageRecordTx(t *testing.T) {
	t.Run("lazy default without a master key", func(t *testing.T) {
		s := newStore(t, nil)
		trailpgx.UseDefaultSchema(s.Schema())
		t.Cleanup(func() { trailpgx.UseDefaultSchema("trail") })
		t.Setenv("TRAIL_MASTER_KEY", "")
		err := trailpgx.WithTx(userCtx(), testPool(t), func(tx pgx.Tx) error {
			_, err := trailpgx.RecordTx(userCtx(), tx, planChange("sub-2"))
			return err
		})
		if err == nil || !strings.Contains(err.Error(), "TRAIL_MASTER_KEY") || !strings.Contains(err.Error(), "trailpgx.NewClient") {
			t.Fatalf("RecordTx with no default client and no key = %v", err)
		}
	})
	t.Run("lazy default", func(t *testing.T) {
		newMasterKey(t)
		s := newStore(t, nil)
		trailpgx.UseDefaultSchema(s.Schema())
		t.Cleanup(func() { trailpgx.UseDefaultSchema("trail") })
		// A month far from any partition: the default client creates it on
		// a side connection of its own.
		ev := planChange("sub-3")
		ev.OccurredAt = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
		err := trailpgx.WithTx(userCtx(), testPool(t), func(tx pgx.Tx) error {
			_, err := trailpgx.RecordTx(userCtx(), tx, ev)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(context.Background(), ev.ID); err != nil || got.Actor.ID != "42" {
			t.Errorf("Get = %+v, %v", got, err)
		}
	})
	s := newStore(t, nil)
	client, _ := trail.NewClient[pgx.Tx](s, &trail.Config{Source: "billing", Plaintext: true})
	trailpgx.SetDefault(client)
	t.Cleanup(func() { trailpgx.SetDefault(nil) })
	ev := planChange("sub-2")
	err := trailpgx.WithTx(userCtx(), testPool(t), func(tx pgx.Tx) error {
		_, err := trailpgx.RecordTx(userCtx(), tx, ev)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(context.Background(), ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Source != "billing" || got.Actor.String() != "user:42" {
		t.Errorf("got source %q actor %s", got.Source, got.Actor)
	}
}

// Batches above CopyThreshold go through COPY, still idempotent and atomic.
func TestCopyBatch(t *testing.T) {
	t.Parallel()
	s := newStore(t, &trailpgx.Config{CopyThreshold: 10})
	ctx := context.Background()
	base := time.Date(2024, 1, 31, 23, 0, 0, 0, time.UTC)
	var evs []trail.Event
	for i := range 50 {
		ev := trail.Event{ID: uuid.Must(uuid.NewV7()), OccurredAt: base.Add(time.Duration(i) * time.Minute), Tenant: "acme",
			Actor: trail.Actor{Type: trail.ActorUser, ID: "u1"}, Action: "user.update", Description: "bulk", Changes: []trail.Change{trail.Changed("n", i, i+1)}}
		if err := ev.Normalize(); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	res, err := s.Append(ctx, evs[:20])
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Duplicate {
			t.Fatal("fresh event reported duplicate")
		}
	}
	// 20 old, 30 new, and a repeat inside the batch.
	batch := append(append([]trail.Event{}, evs...), evs[45])
	res, err = s.Append(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		want := i < 20 || i == 50
		if r.Duplicate != want || r.ID != batch[i].ID {
			t.Errorf("result %d: duplicate %t id %s, want %t %s", i, r.Duplicate, r.ID, want, batch[i].ID)
		}
	}
	page, err := s.Query(ctx, trail.Query{Tenant: "acme", Limit: 1000, Field: "n"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 50 {
		t.Errorf("stored %d events, want 50", len(page.Events))
	}
	// An event PostgreSQL cannot hold fails the whole COPY batch.
	bad := append([]trail.Event{}, evs[:15]...)
	for i := range bad {
		bad[i].ID = uuid.Must(uuid.NewV7())
	}
	bad[14].Metadata = map[string]any{"k": "a\x00b"}
	if _, err := s.Append(ctx, bad); err == nil || !errors.Is(err, trail.ErrInvalid) {
		t.Errorf("NUL in metadata: err = %v, want a validation error", err)
	}
	if found(t, s, bad[0].ID) {
		t.Error("a failed batch wrote its first event")
	}
}

// Partitions appear for whatever month an event claims.
func TestPartitionsOnDemand(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	ctx := context.Background()
	var evs []trail.Event
	for _, at := range []time.Time{time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(2019, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2019, 6, 30, 12, 0, 0, 0, time.UTC)} {
		ev := trail.Event{OccurredAt: at, Tenant: "acme", Actor: trail.Actor{Type: trail.ActorSystem}, Action: "data.import"}
		if err := ev.Normalize(); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	if _, err := s.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	var names []string
	rows, _ := testPool(t).Query(ctx, "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass ORDER BY 1",
		s.Schema()+".events")
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"events_p199912": false, "events_p201906": false}
	for _, n := range names {
		if _, ok := want[n]; ok {
			want[n] = true
		}
	}
	for n, ok := range want {
		if !ok {
			t.Errorf("partition %s missing; have %v", n, names)
		}
	}
	now := time.Now().UTC()
	if ahead := "events_p" + now.AddDate(0, 3, -now.Day()+1).Format("200601"); !contains(names, ahead) {
		t.Errorf("partition %s (3 months ahead) missing; have %v", ahead, names)
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func TestMigrateIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	p := testPool(t)
	schema := testenv.FreshSchema(t, p)
	ctx := context.Background()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := trailpgx.New(ctx, p, &trailpgx.Config{Schema: schema})
			if err == nil {
				err = s.Migrate(ctx)
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
	}
	s, _ := trailpgx.New(ctx, p, &trailpgx.Config{Schema: schema})
	for range 2 {
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate again: %v", err)
		}
	}
	cur, latest, err := s.Version(ctx)
	if err != nil || cur != latest || latest < 1 {
		t.Errorf("Version = %d, %d, %v; want equal and ≥ 1", cur, latest, err)
	}
	var n int
	if err := p.QueryRow(ctx, "SELECT count(*) FROM "+schema+".trail_migrations").Scan(&n); err != nil || n != latest {
		t.Errorf("trail_migrations has %d rows, want %d (%v)", n, latest, err)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := trailpgx.Open(cctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=3", nil)
	if err == nil || !strings.Contains(err.Error(), "cannot connect to PostgreSQL") {
		t.Errorf("Open of a closed port: %v", err)
	}
	_, err = trailpgx.Open(ctx, "postgres://a b:@@/x?%%", nil)
	if err == nil || !strings.Contains(err.Error(), "bad PostgreSQL DSN") {
		t.Errorf("Open of a malformed DSN: %v", err)
	}
	for _, schema := range []string{"Trail", "a-b", "x;drop", "1abc"} {
		if _, err := trailpgx.NewWithAcquirer(ctx, nil, &trailpgx.Config{Schema: schema}); err == nil || !strings.Contains(err.Error(), "Config.Schema") {
			t.Errorf("schema %q: %v", schema, err)
		}
	}
	if _, err := trailpgx.New(ctx, nil, nil); err == nil {
		t.Error("New(nil pool): no error")
	}
}

// Queue puts the audit insert in the caller's own batch.
func TestQueue(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	client, _ := trail.NewClient[pgx.Tx](s, &trail.Config{Plaintext: true})
	_, exists := business(t, s)
	tbl := pgx.Identifier{s.Schema(), "subscriptions"}.Sanitize()
	for _, commit := range []bool{true, false} {
		ctx := userCtx()
		sub := uuid.NewString()
		tx, err := trailpgx.BeginTx(ctx, testPool(t), pgx.TxOptions{})
		if err != nil {
			t.Fatal(err)
		}
		batch := &pgx.Batch{}
		batch.Queue("INSERT INTO "+tbl+" (id, plan) VALUES ($1, 'pro')", sub)
		res, err := trailpgx.Queue(ctx, client, batch, planChange(sub), planChange(sub))
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			t.Fatal(err)
		}
		if res[0].Duplicate || res[1].Duplicate || res[0].RecordedAt.IsZero() {
			t.Errorf("results after the batch: %+v", res)
		}
		if commit {
			err = tx.Commit(ctx)
		} else {
			err = tx.Rollback(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if found(t, s, r.ID) != commit || exists(sub) != commit {
				t.Errorf("commit=%t: event stored %t, row stored %t", commit, found(t, s, r.ID), exists(sub))
			}
		}
	}
}

// A process running for months keeps partitions ahead of its clock without
// another Migrate.
func TestPartitionsKeptAhead(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	later := time.Now().UTC().AddDate(0, 7, 0)
	s2, err := trailpgx.New(context.Background(), testPool(t), &trailpgx.Config{Schema: s.Schema(), Now: func() time.Time { return later }})
	if err != nil {
		t.Fatal(err)
	}
	ev := trail.Event{OccurredAt: time.Now().UTC(), Actor: trail.Actor{Type: trail.ActorSystem}, Action: "clock.tick"}
	ev.Normalize()
	if _, err := s2.Append(context.Background(), []trail.Event{ev}); err != nil {
		t.Fatal(err)
	}
	want := "events_p" + time.Date(later.Year(), later.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, 3, 0).Format("200601")
	var ok bool
	if err := testPool(t).QueryRow(context.Background(), "SELECT to_regclass($1) IS NOT NULL", s.Schema()+"."+want).Scan(&ok); err != nil || !ok {
		t.Errorf("partition %s not created ahead (%v)", want, err)
	}
}

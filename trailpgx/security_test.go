package trailpgx_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/trailpgx"
)

// seed appends events for acme, globex and the platform in March 2025 and
// returns them by tenant.
func seed(t *testing.T, s *trailpgx.Store) map[string][]trail.Event {
	t.Helper()
	out := map[string][]trail.Event{}
	var all []trail.Event
	for i, tenant := range []string{"acme", "acme", "acme", "globex", "globex", ""} {
		ev := trail.Event{OccurredAt: time.Date(2025, 3, 10, 12, i, 0, 0, time.UTC), Tenant: tenant,
			Actor: trail.Actor{Type: trail.ActorUser, ID: "u1"}, Action: "user.update", Description: "secret of " + tenant}
		if err := ev.Normalize(); err != nil {
			t.Fatal(err)
		}
		out[tenant] = append(out[tenant], ev)
		all = append(all, ev)
	}
	if _, err := s.Append(context.Background(), all); err != nil {
		t.Fatal(err)
	}
	return out
}

// asRole runs fn in a transaction as role, rolled back at the end.
func asRole(t *testing.T, role string, fn func(ctx context.Context, tx pgx.Tx) error) error {
	t.Helper()
	ctx := context.Background()
	tx, err := testPool(t).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+pgx.Identifier{role}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	return fn(ctx, tx)
}

func exec(sql string, args ...any) func(ctx context.Context, tx pgx.Tx) error {
	return func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, sql, args...)
		return err
	}
}

func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// tempRole creates a role of its own for one test, member of parent.
func tempRole(t *testing.T, parent string) string {
	t.Helper()
	role := "t_role_" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	ctx := context.Background()
	if _, err := testPool(t).Exec(ctx, fmt.Sprintf("CREATE ROLE %s NOLOGIN IN ROLE %s", role, parent)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := testPool(t).Exec(context.Background(), "DROP ROLE "+role); err != nil {
			t.Errorf("drop role: %v", err)
		}
	})
	return role
}

func TestAppendOnly(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	byTenant := seed(t, s)
	app := tempRole(t, "trail_writer")
	sc := pgx.Identifier{s.Schema()}.Sanitize()
	part := sc + ".events_p202503"
	changes := []string{
		"UPDATE " + sc + ".events SET description = 'forged'",
		"DELETE FROM " + sc + ".events",
		"TRUNCATE " + sc + ".events",
		"UPDATE " + part + " SET description = 'forged'",
		"DELETE FROM " + part,
		"TRUNCATE " + part,
	}
	t.Run("writer role is refused by privileges", func(t *testing.T) {
		for _, q := range append(changes,
			// A partition takes no row but through the parent, whose
			// statement trigger queues every event for sealing.
			"INSERT INTO "+part+" (id, occurred_at, actor_type, action) VALUES (gen_random_uuid(), '2025-03-02', 'system', 'x.y')",
			"SELECT "+sc+".purge_events(now() + interval '1 day')",
			"SELECT set_config('trail.purge', 'on', true); DELETE FROM "+sc+".events") {
			err := asRole(t, app, func(ctx context.Context, tx pgx.Tx) error {
				if strings.HasPrefix(q, "SELECT set_config") {
					if _, err := tx.Exec(ctx, "SELECT set_config('trail.purge', 'on', true)"); err != nil {
						return err
					}
					q = strings.SplitN(q, "; ", 2)[1]
				}
				_, err := tx.Exec(ctx, q)
				return err
			})
			if pgCode(err) != "42501" {
				t.Errorf("%s as %s: err = %v, want insufficient_privilege", q, app, err)
			}
		}
	})
	t.Run("writer role can append", func(t *testing.T) {
		ev := trail.Event{OccurredAt: time.Date(2025, 3, 11, 0, 0, 0, 0, time.UTC), Tenant: "acme", Actor: trail.Actor{Type: trail.ActorSystem}, Action: "user.create"}
		ev.Normalize()
		q, args, finish, err := s.InsertSQL([]trail.Event{ev})
		if err != nil {
			t.Fatal(err)
		}
		err = asRole(t, app, func(ctx context.Context, tx pgx.Tx) error {
			rows, err := tx.Query(ctx, q, args...)
			if err != nil {
				return err
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
			if err != nil {
				return err
			}
			if res := finish(ids); res[0].Duplicate {
				return errors.New("reported duplicate")
			}
			return nil
		})
		if err != nil {
			t.Errorf("insert as writer: %v", err)
		}
	})
	t.Run("owner is stopped by the triggers", func(t *testing.T) {
		for _, q := range changes {
			_, err := testPool(t).Exec(context.Background(), q)
			if err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s as owner: err = %v, want the append-only error", q, err)
			}
		}
	})
	t.Run("a session flag alone does not open the door", func(t *testing.T) {
		err := asRole(t, app, exec("SELECT set_config('trail.purge', 'on', false)"))
		if err != nil {
			t.Fatal(err)
		}
		err = asRole(t, app, exec("DELETE FROM "+sc+".events"))
		if pgCode(err) != "42501" {
			t.Errorf("DELETE after setting trail.purge: %v", err)
		}
	})
	t.Run("purge_events is the one way out", func(t *testing.T) {
		ctx := context.Background()
		var n int64
		if err := testPool(t).QueryRow(ctx, "SELECT "+sc+".purge_events(now() + interval '1 hour', 'globex')").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != int64(len(byTenant["globex"])) {
			t.Errorf("purged %d globex events, want %d", n, len(byTenant["globex"]))
		}
		for _, ev := range byTenant["globex"] {
			if found(t, s, ev.ID) {
				t.Errorf("globex event %s survived the purge", ev.ID)
			}
		}
		for _, ev := range byTenant["acme"] {
			if !found(t, s, ev.ID) {
				t.Errorf("acme event %s purged with globex", ev.ID)
			}
		}
		// All tenants, everything recorded before the cut: whole partitions go.
		if err := testPool(t).QueryRow(ctx, "SELECT "+sc+".purge_events(now() + interval '1 hour')").Scan(&n); err != nil {
			t.Fatal(err)
		}
		var parts, left, queued int
		testPool(t).QueryRow(ctx, "SELECT count(*) FROM pg_class WHERE relname = 'events_p202503' AND relnamespace = $1::regnamespace", s.Schema()).Scan(&parts)
		testPool(t).QueryRow(ctx, "SELECT (SELECT count(*) FROM "+sc+".events), (SELECT count(*) FROM "+sc+".seal_pending)").Scan(&left, &queued)
		if parts != 0 || left != 0 || queued != 0 {
			t.Errorf("after a full purge: partition present %d, events %d, queued %d; want 0 0 0", parts, left, queued)
		}
		// The purge flag does not outlive the function.
		var flag string
		testPool(t).QueryRow(ctx, "SELECT coalesce(current_setting('trail.purge', true), '')").Scan(&flag)
		if flag == "on" {
			t.Error("trail.purge left on")
		}
	})
}

// A tenant-scoped reader connection sees its tenant's rows and nothing else,
// whatever SQL it writes.
func TestTenantIsolationRLS(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	byTenant := seed(t, s)
	sc := pgx.Identifier{s.Schema()}.Sanitize()
	reader := tempRole(t, "trail_reader")

	tenants := func(ctx context.Context, tx pgx.Tx, q string) ([]string, error) {
		rows, err := tx.Query(ctx, q)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, pgx.RowTo[string])
	}
	scoped := func(tenant string, fn func(ctx context.Context, tx pgx.Tx) error) error {
		return asRole(t, reader, func(ctx context.Context, tx pgx.Tx) error {
			if tenant != "-" {
				if _, err := tx.Exec(ctx, "SELECT set_config('trail.tenant', $1, true)", tenant); err != nil {
					return err
				}
			}
			return fn(ctx, tx)
		})
	}
	for _, q := range []string{
		"SELECT tenant FROM " + sc + ".events",
		"SELECT tenant FROM " + sc + ".events WHERE tenant = 'globex'",
		"SELECT tenant FROM " + sc + ".events WHERE tenant = ''",
		"SELECT tenant FROM " + sc + ".events WHERE tenant <> 'acme' OR true",
		"SELECT e.tenant FROM " + sc + ".events e JOIN " + sc + ".events f ON f.tenant <> e.tenant",
		"SELECT tenant FROM " + sc + ".events WHERE to_tsvector('simple', description) @@ plainto_tsquery('simple', 'globex')",
	} {
		err := scoped("acme", func(ctx context.Context, tx pgx.Tx) error {
			got, err := tenants(ctx, tx, q)
			if err != nil {
				return err
			}
			for _, g := range got {
				if g != "acme" {
					t.Errorf("%s: acme's reader saw a row of tenant %q", q, g)
				}
			}
			if q == "SELECT tenant FROM "+sc+".events" && len(got) != len(byTenant["acme"]) {
				t.Errorf("acme's reader saw %d of its %d events", len(got), len(byTenant["acme"]))
			}
			return nil
		})
		if err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
	// Around the parent table: no privilege at all.
	for _, q := range []string{"SELECT tenant FROM " + sc + ".events_p202503", "SELECT event_id FROM " + sc + ".seal_pending",
		"INSERT INTO " + sc + ".events_p202503 (id, occurred_at, tenant, actor_type, action) VALUES (gen_random_uuid(), '2025-03-02', 'acme', 'system', 'x.y')"} {
		err := scoped("acme", exec(q))
		if pgCode(err) != "42501" {
			t.Errorf("%s: err = %v, want insufficient_privilege", q, err)
		}
	}
	// No tenant set, or an empty one, or one left over from an earlier
	// transaction on the same connection: nothing, never everything.
	for _, tenant := range []string{"-", "", "nobody"} {
		err := scoped(tenant, func(ctx context.Context, tx pgx.Tx) error {
			got, err := tenants(ctx, tx, "SELECT tenant FROM "+sc+".events")
			if len(got) != 0 {
				t.Errorf("tenant setting %q: reader saw %d rows (%v), want none", tenant, len(got), got)
			}
			return err
		})
		if err != nil {
			t.Error(err)
		}
	}
}

// A login role bound to a tenant reads that tenant only, even when its own
// SQL sets trail.tenant to another tenant or switches role.
func TestBoundReader(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	byTenant := seed(t, s)
	ctx := context.Background()
	role := "t_login_" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	if _, err := testPool(t).Exec(ctx, "CREATE ROLE "+role+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testPool(t).Exec(context.Background(), "DROP ROLE "+role) })
	if err := s.BindReader(ctx, role, "acme"); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(testenv.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.User = role
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect as %s: %v", role, err)
	}
	defer conn.Close(ctx)
	sc := pgx.Identifier{s.Schema()}.Sanitize()
	for _, attempt := range []string{
		"SELECT 1",
		"SELECT set_config('trail.tenant', 'globex', true)",
		"SELECT set_config('trail.tenant', '', true)",
		"SET LOCAL ROLE trail_reader",
	} {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, attempt); err != nil {
			t.Fatalf("%s: %v", attempt, err)
		}
		rows, err := tx.Query(ctx, "SELECT tenant FROM "+sc+".events")
		if err != nil {
			t.Fatalf("%s: %v", attempt, err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(byTenant["acme"]) {
			t.Errorf("after %q: bound reader saw %d rows, want acme's %d", attempt, len(got), len(byTenant["acme"]))
		}
		for _, g := range got {
			if g != "acme" {
				t.Errorf("after %q: bound reader saw tenant %q", attempt, g)
			}
		}
		tx.Rollback(ctx)
	}
	if _, err := conn.Exec(ctx, "SELECT * FROM "+sc+".reader_tenants"); pgCode(err) != "42501" {
		t.Errorf("reader_tenants readable by a reader: %v", err)
	}
	if err := s.BindReader(ctx, role, "bad tenant!"); err == nil {
		t.Error("BindReader accepted an invalid tenant")
	}
}

// After retention drops a month the store still remembers, appending to that
// month again recreates it.
func TestAppendAfterPartitionDropped(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	ctx := context.Background()
	mk := func() trail.Event {
		ev := trail.Event{OccurredAt: time.Date(2020, 5, 5, 0, 0, 0, 0, time.UTC), Tenant: "acme", Actor: trail.Actor{Type: trail.ActorSystem}, Action: "data.import"}
		ev.Normalize()
		return ev
	}
	if _, err := s.Append(ctx, []trail.Event{mk()}); err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := testPool(t).QueryRow(ctx, "SELECT "+pgx.Identifier{s.Schema()}.Sanitize()+".purge_events(now() + interval '1 hour')").Scan(&n); err != nil || n != 1 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	ev := mk()
	res, err := s.Append(ctx, []trail.Event{ev})
	if err != nil || res[0].Duplicate {
		t.Fatalf("append after the partition was dropped: %+v, %v", res, err)
	}
	if !found(t, s, ev.ID) {
		t.Error("event not stored")
	}
}

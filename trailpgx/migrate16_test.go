package trailpgx_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/trailpgx"
	"github.com/trailhq/trail/trailseal/sealtest"
)

// TestMigrate16 migrates a schema that holds events written before 0016
// (through event_ids, queued by its trigger, one of them with a leaf) and
// checks what 0016 promises on that data: every partition gets its id key,
// the leaf its occurred_at, event_ids is gone, the queue is kept, a retry
// of an old event is a duplicate, a new event is queued by the trigger on
// events, and the queue seals.
func TestMigrate16(t *testing.T) {
	ctx := context.Background()
	s, p, schema := unmigratedStore(t)
	if err := trailpgx.MigrateTo(ctx, s, 15); err != nil {
		t.Fatal(err)
	}
	sc := pgx.Identifier{schema}.Sanitize()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := p.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Six events the way 0001-0015 wrote them, in two months.
	old := sealtest.Events(t, "acme", 0, 6)
	for i := range old {
		if i >= 3 {
			old[i].OccurredAt = old[i].OccurredAt.AddDate(0, 1, 0)
		}
	}
	if err := s.EnsurePartitions(ctx, old); err != nil {
		t.Fatal(err)
	}
	for i := range old {
		ev := old[i]
		exec(`WITH ins AS (INSERT INTO `+sc+`.event_ids (id, occurred_at, tenant) VALUES ($1, $2, $3) RETURNING id)
			INSERT INTO `+sc+`.events (id, occurred_at, recorded_at, tenant, actor_type, actor_id, action, target_type, target_id, outcome)
			SELECT id, $2, $2, $3, $4, $5, $6, $7, $8, $9 FROM ins`, ev.ID, ev.OccurredAt, ev.Tenant, string(ev.Actor.Type), ev.Actor.ID, ev.Action,
			ev.Target.Type, ev.Target.ID, string(ev.Outcome))
	}
	// The first event as if sealed: a leaf (of another log: only its
	// occurred_at backfill is checked) and out of the queue.
	exec(`INSERT INTO `+sc+`.seal_leaves (log, seq, event_id, hash) VALUES ('other', 0, $1, $2)`, old[0].ID, make([]byte, 32))
	exec(`DELETE FROM `+sc+`.seal_pending WHERE event_id = $1`, old[0].ID)
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var idKeys, words, parts, queued int
	var leafAt time.Time
	var idsTable *string
	if err := p.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM pg_class c JOIN pg_index x ON x.indexrelid = c.oid
			WHERE c.relnamespace = $1::regnamespace AND x.indisunique AND c.relname LIKE 'events\_p%\_id'),
		(SELECT count(*) FROM pg_statistic_ext WHERE stxnamespace = $1::regnamespace AND stxname LIKE 'events\_p%\_words'),
		(SELECT count(*) FROM pg_inherits WHERE inhparent = $2::regclass),
		(SELECT count(*) FROM `+sc+`.seal_pending),
		(SELECT occurred_at FROM `+sc+`.seal_leaves WHERE log = 'other'),
		to_regclass($3)::text`, schema, schema+".events", schema+".event_ids").Scan(&idKeys, &words, &parts, &queued, &leafAt, &idsTable); err != nil {
		t.Fatal(err)
	}
	if idKeys != parts || words != parts || parts == 0 {
		t.Errorf("%d id keys and %d words' statistics for %d partitions", idKeys, words, parts)
	}
	if queued != 5 {
		t.Errorf("%d events queued after the migration, want 5", queued)
	}
	if !leafAt.Equal(old[0].OccurredAt) {
		t.Errorf("leaf occurred_at %v, want %v", leafAt, old[0].OccurredAt)
	}
	if idsTable != nil {
		t.Errorf("event_ids still there: %s", *idsTable)
	}
	// A retry of an old event is a duplicate; a new one is stored and queued.
	res, err := s.Append(ctx, append([]trail.Event{old[4]}, sealtest.Events(t, "acme", 6, 1)...))
	if err != nil || !res[0].Duplicate || res[1].Duplicate {
		t.Fatalf("append after the migration: %+v %v", res, err)
	}
	got, err := s.Get(ctx, old[4].ID)
	if err != nil || got.ID != old[4].ID {
		t.Fatalf("Get of an old event: %+v %v", got, err)
	}
	p.QueryRow(ctx, "SELECT count(*) FROM "+sc+".seal_pending").Scan(&queued)
	if queued != 6 {
		t.Errorf("%d queued, want 6", queued)
	}
	sl, _ := testSealer(t, s)
	if st, err := sl.SealAll(ctx); err != nil || st.Sealed != 6 {
		t.Fatalf("seal: %+v %v", st, err)
	}
	// The sealed first event retried in another month: a duplicate.
	again := old[0]
	again.OccurredAt = again.OccurredAt.AddDate(0, 2, 0)
	res, err = s.Append(ctx, []trail.Event{again})
	if err != nil || !res[0].Duplicate {
		t.Fatalf("sealed event retried two months later: %+v %v", res, err)
	}
}

// TestSchemaVersion: a schema never migrated is version 0 and asking
// creates nothing; after Migrate it is the latest.
func TestSchemaVersion(t *testing.T) {
	ctx := context.Background()
	s, p, schema := unmigratedStore(t)
	cur, latest, err := s.SchemaVersion(ctx)
	if err != nil || cur != 0 || latest < 16 {
		t.Fatalf("before Migrate: %d of %d, %v", cur, latest, err)
	}
	var n int
	if err := p.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema).Scan(&n); err != nil || n != 0 {
		t.Fatalf("SchemaVersion created the schema (%d, %v)", n, err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if cur, latest, err = s.SchemaVersion(ctx); err != nil || cur != latest {
		t.Fatalf("after Migrate: %d of %d, %v", cur, latest, err)
	}
}

// unmigratedStore returns a store over a fresh schema name that is not
// migrated (the schema does not exist yet), its pool and the name.
func unmigratedStore(t *testing.T) (*trailpgx.Store, *pgxpool.Pool, string) {
	t.Helper()
	p := testPool(t)
	schema := testenv.FreshSchema(t, p)
	s, err := trailpgx.New(context.Background(), p, &trailpgx.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	return s, p, schema
}

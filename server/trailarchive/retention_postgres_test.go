package trailarchive

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
)

// pgEvent is an event of tenant at occurred, recorded at recorded.
func pgEvent(tenant, action, actor string, occurred, recorded time.Time) trail.Event {
	return trail.Event{ID: uuid.Must(uuid.NewV7()), OccurredAt: occurred, RecordedAt: recorded, Tenant: tenant,
		Actor: trail.Actor{Type: trail.ActorUser, ID: actor}, Action: action, Outcome: trail.OutcomeSuccess,
		Target: trail.Target{Type: "project", ID: "p1"}, SchemaVersion: 1}
}

// month returns n events spread over the month starting at m (occurred and
// recorded the same instant), of acme and globex, half auth.login (deleted
// by the tests' policy), half user.update (archived).
func month(m time.Time, n int) []trail.Event {
	var evs []trail.Event
	for i := range n {
		at := m.Add(time.Duration(i) * 20 * time.Hour)
		tenant, action := "acme", "user.update"
		if i%2 == 1 {
			tenant = "globex"
		}
		if i%3 == 0 {
			action = "auth.login"
		}
		evs = append(evs, pgEvent(tenant, action, fmt.Sprintf("u%d", i%4), at, at))
	}
	return evs
}

// partitions returns the events table's partitions.
func (f *fixture) partitions(t testing.TB) []string {
	t.Helper()
	ps, err := f.pg.Partitions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// A month whose every event is past retention loses its partition (detached
// and dropped, gone from pg_inherits); a month with one young event and one
// with one held event are purged row by row. seal_purges records every
// purged seq with its batch's manifest key, the log still verifies with the
// purged events reported as purged, the archive verifies, and an event
// arriving later for the dropped month gets a new partition.
// With the default chunk, and with chunks of 7 events (a partly expired
// month then goes in several transactions, a wholly expired one still in
// one that drops its partition): the same outcome.
func TestPostgresPartitionDrop(t *testing.T) {
	t.Parallel()
	rows := map[int]int{}
	for _, chunk := range []int{0, 7} {
		t.Run(fmt.Sprintf("chunk=%d", chunk), func(t *testing.T) { rows[chunk] = testPartitionDrop(t, chunk) })
	}
	if rows[7] <= rows[0] {
		t.Fatalf("seal_purges rows: %d in chunks of 7, %d by default: the partly expired months were not chunked", rows[7], rows[0])
	}
}

// testPartitionDrop runs the partition test with PurgeChunk chunk and
// returns the number of seal_purges rows (one per purge call, log and batch).
func testPartitionDrop(t *testing.T, chunk int) int {
	ctx := context.Background()
	f := openFixture(t, onPostgres)
	f.backend.(*Postgres).PurgeChunk = chunk
	jan, feb, mar := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	young := pgEvent("globex", "user.update", "u9", feb.Add(48*time.Hour), now.Add(-time.Hour))
	held := pgEvent("acme", "user.update", "held", mar.Add(50*time.Hour), mar.Add(50*time.Hour))
	recent := month(now.AddDate(0, 0, -20), 5)
	var evs []trail.Event
	evs = append(evs, month(jan, 30)...)
	evs = append(evs, month(feb, 30)...)
	evs = append(evs, young)
	evs = append(evs, month(mar, 30)...)
	evs = append(evs, held)
	evs = append(evs, recent...)
	f.appendEvents(t, evs)
	f.seal(t)
	for _, p := range []Policy{{Keep: 30 * Day, Then: ThenArchive}, {Action: "auth.*", Keep: 30 * Day, Then: ThenDelete}} {
		if err := f.backend.SetPolicy(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	f.putHold(t, Hold{Tenant: "acme", Subject: "user:held", Reason: "case 7"})
	before := f.partitions(t)
	for _, p := range []string{"events_p202501", "events_p202502", "events_p202503"} {
		if !slices.Contains(before, p) {
			t.Fatalf("partition %s missing before the run: %v", p, before)
		}
	}
	r := f.runner(t, nil)
	plan, err := r.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a, d := plan.Totals()
	if a+d != 90 || plan.Held != 1 || a == 0 || d == 0 {
		t.Fatalf("plan: archive %d delete %d held %d, want 90 in all, 1 held", a, d, plan.Held)
	}
	res, err := r.Run(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	if res.Purged != 90 || res.Archived != a {
		t.Fatalf("run: %+v", res)
	}
	after := f.partitions(t)
	if slices.Contains(after, "events_p202501") {
		t.Fatalf("the expired month's partition is still attached: %v", after)
	}
	var exists bool
	if err := testPool(t).QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", f.pg.Schema()+".events_p202501").Scan(&exists); err != nil || exists {
		t.Fatalf("the detached partition was not dropped: %v %v", exists, err)
	}
	if !slices.Contains(after, "events_p202502") || !slices.Contains(after, "events_p202503") {
		t.Fatalf("a month with a young or held event lost its partition: %v", after)
	}
	// What stays: the young, the held and the recent events.
	left := 0
	for _, tenant := range []string{"acme", "globex"} {
		left += f.count(t, tenant)
	}
	if left != 2+len(recent) {
		t.Fatalf("%d events left, want %d", left, 2+len(recent))
	}
	for _, id := range []uuid.UUID{young.ID, held.ID} {
		if _, err := f.pg.Get(ctx, id); err != nil {
			t.Fatalf("event %s kept by retention is gone: %v", id, err)
		}
	}
	// seal_purges: every purged seq once, with its batch's manifest key (or
	// "" when deleted); the ranges of the dropped partition among them.
	want := map[string]map[int64]string{}
	for _, b := range plan.Batches {
		if want[b.Log] == nil {
			want[b.Log] = map[int64]string{}
		}
		for _, l := range b.Leaves {
			want[b.Log][l.Seq] = b.Key
		}
	}
	for log, seqs := range want {
		rs, err := f.backend.Purged(ctx, log)
		if err != nil {
			t.Fatal(err)
		}
		got := map[int64]string{}
		for _, r := range rs {
			for q := r.From; q < r.To; q++ {
				if _, dup := got[q]; dup {
					t.Fatalf("log %s seq %d recorded as purged twice", log, q)
				}
				got[q] = r.Archive
			}
		}
		if len(got) != len(seqs) {
			t.Fatalf("log %s: %d purged seqs recorded, want %d", log, len(got), len(seqs))
		}
		for q, key := range seqs {
			if g, ok := got[q]; !ok || g != key {
				t.Fatalf("log %s seq %d: recorded archive %q (%v), want %q", log, q, g, ok, key)
			}
		}
	}
	var rows, cutoffs int
	if err := testPool(t).QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE cutoff = $1) FROM `+f.pg.Table("seal_purges"), now).Scan(&rows, &cutoffs); err != nil {
		t.Fatal(err)
	}
	if rows == 0 || cutoffs != rows {
		t.Fatalf("seal_purges: %d rows, %d with the run's clock as cutoff", rows, cutoffs)
	}
	// The log verifies, purged events reported as purged; so does the archive.
	if purged := purgedOf(f.verifyStore(t)); purged != res.Purged {
		t.Fatalf("verifier counts %d purged, want %d", purged, res.Purged)
	}
	if vr := f.verifyArchive(t, Selection{}); len(vr.Problems) != 0 || vr.Events != a {
		t.Fatalf("archive verify: %d events (want %d), problems %v", vr.Events, a, vr.Problems)
	}
	// A late event for the dropped month gets its partition back.
	late := pgEvent("acme", "user.update", "u1", jan.Add(time.Hour), now)
	if _, err := f.pg.Append(ctx, []trail.Event{late}); err != nil {
		t.Fatalf("append into the dropped month: %v", err)
	}
	// A second run finds nothing more.
	plan2, err := r.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a, d := plan2.Totals(); a+d != 0 {
		t.Fatalf("second plan: %d + %d", a, d)
	}
	return rows
}

// A hold placed between plan and purge stops the purge of the month holding
// the held tenant's first event, whatever else that month holds: ErrHeld,
// and nothing removed (every month of the fixture holds acme events).
func TestPostgresHoldBetweenPlanAndPurge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f, r, plan := planned(t, onPostgres, nil)
	f.putHold(t, Hold{Tenant: "acme", Reason: "audit"})
	before := map[string]int{}
	for _, tenant := range []string{"acme", "globex", ""} {
		before[tenant] = f.count(t, tenant)
	}
	parts := f.partitions(t)
	res, err := r.Run(ctx, plan)
	if !errors.Is(err, ErrHeld) || res.Purged != 0 {
		t.Fatalf("run after a hold: %+v, %v", res, err)
	}
	for tenant, n := range before {
		if got := f.count(t, tenant); got != n {
			t.Fatalf("tenant %q: %d events, had %d", tenant, got, n)
		}
	}
	if got := f.partitions(t); !slices.Equal(got, parts) {
		t.Fatalf("partitions changed: %v, were %v", got, parts)
	}
	var n int
	if err := testPool(t).QueryRow(ctx, `SELECT count(*) FROM `+f.pg.Table("seal_purges")).Scan(&n); err != nil || n != 0 {
		t.Fatalf("seal_purges has %d rows (%v)", n, err)
	}
	f.verifyStore(t)
}

// The append-only guard stands (per statement since 0006, on the table and
// on each partition): the writer role can neither DELETE events nor call the
// purge function nor read the retention tables, and even the owner's plain
// DELETE, UPDATE or TRUNCATE is refused outside purge_event_ids, whatever
// it matches.
func TestPostgresPurgeGuard(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixtureOn(t, onPostgres, 10*Day, 24*time.Hour)
	events := f.pg.Table("events")
	var id uuid.UUID
	if err := testPool(t).QueryRow(ctx, "SELECT id FROM "+events+" LIMIT 1").Scan(&id); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, role, sql string
		args            []any
		want            string // SQLSTATE
	}{
		{"writer deletes", "trail_writer", "DELETE FROM " + events + " WHERE id = $1", []any{id}, "42501"},
		{"writer purges", "trail_writer", "SELECT " + f.pg.Table("purge_event_ids") + "(ARRAY[$1::uuid], ARRAY[''], now())", []any{id}, "42501"},
		{"writer reads holds", "trail_writer", "SELECT count(*) FROM " + f.pg.Table("retention_holds"), nil, "42501"},
		{"writer sets a policy", "trail_writer", "INSERT INTO " + f.pg.Table("retention_policies") + " (keep_hours, then_do) VALUES (1, 'delete')", nil, "42501"},
		{"owner deletes", "", "DELETE FROM " + events + " WHERE id = $1", []any{id}, "42501"},
		{"owner truncates", "", "TRUNCATE " + events, nil, "42501"},
		{"owner deletes from a partition", "", "DELETE FROM " + f.pg.Table(f.partitions(t)[0]), nil, "42501"},
		{"owner updates nothing", "", "UPDATE " + events + " SET description = 'x' WHERE false", nil, "42501"},
		{"owner deletes from a partition by ID", "", "DELETE FROM " + f.pg.Table(f.partitions(t)[0]) + " WHERE id = $1", []any{id}, "42501"},
		{"owner truncates seal_purges", "", "TRUNCATE " + f.pg.Table("seal_purges"), nil, "42501"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := pgx.BeginFunc(ctx, testPool(t), func(tx pgx.Tx) error {
				if tt.role != "" {
					if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+tt.role); err != nil {
						return err
					}
				}
				_, err := tx.Exec(ctx, tt.sql, tt.args...)
				return err
			})
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != tt.want {
				t.Fatalf("%s: %v, want SQLSTATE %s", tt.sql, err, tt.want)
			}
		})
	}
	if _, err := f.pg.Get(ctx, id); err != nil {
		t.Fatalf("the event is gone: %v", err)
	}
}

// A crash between archiving and purging on PostgreSQL: every batch is
// archived before anything is purged, so the crash leaves every event in
// the store; the re-run reads the manifests back and purges everything once.
func TestPostgresCrashBeforeBulkPurge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	crash := errors.New("injected crash")
	f, r, plan := planned(t, onPostgres, crashAt(5, crash))
	wantA, wantD := plan.Totals()
	before := f.count(t, "acme") + f.count(t, "globex") + f.count(t, "")
	res1, err := r.Run(ctx, plan)
	if !errors.Is(err, crash) || res1.Purged != 0 {
		t.Fatalf("crashed run: %+v, %v", res1, err)
	}
	if got := f.count(t, "acme") + f.count(t, "globex") + f.count(t, ""); got != before {
		t.Fatalf("the crash lost %d events", before-got)
	}
	var progress [][2]int64
	r2 := f.runner(t, func(c *Config) { c.Progress = func(d, t int64) { progress = append(progress, [2]int64{d, t}) } })
	plan2, err := r2.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res2, err := r2.Run(ctx, plan2)
	if err != nil || res2.Purged != wantA+wantD || res2.Archived != wantA {
		t.Fatalf("re-run: %+v, %v; want %d archived, %d purged", res2, err, wantA, wantA+wantD)
	}
	// Progress only grows, and ends at the total once the purge is done.
	for i := 1; i < len(progress); i++ {
		if progress[i][0] < progress[i-1][0] {
			t.Fatalf("progress went back: %v", progress)
		}
	}
	if last := progress[len(progress)-1]; len(progress) < 2 || last[0] != wantA+wantD || last[1] != wantA+wantD {
		t.Fatalf("progress: %v", progress)
	}
	if vr := f.verifyArchive(t, Selection{}); len(vr.Problems) != 0 || vr.Events != wantA {
		t.Fatalf("archive after re-run: %d events (want %d, no duplicate), %v", vr.Events, wantA, vr.Problems)
	}
	f.verifyStore(t)
}

// Purge by one batch (the Backend method) on PostgreSQL skips events
// already gone and unsealed ones.
func TestPostgresPurgeSkipsGoneAndUnsealed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixtureOn(t, onPostgres, 10*Day, 12*time.Hour)
	unsealed := pgEvent("acme", "user.update", "u1", now.Add(-400*Day), now.Add(-400*Day))
	f.appendEvents(t, []trail.Event{unsealed})
	leaves, err := f.store.Leaves(ctx, "acme", 0, 3)
	if err != nil || len(leaves) != 3 {
		t.Fatal(leaves, err)
	}
	n, err := f.backend.Purge(ctx, "acme", leaves[:2], "")
	if err != nil || n != 2 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	// Again, with the third leaf and an unsealed event passed as a leaf.
	fake := trailseal.SealedEvent{Leaf: trailseal.Leaf{Log: "acme", Seq: 99, EventID: unsealed.ID}, Event: &unsealed}
	n, err = f.backend.Purge(ctx, "acme", append(leaves, fake), "")
	if err != nil || n != 1 {
		t.Fatalf("second purge: %d, %v (want 1: the third leaf only)", n, err)
	}
	if _, err := f.pg.Get(ctx, unsealed.ID); err != nil {
		t.Fatalf("an unsealed event was purged: %v", err)
	}
	rs, err := f.backend.Purged(ctx, "acme")
	if err != nil || len(rs) != 2 || rs[0].From != 0 || rs[0].To != 2 || rs[1].From != 2 || rs[1].To != 3 {
		t.Fatalf("purged: %+v, %v", rs, err)
	}
}

// A fully expired month whose partition cannot be detached in time (a long
// transaction reads the events table, so DETACH's ACCESS EXCLUSIVE lock is
// not granted within purge_event_ids' lock_timeout) is purged row by row
// instead: the run succeeds, the reader is never blocked, and writers queue
// behind the waiting DETACH for at most the lock_timeout.
func TestPostgresPartitionBusyFallsBackToRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := openFixture(t, onPostgres)
	jan := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	f.appendEvents(t, month(jan, 20))
	f.seal(t)
	if err := f.backend.SetPolicy(ctx, Policy{Keep: 30 * Day, Then: ThenDelete}); err != nil {
		t.Fatal(err)
	}
	reader, err := testPool(t).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Rollback(ctx)
	var n int
	if err := reader.QueryRow(ctx, "SELECT count(*) FROM "+f.pg.Table("events")+" WHERE action NOT LIKE 'retention.%'").Scan(&n); err != nil || n != 20 {
		t.Fatal(n, err)
	}
	r := f.runner(t, nil)
	plan, err := r.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := r.Run(ctx, plan)
	took := time.Since(start)
	if err != nil || res.Purged != 20 {
		t.Fatalf("run: %+v, %v", res, err)
	}
	if took > 10*time.Second {
		t.Fatalf("the purge waited %s for the lock", took)
	}
	if !slices.Contains(f.partitions(t), "events_p202501") {
		t.Fatal("the partition was detached under a reader")
	}
	if err := reader.QueryRow(ctx, "SELECT count(*) FROM "+f.pg.Table("events")).Scan(&n); err != nil {
		t.Fatalf("the reader failed: %v", err)
	}
	reader.Rollback(ctx)
	if f.count(t, "acme")+f.count(t, "globex") != 0 {
		t.Fatal("rows left")
	}
	f.verifyStore(t)
}

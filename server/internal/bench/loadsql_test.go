package bench

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
)

// TestLoadSQL loads the same generated events through Trail's path and
// through the sql loader and checks that the two tables are the same: rows
// (all but recorded_at, stamped by each generator), the id keys and indexes
// on every partition, the seal trigger back on, and rows that Get and Query
// decode alike.
func TestLoadSQL(t *testing.T) {
	pgAvailable(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	end := time.Now().UTC().Truncate(time.Second)
	const events = 20_000
	newRun := func(load string) *run {
		cfg, err := Config{DSN: testenv.PostgresDSN(), Events: events, BatchSize: 2000, Load: load, Workloads: []string{"w3"}}.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		var b [4]byte
		crand.Read(b[:])
		r := &run{cfg: cfg, pool: pool, prefix: "trail_bench_" + hex.EncodeToString(b[:]), end: end}
		t.Cleanup(r.dropAll)
		return r
	}
	viaSQL, viaTrail := newRun(LoadSQL), newRun(LoadTrail)
	if err := viaSQL.loadSQL(ctx); err != nil {
		t.Fatal(err)
	}
	if err := viaTrail.load(ctx); err != nil {
		t.Fatal(err)
	}
	a, b := viaSQL.store.Schema(), viaTrail.store.Schema()
	count := func(sql string) int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	for _, c := range []struct {
		sql  string
		want int
	}{
		{"SELECT count(*) FROM " + a + ".events", events},
		{"SELECT count(DISTINCT id) FROM " + a + ".events", events},
		{"SELECT count(*) FROM " + a + ".seal_pending", 0}, // the load queues nothing for the sealer
		{"SELECT count(DISTINCT recorded_at) FROM " + a + ".events", 1},
		{"SELECT count(*) FROM (SELECT " + compareColumns + " FROM " + a + ".events EXCEPT SELECT " + compareColumns + " FROM " + b + ".events) x", 0},
		{"SELECT count(*) FROM (SELECT " + compareColumns + " FROM " + b + ".events EXCEPT SELECT " + compareColumns + " FROM " + a + ".events) x", 0},
		{"SELECT count(*) FROM " + a + ".events WHERE tenant = 't00000'", count("SELECT count(*) FROM " + b + ".events WHERE tenant = 't00000'")},
		{"SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = '" + a + "'::regnamespace AND NOT (i.indisvalid AND i.indisready)", 0},
		{"SELECT count(*) FROM pg_trigger WHERE tgrelid = '" + a + ".events'::regclass AND tgname = 'events_seal_queue' AND tgenabled = 'O'", 1},
	} {
		if got := count(c.sql); got != c.want {
			t.Errorf("%s: %d, want %d", c.sql, got, c.want)
		}
	}
	// Every index of both tables and of each partition, named and defined
	// as Trail's own.
	if x, y := indexDefs(t, pool, a), indexDefs(t, pool, b); !slices.Equal(x, y) || len(x) < 8*len(viaSQL.monthly())/2 {
		t.Errorf("indexes differ:\nsql:   %s\ntrail: %s", strings.Join(x, "\n       "), strings.Join(y, "\n       "))
	}
	// Rows decode through the store as Trail's own do.
	if len(viaSQL.samples) == 0 {
		t.Fatal("no samples kept")
	}
	for _, p := range viaSQL.samples[:20] {
		x, err := viaSQL.store.Get(ctx, p.id)
		if err != nil {
			t.Fatal(err)
		}
		y, err := viaTrail.store.Get(ctx, p.id)
		if err != nil {
			t.Fatal(err)
		}
		if x.RecordedAt.IsZero() || x.Tenant != p.tenant || x.Description == "" {
			t.Errorf("Get %s: %+v", p.id, x)
		}
		x.RecordedAt = y.RecordedAt
		if !eventsEqual(x, y) {
			t.Errorf("Get %s:\nsql   %+v\ntrail %+v", p.id, x, y)
		}
		page, err := viaSQL.store.Query(ctx, trail.Query{Tenant: p.tenant, TargetType: p.targetType, TargetID: p.targetID})
		if err != nil || !slices.ContainsFunc(page.Events, func(e trail.Event) bool { return e.ID == p.id }) && page.Next == "" {
			t.Errorf("object history of %s/%s does not hold %s (%v)", p.targetType, p.targetID, p.id, err)
		}
	}
}

// compareColumns are the events columns both loads write alike.
const compareColumns = `id, occurred_at, schema_version, tenant, actor_type, actor_id, actor_name, actor_email, actor_ip,
	actor_user_agent, on_behalf_of, action, target_type, target_id, target_name, outcome, description,
	changes, changed_fields, metadata, request_id, trace_id, source`

// indexDefs lists the definitions of every index in schema, the schema's
// name taken out.
func indexDefs(t *testing.T, pool *pgxpool.Pool, schema string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT tablename || ': ' || indexdef FROM pg_indexes
		WHERE schemaname = $1 AND starts_with(tablename, 'events') ORDER BY 1`, schema)
	if err != nil {
		t.Fatal(err)
	}
	defs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for i := range defs {
		defs[i] = strings.ReplaceAll(defs[i], schema, "S")
	}
	return defs
}

func eventsEqual(a, b trail.Event) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// TestRunSQLKeep runs W3 and the UI over the sql loader with Keep: the
// questions find rows, and the loaded schema (only it) stays.
func TestRunSQLKeep(t *testing.T) {
	pgAvailable(t)
	ctx := context.Background()
	res, err := Run(ctx, Config{DSN: testenv.PostgresDSN(), Events: 3000, Queries: 6, Load: LoadSQL, Keep: true, Workloads: []string{"w3", "ui"}})
	if err != nil {
		t.Fatal(err)
	}
	prefix, _ := res[0].Extra["schema_prefix"].(string)
	kept := prefix + "_w3sql"
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, testenv.PostgresDSN())
		if err == nil {
			conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{kept}.Sanitize()+" CASCADE")
			conn.Close(ctx)
		}
	})
	if n := benchSchemas(t, prefix); n != 1 {
		t.Errorf("%d schemas %s* after a run with Keep, want 1", n, prefix)
	}
	if n := benchSchemas(t, kept); n != 1 {
		t.Errorf("schema %s not kept", kept)
	}
	n := map[string]int{}
	for _, r := range res {
		n[r.Workload]++
		if r.Workload == "w3" && r.Name == "newest_of_tenant" && (r.Ops != 6 || r.Extra["mean_rows"].(float64) < 1) {
			t.Errorf("w3 over the sql load: %+v", r)
		}
	}
	if n["w3"] != 11 || n["ui"] != len(uiPages) || res[0].Extra["load"] != LoadSQL {
		t.Errorf("results per workload %v, load %v", n, res[0].Extra["load"])
	}

	// Reused: the same table answers again, with its own events counted
	// (the ui's audit.read events included), and stays.
	res, err = Run(ctx, Config{DSN: testenv.PostgresDSN(), Queries: 4, Schema: kept, Workloads: []string{"w3"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res[1:] {
		ops := 4 // the seed comparison's cold sessions: a fifth, at least 1
		if strings.HasSuffix(r.Name, "_vs_seed_cold") {
			ops = 1
		}
		if r.Workload != "w3" || r.Ops != ops || r.Events <= 3000 || r.Name == "newest_of_tenant" && r.Extra["mean_rows"].(float64) < 1 {
			t.Errorf("w3 over the reused schema: %+v", r)
		}
	}
	// 5 questions and 6 beside the seed table (whose schema is dropped).
	if len(res) != 12 || benchSchemas(t, kept) != 1 {
		t.Errorf("%d results; schema kept: %d", len(res), benchSchemas(t, kept))
	}
	if _, err := Run(ctx, Config{DSN: "x", Schema: kept, Workloads: []string{"w2"}}); err == nil {
		t.Error("w2 over a reused schema accepted")
	}
}

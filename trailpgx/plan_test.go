package trailpgx_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/trailpgx"
)

// synth makes n realistic events: tenants with a Zipf skew, users per
// tenant, 40 actions, UUID targets, 60–200-character descriptions, spread
// over the year before end. The same seed gives the same events.
func synth(n int, end time.Time, seed uint64) []trail.Event {
	r := rand.New(rand.NewPCG(seed, 1))
	const tenants, users = 1000, 20000
	zipf := rand.NewZipf(r, 1.1, 1, tenants-1)
	verbs := []string{"create", "update", "delete", "view", "export"}
	nouns := []string{"user", "subscription", "invoice", "project", "apikey", "team", "webhook", "document"}
	words := strings.Fields("plan changed from free to pro for the tenant by admin after review of billing owner request quota limit raised lowered renewed cancelled invited removed role member")
	targets := make([]string, 5000)
	for i := range targets {
		targets[i] = uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "t%d", i)).String()
	}
	span := int64(365 * 24 * time.Hour)
	out := make([]trail.Event, n)
	for i := range out {
		noun := nouns[r.IntN(len(nouns))]
		var desc strings.Builder
		for desc.Len() < 60+r.IntN(140) {
			desc.WriteString(words[r.IntN(len(words))])
			desc.WriteByte(' ')
		}
		at := end.Add(-time.Duration(r.Int64N(span))).UTC().Truncate(time.Microsecond)
		id, _ := uuid.NewV7()
		ev := trail.Event{
			ID: id, OccurredAt: at, RecordedAt: at.Add(time.Second),
			Tenant:      fmt.Sprintf("t%04d", zipf.Uint64()),
			Actor:       trail.Actor{Type: trail.ActorUser, ID: fmt.Sprintf("u%d", r.IntN(users)), Name: "Some User", IP: "10.0.0.1"},
			Action:      noun + "." + verbs[r.IntN(len(verbs))],
			Target:      trail.Target{Type: noun, ID: targets[r.IntN(len(targets))]},
			Outcome:     trail.OutcomeSuccess,
			Description: strings.TrimSpace(desc.String()),
			RequestID:   fmt.Sprintf("req-%d", i),
			Source:      "bench", SchemaVersion: trail.SchemaVersion,
		}
		if r.IntN(3) == 0 {
			ev.Changes = []trail.Change{trail.Changed("plan", "free", "pro")}
		}
		// The pseudonyms the privacy layer writes with an encrypted name
		// and e-mail (trail.Lookup): one per user and tenant.
		copy(ev.Lookup.ActorEmail[:], "e"+ev.Tenant+ev.Actor.ID)
		copy(ev.Lookup.ActorName[:], "n"+ev.Tenant+ev.Actor.ID)
		ev.Lookup.ActorEmail[15], ev.Lookup.ActorName[15] = 1, 1
		out[i] = ev
	}
	return out
}

// TestPlans loads a realistic volume and checks that the key questions are
// answered through indexes: any sequential scan of an events partition
// fails the test.
func TestPlans(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 100k events")
	}
	t.Parallel()
	s := newStore(t, nil)
	ctx := context.Background()
	end := time.Now().UTC()
	t0 := time.Now()
	evs := synth(100_000, end, 7)
	// A busy user of the big tenant: its events all in that tenant, which
	// only migration 0007's statistics tell the planner.
	const busy = "u_busy"
	for _, ev := range synth(300, end, 8) {
		ev.Tenant, ev.Actor.ID = "t0000", busy
		ev.OccurredAt = end.Add(-time.Duration(rand.Int64N(int64(25 * 24 * time.Hour)))).UTC().Truncate(time.Microsecond)
		ev.RecordedAt = ev.OccurredAt.Add(time.Second)
		evs = append(evs, ev)
	}
	// An object of a mid-sized tenant with a long history, a dozen events a
	// month: its page must still be read from events_target in order. (On
	// this data the planner does so even without Query's settings; on the
	// 10 M bench schema it read every match and sorted, BENCHMARKS.md.)
	const busyObject = "sub_busy"
	for _, ev := range synth(200, end, 9) {
		ev.Tenant, ev.Target = "t0020", trail.Target{Type: "subscription", ID: busyObject}
		evs = append(evs, ev)
	}
	t.Logf("synth: %v", time.Since(t0))
	t0 = time.Now()
	for i := 0; i < len(evs); i += 10_000 {
		if _, err := s.Append(ctx, evs[i:min(i+10_000, len(evs))]); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("append: %v", time.Since(t0))
	t0 = time.Now()
	p := testPool(t)
	if _, err := p.Exec(ctx, "VACUUM (ANALYZE) "+s.Schema()+".events"); err != nil {
		t.Fatal(err)
	}
	t.Logf("vacuum: %v", time.Since(t0))
	var bytes, heap int64
	if err := p.QueryRow(ctx, `SELECT sum(pg_total_relation_size(c.oid)), sum(pg_relation_size(c.oid)) FROM pg_class c
		WHERE c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = $1::regclass)`,
		s.Schema()+".events").Scan(&bytes, &heap); err != nil {
		t.Fatal(err)
	}
	t.Logf("storage: %d bytes per event with indexes (%d heap only)", bytes/int64(len(evs)), heap/int64(len(evs)))
	if testing.Verbose() {
		rows, err := p.Query(ctx, `SELECT regexp_replace(i.relname, '^events_p[0-9]+_', ''), sum(pg_relation_size(i.oid))::bigint
			FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
			WHERE x.indrelid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = $1::regclass)
			GROUP BY 1 ORDER BY 2 DESC`, s.Schema()+".events")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var name string
			var size int64
			rows.Scan(&name, &size)
			t.Logf("  index %-50s %4d bytes per event", name, size/int64(len(evs)))
		}
		rows.Close()
	}
	// Seq scans of empty partitions (the months created ahead) cost nothing.
	nonEmpty := map[string]bool{}
	rows, err := p.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = $1::regclass AND c.reltuples > 0`, s.Schema()+".events")
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		nonEmpty[n] = true
	}
	// Each partition's index by the partitioned index it belongs to.
	rows, err = p.Query(ctx, `SELECT c.relname, pc.relname FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class pc ON pc.oid = i.inhparent JOIN pg_index x ON x.indexrelid = pc.oid
		WHERE x.indrelid = $1::regclass`, s.Schema()+".events")
	if err != nil {
		t.Fatal(err)
	}
	parentIndex := map[string]string{}
	for rows.Next() {
		var part, parent string
		if err := rows.Scan(&part, &parent); err != nil {
			t.Fatal(err)
		}
		parentIndex[part] = parent
	}
	if rows.Close(); rows.Err() != nil || len(parentIndex) == 0 {
		t.Fatalf("partition indexes: %v (%d)", rows.Err(), len(parentIndex))
	}
	top, mid := "t0000", "t0020"
	var user, target string
	var email trail.Digest
	for _, ev := range evs {
		if ev.Tenant == mid {
			user, target, email = ev.Actor.ID, ev.Target.ID, ev.Lookup.ActorEmail
			break
		}
	}
	var topTarget string
	for _, ev := range evs {
		if ev.Tenant == top {
			topTarget = ev.Target.ID
			break
		}
	}
	month := time.Date(end.Year(), end.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0)
	queries := []struct {
		name   string
		q      *trail.Query
		c      *trail.CountQuery
		get    bool
		reader string // run as the reader role scoped to this tenant
		// noSort: the index order answers it; a Sort node means the
		// planner expected too few rows and reads them all.
		noSort bool
		// index: every index the plan reads belongs to this one (and it
		// reads at least one).
		index string
		// skip: a subject across tenants, found tenant by tenant (a
		// Recursive Union) and read a page per tenant in index order: the
		// only Sort merges those pages.
		skip bool
	}{
		{name: "newest of a big tenant", q: &trail.Query{Tenant: top, Limit: 50}, index: "events_tenant_time"},
		{name: "newest of a tenant", q: &trail.Query{Tenant: mid, Limit: 50}, index: "events_tenant_time"},
		{name: "next page of a tenant", q: &trail.Query{Tenant: top, Limit: 50, Cursor: trail.EncodeCursor(trail.Cursor{OccurredAt: end.Add(-40 * 24 * time.Hour), ID: uuid.Max})}, index: "events_tenant_time"},
		{name: "a tenant's month", q: &trail.Query{Tenant: top, Since: month, Until: month.AddDate(0, 1, 0), Limit: 50}, index: "events_tenant_time"},
		{name: "user in tenant, 30 days", q: &trail.Query{Tenant: mid, ActorType: trail.ActorUser, ActorID: user, Since: end.Add(-30 * 24 * time.Hour), Limit: 50}, index: "events_actor"},
		{name: "busy user of a big tenant, 30 days", q: &trail.Query{Tenant: top, ActorType: trail.ActorUser, ActorID: busy, Since: end.Add(-30 * 24 * time.Hour), Limit: 50}, noSort: true, index: "events_actor"},
		{name: "busy user of a big tenant, all time", q: &trail.Query{Tenant: top, ActorType: trail.ActorUser, ActorID: busy, Limit: 50}, noSort: true, index: "events_actor"},
		{name: "object history", q: &trail.Query{Tenant: mid, TargetType: "subscription", TargetID: target, Limit: 50}, index: "events_target"},
		{name: "object history of a busy object", q: &trail.Query{Tenant: mid, TargetType: "subscription", TargetID: busyObject, Limit: 50}, index: "events_target"},
		{name: "object history in a big tenant", q: &trail.Query{Tenant: top, TargetType: "subscription", TargetID: topTarget, Limit: 50}, index: "events_target"},
		{name: "object history, a year", q: &trail.Query{Tenant: mid, TargetType: "subscription", TargetID: target, Since: end.AddDate(-1, 0, 0), Until: end, Limit: 50}, index: "events_target"},
		// Without a tenant (an all-tenant key, the admin UI's actor page):
		// migration 0008's indexes lead with the subject, so these do not
		// walk events_time and filter.
		{name: "user in all tenants", q: &trail.Query{AllTenants: true, ActorType: trail.ActorUser, ActorID: user, Limit: 50}, index: "events_actor", skip: true},
		{name: "busy user in all tenants", q: &trail.Query{AllTenants: true, ActorType: trail.ActorUser, ActorID: busy, Limit: 50}, index: "events_actor", skip: true},
		{name: "busy user in all tenants, 30 days", q: &trail.Query{AllTenants: true, ActorType: trail.ActorUser, ActorID: busy, Since: end.Add(-30 * 24 * time.Hour), Limit: 50}, index: "events_actor", skip: true},
		{name: "object history in all tenants", q: &trail.Query{AllTenants: true, TargetType: "subscription", TargetID: target, Limit: 50}, index: "events_target", skip: true},
		{name: "user by e-mail pseudonym in a tenant", q: &trail.Query{Tenant: mid, ActorEmailDigest: email, Limit: 50}, index: "events_actor_email_digest"},
		{name: "a name pseudonym in a tenant, 30 days", q: &trail.Query{Tenant: mid, ActorNameDigest: evs[len(evs)-1].Lookup.ActorName, Since: end.Add(-30 * 24 * time.Hour), Limit: 50}},
		{name: "counts of a tenant's plan changes over a month", c: &trail.CountQuery{Tenant: mid, Field: "plan", Since: month, Until: month.AddDate(0, 1, 0)}},
		{name: "text in a tenant", q: &trail.Query{Tenant: mid, Text: "quota", Limit: 50}},
		{name: "changed field in a tenant", q: &trail.Query{Tenant: mid, Field: "plan", Limit: 50}},
		{name: "action prefix in a tenant", q: &trail.Query{Tenant: mid, Action: "subscription.*", Limit: 50}},
		{name: "newest of all tenants", q: &trail.Query{AllTenants: true, Limit: 50}},
		{name: "counts of a big tenant over a month", c: &trail.CountQuery{Tenant: top, Since: month, Until: month.AddDate(0, 1, 0)}},
		{name: "counts of a tenant over a month", c: &trail.CountQuery{Tenant: mid, Since: month, Until: month.AddDate(0, 1, 0)}},
		{name: "get by id", get: true},
		{name: "reader role: all it may see", q: &trail.Query{AllTenants: true, Limit: 50}, reader: mid},
	}
	// Explained on a connection of their own: the generic cases prepare
	// statements by name, which must not reach the shared pool's
	// connections (DEALLOCATE there broke pgx's statement cache for the
	// tests that got the connection next).
	conn, err := pgx.Connect(ctx, testenv.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	for qi, c := range queries {
		var sql string
		var args []any
		var err error
		switch {
		case c.q != nil:
			sql, args, err = s.QuerySQL(*c.q)
		case c.c != nil:
			sql, args, err = s.CountsSQL(*c.c)
		default:
			sql, args = trailpgx.GetSQL(s, evs[12345].ID)
		}
		if err != nil {
			t.Fatal(err)
		}
		var plan []byte
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Rolled back before the schema is dropped even when the test
		// fails with the transaction open (the drop would wait on its
		// locks); a no-op after the Rollback below.
		t.Cleanup(func() { tx.Rollback(ctx) })
		if c.reader != "" {
			if _, err := tx.Exec(ctx, "SET LOCAL ROLE trail_reader; SELECT set_config('trail.tenant', '"+c.reader+"', true)"); err != nil {
				t.Fatal(err)
			}
		}
		// The shapes Query plans once per connection are explained as it
		// runs them: prepared, under its settings, with the generic plan.
		generic := c.q != nil && trailpgx.GenericShape(*c.q)
		// An object's history is planned with its values, under the
		// settings that leave the planner no sort.
		ordered := c.q != nil && trailpgx.ObjectShape(*c.q)
		if ordered {
			if _, err := tx.Exec(ctx, trailpgx.OrderedSettings); err != nil {
				t.Fatal(err)
			}
		}
		if generic {
			name := "plan_q" + strconv.Itoa(qi)
			if _, err := tx.Exec(ctx, trailpgx.GenericSettings+"; PREPARE "+name+" AS "+sql); err != nil {
				t.Fatal(err)
			}
			// EXECUTE takes its values as literals (a utility statement
			// has no parameters of its own).
			params := make([]string, len(args))
			for i, a := range args {
				switch v := a.(type) {
				case string:
					params[i] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
				case time.Time:
					params[i] = "'" + v.UTC().Format(time.RFC3339Nano) + "'"
				case pgtype.UUID:
					params[i] = "'" + uuid.UUID(v.Bytes).String() + "'"
				case int:
					params[i] = strconv.Itoa(v)
				default:
					t.Fatalf("%s: argument %d: %T", c.name, i+1, a)
				}
			}
			sql, args = "EXECUTE "+name+"("+strings.Join(params, ", ")+")", nil
		}
		err = tx.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+sql, args...).Scan(&plan)
		tx.Rollback(ctx)
		if generic && err == nil && !strings.Contains(string(plan), `"Subplans Removed"`) && c.q.Since.IsZero() && c.q.Cursor == "" {
			// The horizon bound prunes the months created ahead when
			// the plan starts (the generic plan holds every partition).
			t.Errorf("%s: no partition pruned at execution\n%s", c.name, plan)
		}
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var doc []struct{ Plan node }
		if err := json.Unmarshal(plan, &doc); err != nil {
			t.Fatal(err)
		}
		var nodes []string
		used, wrong := 0, map[string]bool{}
		skipped := false
		if c.skip && doc[0].Plan.Type == "Limit" {
			for i := range doc[0].Plan.Plans {
				if doc[0].Plan.Plans[i].Type == "Sort" {
					doc[0].Plan.Plans[i].Type = "Sort (merging the pages)"
				}
			}
		}
		doc[0].Plan.walk(func(n *node) {
			if n.Type == "Recursive Union" {
				skipped = true
			}
			if c.skip && n.Type == "Sort" {
				t.Errorf("%s: sorts a tenant's rows instead of reading the index in order\n%s", c.name, plan)
			}
			if n.Relation != "" || n.Index != "" {
				nodes = append(nodes, n.Type+" "+n.Relation+" "+n.Index)
			}
			if c.index != "" && n.Index != "" {
				if parent := cmp.Or(parentIndex[n.Index], n.Index); parent != c.index {
					wrong[parent] = true
				} else {
					used++
				}
			}
			if n.Type == "Sort" && (c.noSort || generic || ordered) {
				t.Errorf("%s: sorts instead of reading the index in order\n%s", c.name, plan)
			}
			if n.Type == "Seq Scan" && nonEmpty[n.Relation] {
				t.Errorf("%s: sequential scan of %s\n%s", c.name, n.Relation, plan)
			}
		})
		if c.skip && !skipped {
			t.Errorf("%s: does not find the tenants one by one\n%s", c.name, plan)
		}
		if c.index != "" && (used == 0 || len(wrong) > 0) {
			t.Errorf("%s: reads %s, want only %s\n%s", c.name, slices.Sorted(maps.Keys(wrong)), c.index, plan)
		}
		if len(nodes) > 4 {
			nodes = append(nodes[:4], fmt.Sprintf("… %d more", len(nodes)-4))
		}
		t.Logf("%-36s %s", c.name, strings.Join(nodes, "; "))
	}
}

type node struct {
	Type     string `json:"Node Type"`
	Relation string `json:"Relation Name"`
	Index    string `json:"Index Name"`
	Plans    []node `json:"Plans"`
}

func (n *node) walk(fn func(*node)) {
	fn(n)
	for i := range n.Plans {
		n.Plans[i].walk(fn)
	}
}

package trailpgx

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/trailhq/trail"
)

// Get returns the event with id: one probe of each month partition's id
// key (the ID alone does not say which month holds it).
func (s *Store) Get(ctx context.Context, id uuid.UUID) (trail.Event, error) {
	var ev trail.Event
	err := s.with(ctx, func(c *pgx.Conn) error {
		var err error
		ev, err = scanEvent(c.QueryRow(ctx, s.sql.get, pgtype.UUID{Bytes: id, Valid: true}).Scan)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return trail.Event{}, fmt.Errorf("%w: %s", trail.ErrNotFound, id)
	}
	if err != nil {
		return trail.Event{}, fmt.Errorf("trailpgx: get %s: %w", id, err)
	}
	return ev, nil
}

// where builds the conditions shared by Query and Counts.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, arg any) {
	w.args = append(w.args, arg)
	w.conds = append(w.conds, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(w.args))))
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

func (w *where) common(tenant, action string, since, until time.Time) {
	if tenant != "" {
		w.add("tenant = ?", tenant)
	}
	w.action(action)
	if !since.IsZero() {
		w.add("occurred_at >= ?", since.UTC())
	}
	if !until.IsZero() {
		w.add("occurred_at < ?", until.UTC())
	}
}

// filters adds every filter of q but its cursor: Query's and Counts'
// conditions.
func (w *where) filters(q trail.Query) {
	w.common(q.Tenant, q.Action, q.Since, q.Until)
	for _, c := range []struct{ col, v string }{{"actor_type", string(q.ActorType)}, {"actor_id", q.ActorID},
		{"actor_name", q.ActorName}, {"actor_email", q.ActorEmail}, {"target_type", q.TargetType},
		{"target_id", q.TargetID}, {"outcome", string(q.Outcome)}} {
		if c.v != "" {
			w.add(c.col+" = ?", c.v)
		}
	}
	// The e-mail digest's index (migration 0014) is partial on IS NOT
	// NULL, which equality implies; the name's has none (0015).
	if !q.ActorNameDigest.IsZero() {
		w.add("actor_name_digest = ?", q.ActorNameDigest[:])
	}
	if !q.ActorEmailDigest.IsZero() {
		w.add("actor_email_digest = ?", q.ActorEmailDigest[:])
	}
	if q.Field != "" {
		// The cardinality test is events_changed_fields' predicate
		// (migration 0013: only rows with changes are indexed).
		w.add("changed_fields @> ARRAY[?::text] AND cardinality(changed_fields) > 0", q.Field)
	}
	if q.Metadata != "" {
		// ASCII letters only are folded, as in SQLite's LIKE.
		w.add(`translate(metadata::text, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') LIKE ?`, q.MetadataPattern())
	}
	if q.Text != "" {
		// description <> '' is events_description's predicate (0013).
		w.add("description <> '' AND to_tsvector('simple'::regconfig, description) @@ plainto_tsquery('simple'::regconfig, ?)", q.Text)
	}
}

// action matches an action filter (trail.ParseActionFilter; the query was
// validated, so it parses): exact actions by equality, a prefix pattern
// with starts_with, any other pattern with LIKE (* becomes %, and _, which
// actions may hold, is escaped; actions hold no % or backslash).
func (w *where) action(action string) {
	f, _ := trail.ParseActionFilter(action)
	cond := func(p string) string {
		if !strings.Contains(p, "*") {
			w.args = append(w.args, p)
			return "action = $" + strconv.Itoa(len(w.args))
		}
		if pre, ok := trail.PatternPrefix(p); ok {
			w.args = append(w.args, pre)
			return "starts_with(action, $" + strconv.Itoa(len(w.args)) + ")"
		}
		w.args = append(w.args, strings.ReplaceAll(strings.ReplaceAll(p, "_", `\_`), "*", "%"))
		return "action LIKE $" + strconv.Itoa(len(w.args))
	}
	var ors []string
	for _, p := range f.Include {
		ors = append(ors, cond(p))
	}
	switch len(ors) {
	case 0:
	case 1:
		w.conds = append(w.conds, ors[0])
	default:
		w.conds = append(w.conds, "("+strings.Join(ors, " OR ")+")")
	}
	for _, p := range f.Exclude {
		w.conds = append(w.conds, "NOT "+cond(p))
	}
}

// futureHorizon is how far ahead of the store's clock queries look: far more
// than trail.MaxFutureSkew, to forgive clocks that disagree.
const futureHorizon = 24 * time.Hour

// QuerySQL returns the statement and arguments Query runs for q (after
// validation), for EXPLAIN and for other drivers. The limit fetched is one
// more than the page size, to know whether another page follows.
func (s *Store) QuerySQL(q trail.Query) (string, []any, error) {
	if err := q.Validate(); err != nil {
		return "", nil, err
	}
	var w where
	w.filters(q)
	// No event can claim a time far ahead of the clock (Validate allows
	// trail.MaxFutureSkew): bounding the scan there lets the planner skip the
	// partitions created ahead, which are empty.
	if horizon := s.cfg.Now().UTC().Add(futureHorizon); q.Until.IsZero() || q.Until.After(horizon) {
		if q.Cursor == "" {
			w.add("occurred_at < ?", horizon)
		}
	}
	if q.Cursor != "" {
		c, err := trail.DecodeCursor(q.Cursor)
		if err != nil {
			return "", nil, err
		}
		// The plain bound lets the planner prune newer partitions; the row
		// comparison is the exact keyset position.
		w.add("occurred_at <= ?", c.OccurredAt)
		w.args = append(w.args, pgtype.UUID{Bytes: c.ID, Valid: true})
		w.conds = append(w.conds, fmt.Sprintf("(occurred_at, id) < ($%d, $%d)", len(w.args)-1, len(w.args)))
	}
	order := " ORDER BY occurred_at DESC, id DESC LIMIT " + strconv.Itoa(q.EffectiveLimit()+1)
	if genericShape(q) || objectShape(q) {
		// A parameter: one prepared statement (and one cached plan) per
		// shape on a connection, whatever page sizes its callers ask for.
		w.args = append(w.args, q.EffectiveLimit()+1)
		order = " ORDER BY occurred_at DESC, id DESC LIMIT $" + strconv.Itoa(len(w.args))
	}
	events := s.schema + ".events"
	if q.Tenant == "" && (q.ActorType != "" && q.ActorID != "" || q.TargetType != "" && q.TargetID != "") {
		// An actor or an object in every tenant: events_actor and
		// events_target (migration 0008) hold it as one range per tenant,
		// each in page order, but PostgreSQL 15 can neither skip from tenant
		// to tenant nor merge the ranges in order: it would read all of a
		// busy actor's events and sort them, or walk events_time and filter
		// (25–60 ms for a big tenant's user at 10 M events). So: find the
		// subject's tenants, one index probe each (the recursive CTE is the
		// skip scan), read one page per tenant in index order, and merge
		// those. A subject lives in one tenant, or a few.
		cond := w.sql()
		sql := "WITH RECURSIVE subject_tenants(t) AS ((SELECT tenant FROM " + events + cond + " ORDER BY tenant LIMIT 1)" +
			" UNION ALL SELECT (SELECT tenant FROM " + events + cond + " AND tenant > subject_tenants.t ORDER BY tenant LIMIT 1)" +
			" FROM subject_tenants WHERE subject_tenants.t IS NOT NULL)" +
			" SELECT e.* FROM subject_tenants CROSS JOIN LATERAL (SELECT " + selectColumns + " FROM " + events + cond +
			" AND tenant = subject_tenants.t" + order + ") e" + order
		return sql, w.args, nil
	}
	return "SELECT " + selectColumns + " FROM " + events + w.sql() + order, w.args, nil
}

// customPlan makes a read run as an unnamed statement, which PostgreSQL
// plans with the actual parameter values every time. pgx otherwise prepares
// and caches the statement, and after five executions PostgreSQL may switch
// to a generic plan built without knowing the tenant. With skewed tenants
// that plan is wrong for the big ones: `trail bench` W3 measured a tenant's
// newest page through the generic plan reading all 45 000 rows of the
// largest tenant and sorting them (180 ms at 300 000 events, a p95 of 1.4 s
// at 1 M), where the custom plan reads 101 index entries (under 1 ms).
// Planning every time costs a few milliseconds; the wrong plan costs
// seconds. The shapes whose one right plan can be forced go through
// genericRead instead.
func customPlan(args []any) []any {
	return append([]any{pgx.QueryExecModeExec}, args...)
}

// genericShape reports whether q reads one index in its order whatever the
// values: a tenant's events, between optional times, from an optional
// cursor (only events_tenant_time leads with the tenant and holds the time
// order). It is the question asked most (a tenant's newest page), and
// planning is most of its cost: PostgreSQL opens and costs every index of
// every monthly partition the statement may touch, 2–7 ms for a year of
// partitions against 0.1–0.8 ms of execution. genericRead plans it once
// per connection, from the connection's second read of it (firstRead).
//
// A subject in a tenant (a user, an object's history) is not: without the
// values the planner cannot tell events_actor or events_target from walking
// the tenant's events_tenant_time and filtering, and where tenants are many
// and small it picks the walk, which reads a big tenant's whole history (an
// object's history at 100k events over 10,000 tenants: p95 2.6 → 10 ms).
func genericShape(q trail.Query) bool {
	return q.Tenant != "" && withoutBounds(q) == trail.Query{Tenant: q.Tenant}
}

// withoutBounds is q without its time bounds, cursor and page size: what
// the shapes are told apart by.
func withoutBounds(q trail.Query) trail.Query {
	q.Since, q.Until, q.Cursor, q.Limit = time.Time{}, time.Time{}, "", 0
	return q
}

// genericSettings holds, for the rest of its (implicit) transaction, what
// makes a generic plan safe: the plan is built once without the values, and
// without bitmap scans or sorts the only plan left reads the partitions'
// index in order and stops at the page's end (an Append of index scans, the
// newest partition first, then an incremental sort on id). Left to itself
// the planner would, for a tenant it guesses small, read a bitmap of the
// tenant's rows and sort them: right for small tenants, a whole month's
// rows for a big one. TestPlans checks the plan on skewed data.
const genericSettings = `SELECT set_config('plan_cache_mode', 'force_generic_plan', true),
	set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true)`

// objectShape reports whether q is an object's history in a tenant, from
// optional times and cursor. It keeps a custom plan (see genericShape), but
// under orderedSettings: without them the planner reads every month's
// matches of the object and sorts them, fetching each row from the heap
// (191 rows for a page of 50 at 10 M events, 0.4–0.9 ms warm, more when the
// pages are not cached); without sorts or bitmaps it reads events_target
// in order, newest partition first, and stops at the page's end (0.16 ms).
// With the values known, the plan is the object's: the walk of the
// tenant's events_tenant_time that made the generic plan a trap is chosen
// only for a tenant the planner knows to be small.
func objectShape(q trail.Query) bool {
	return q.Tenant != "" && q.TargetType != "" && q.TargetID != "" &&
		withoutBounds(q) == trail.Query{Tenant: q.Tenant, TargetType: q.TargetType, TargetID: q.TargetID}
}

// orderedSettings is genericSettings with a custom plan: the statement is
// prepared and cached by pgx, and planned with its values every time.
const orderedSettings = `SELECT set_config('plan_cache_mode', 'force_custom_plan', true),
	set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true)`

// genericRead runs sql with genericSettings in one pipeline: one round
// trip, and the settings end with the pipeline's implicit transaction, even
// when the read fails. The statement is prepared and cached by pgx as usual
// (or not, under the connection's exec mode: then it is planned every time,
// and is only slower); PostgreSQL plans it at its first execution on the
// connection and again only when the events table's partitions change.
// fetch calls it from a connection's second read of the shape on.
func genericRead(ctx context.Context, c *pgx.Conn, sql string, args []any) ([]trail.Event, error) {
	return readWith(ctx, c, genericSettings, sql, args)
}

// readWith runs sql after settings, a SELECT of set_config(…, true) calls,
// in one pipeline: the settings end with its implicit transaction.
func readWith(ctx context.Context, c *pgx.Conn, settings, sql string, args []any) ([]trail.Event, error) {
	b := &pgx.Batch{}
	b.Queue(settings)
	b.Queue(sql, args...)
	br := c.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	evs, err := scanRows(rows)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return evs, err
}

// Query returns one page of events matching q, newest first.
func (s *Store) Query(ctx context.Context, q trail.Query) (trail.Page, error) {
	if err := q.Validate(); err != nil {
		return trail.Page{}, err
	}
	limit := q.EffectiveLimit()
	var page trail.Page
	var err error
	page.Events, err = s.fetch(ctx, q)
	if err != nil {
		return trail.Page{}, err
	}
	if len(page.Events) > limit {
		page.Events = page.Events[:limit]
		last := page.Events[limit-1]
		page.Next = trail.EncodeCursor(trail.Cursor{OccurredAt: last.OccurredAt, ID: last.ID})
	}
	return page, nil
}

// fetch returns the events of QuerySQL(q): up to q's limit plus one.
func (s *Store) fetch(ctx context.Context, q trail.Query) ([]trail.Event, error) {
	sql, args, err := s.QuerySQL(q)
	if err != nil {
		return nil, err
	}
	var evs []trail.Event
	err = s.with(ctx, func(c *pgx.Conn) (err error) {
		switch {
		case objectShape(q):
			evs, err = readWith(ctx, c, orderedSettings, sql, args)
		case !genericShape(q):
			evs, err = customRead(ctx, c, sql, args)
		case firstUse(c, sql):
			evs, err = s.firstRead(ctx, c, q, sql, args)
		default:
			evs, err = genericRead(ctx, c, sql, args)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("trailpgx: query: %w", err)
	}
	return evs, nil
}

// customRead runs a read with a custom plan (customPlan).
func customRead(ctx context.Context, c *pgx.Conn, sql string, args []any) ([]trail.Event, error) {
	rows, err := c.Query(ctx, sql, customPlan(args)...)
	if err != nil {
		return nil, err
	}
	return scanRows(rows) // scanrow.go: the rows' wire bytes, as the sealer reads them
}

// A generic plan is built over every partition the statement may touch,
// and the first one a session builds opens each of them and their indexes:
// 33–38 ms for a tenant's newest page at 10 M events over 17 monthly
// partitions, where the custom plan of the last two months opens two
// (14–18 ms). A program that opens a connection per request, or the CLI,
// would pay that on every read. So the first read of a generic shape on a
// connection runs with custom plans, the newest page in two steps
// (firstRead), and the connection plans the shape generically from its
// second read on. firstUse keeps the shapes a connection has read, in the
// connection's CustomData.
const (
	plannedKey = "trailpgx.planned"
	// maxPlanned bounds what a connection remembers: a store has a handful
	// of shapes (bounds present or not) per schema; past the bound a shape
	// stays on its first path, custom plans.
	maxPlanned = 64
)

// firstUse reports whether c has not read the statement sql before, and
// remembers it (up to maxPlanned statements).
func firstUse(c *pgx.Conn, sql string) bool {
	cd := c.PgConn().CustomData()
	m, _ := cd[plannedKey].(map[string]bool)
	if m == nil {
		m = make(map[string]bool)
		cd[plannedKey] = m
	}
	if m[sql] {
		return false
	}
	if len(m) < maxPlanned {
		m[sql] = true
	}
	return true
}

// firstRead reads q, a generic shape whose statement is sql, with custom
// plans. A first page with no lower bound looks first from the start of the
// previous UTC month, so that the statement is planned over two monthly
// partitions instead of every one: a tenant with a full page there is
// answered by it, and the rest of another's page comes from before it.
func (s *Store) firstRead(ctx context.Context, c *pgx.Conn, q trail.Query, sql string, args []any) ([]trail.Event, error) {
	now := s.cfg.Now().UTC()
	start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0)
	if q.Cursor != "" || !q.Since.IsZero() || !q.Until.IsZero() && !q.Until.After(start) {
		return customRead(ctx, c, sql, args)
	}
	limit := q.EffectiveLimit()
	recent, older := q, q
	recent.Since = start
	sql, args, err := s.QuerySQL(recent)
	if err != nil {
		return nil, err
	}
	evs, err := customRead(ctx, c, sql, args)
	if err != nil || len(evs) > limit {
		return evs, err
	}
	// The window holds no more than a page: the rest, from before it.
	older.Until = start
	older.Limit = max(1, limit-len(evs)) // 0 would mean the default
	if sql, args, err = s.QuerySQL(older); err != nil {
		return nil, err
	}
	rest, err := customRead(ctx, c, sql, args)
	return append(evs, rest...), err
}

// CountsSQL returns the statement and arguments Counts runs for q.
func (s *Store) CountsSQL(q trail.CountQuery) (string, []any, error) {
	if err := q.Validate(); err != nil {
		return "", nil, err
	}
	var w where
	w.filters(q.Query())
	zone := "'UTC'"
	if q.Zone != nil {
		w.args = append(w.args, q.Zone.String())
		zone = fmt.Sprintf("$%d", len(w.args))
	}
	return "SELECT date_trunc('day', occurred_at AT TIME ZONE " + zone + ") AS day, action, count(*) FROM " + s.schema + ".events" +
		w.sql() + " GROUP BY 1, 2 ORDER BY 1, 2", w.args, nil
}

// Counts returns the number of events per day (UTC, or q.Zone's) and
// action, by day then action.
func (s *Store) Counts(ctx context.Context, q trail.CountQuery) ([]trail.Count, error) {
	sql, args, err := s.CountsSQL(q)
	if err != nil {
		return nil, err
	}
	var out []trail.Count
	err = s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, sql, customPlan(args)...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (trail.Count, error) {
			var ct trail.Count
			var day time.Time
			err := r.Scan(&day, &ct.Action, &ct.N)
			ct.Day = time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, cmp.Or(q.Zone, time.UTC))
			return ct, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("trailpgx: counts: %w", err)
	}
	return out, nil
}

// Tenants returns up to limit tenants that have events, in name order,
// after the tenant after (trail.TenantLister). A recursive CTE walks
// events_tenant_time one tenant at a time (a skip scan: one probe per
// tenant and partition, never the tenants' events).
func (s *Store) Tenants(ctx context.Context, after string, limit int) ([]string, error) {
	events := s.schema + ".events"
	sql := "WITH RECURSIVE t(tenant) AS ((SELECT tenant FROM " + events + " WHERE tenant > $1 ORDER BY tenant LIMIT 1)" +
		" UNION ALL SELECT (SELECT tenant FROM " + events + " WHERE tenant > t.tenant ORDER BY tenant LIMIT 1) FROM t WHERE t.tenant IS NOT NULL)" +
		" SELECT tenant FROM t WHERE tenant IS NOT NULL LIMIT $2"
	var out []string
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, sql, after, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("trailpgx: tenants: %w", err)
	}
	return out, nil
}

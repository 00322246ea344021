package trailsqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/storedjson"
)

const selectCols = `id, occurred_at, recorded_at, tenant, actor_type, actor_id, actor_name, actor_email, actor_ip,
	actor_user_agent, on_behalf_of, action, target_type, target_id, target_name, outcome, description,
	changes, metadata, request_id, trace_id, source, schema_version, span_id`

// nSelectCols is the number of columns in selectCols.
const nSelectCols = 24

// Get returns the event with id, or an error matching trail.ErrNotFound.
func (s *Store) Get(ctx context.Context, id uuid.UUID) (trail.Event, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+selectCols+` FROM trail_events WHERE id = ?`, id[:])
	if err != nil {
		return trail.Event{}, fmt.Errorf("trailsqlite: get %s: %w", id, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return trail.Event{}, fmt.Errorf("trailsqlite: get %s: %w", id, err)
		}
		return trail.Event{}, fmt.Errorf("trailsqlite: get %s: %w", id, trail.ErrNotFound)
	}
	ev, err := scanEvent(rows)
	if err != nil {
		return trail.Event{}, fmt.Errorf("trailsqlite: get %s: %w", id, err)
	}
	return ev, nil
}

// where accumulates a WHERE clause and its arguments.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// prefixRange is the index range of an action pattern that is a prefix
// ending in a dot: "subscription.*" is "subscription." up to
// "subscription/" ('/' follows '.'), with no wildcard to escape.
func prefixRange(p string) (lo, hi string, ok bool) {
	pre, ok := trail.PatternPrefix(p)
	if !ok || !strings.HasSuffix(pre, ".") {
		return "", "", false
	}
	return pre, pre[:len(pre)-1] + "/", true
}

// filterAction matches an action filter (trail.ParseActionFilter): exact
// actions by equality, a prefix pattern "subscription.*" by an index range,
// any other pattern with GLOB (an action holds none of GLOB's other special
// characters, ? and [). q was validated: the filter parses.
func filterAction(w *where, action string) {
	f, _ := trail.ParseActionFilter(action)
	cond := func(p string) (string, []any) {
		if !strings.Contains(p, "*") {
			return "action = ?", []any{p}
		}
		if lo, hi, ok := prefixRange(p); ok {
			return "(action >= ? AND action < ?)", []any{lo, hi}
		}
		return "action GLOB ?", []any{p}
	}
	if len(f.Include) > 0 {
		var ors []string
		var args []any
		for _, p := range f.Include {
			c, a := cond(p)
			ors = append(ors, c)
			args = append(args, a...)
		}
		if len(ors) == 1 {
			w.add(ors[0], args...)
		} else {
			w.add("("+strings.Join(ors, " OR ")+")", args...)
		}
	}
	for _, p := range f.Exclude {
		c, a := cond(p)
		w.add("NOT "+c, a...)
	}
}

func filterTime(w *where, since, until time.Time) {
	if !since.IsZero() {
		w.add("occurred_at >= ?", since.UnixMicro())
	}
	if !until.IsZero() {
		w.add("occurred_at < ?", until.UnixMicro())
	}
}

// Query returns one page of the events matching q, newest first.
func (s *Store) Query(ctx context.Context, q trail.Query) (trail.Page, error) {
	if err := q.Validate(); err != nil {
		return trail.Page{}, err
	}
	limit := q.EffectiveLimit()
	query, args, ok, err := buildQuery(q, limit+1)
	if err != nil || !ok {
		return trail.Page{}, err
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return trail.Page{}, fmt.Errorf("trailsqlite: query: %w", err)
	}
	defer rows.Close()
	var page trail.Page
	for rows.Next() {
		ev, err := scanEvent(rows)
		if err != nil {
			return trail.Page{}, fmt.Errorf("trailsqlite: query: %w", err)
		}
		page.Events = append(page.Events, ev)
	}
	if err := rows.Err(); err != nil {
		return trail.Page{}, fmt.Errorf("trailsqlite: query: %w", err)
	}
	if len(page.Events) > limit {
		page.Events = page.Events[:limit]
		last := page.Events[limit-1]
		page.Next = trail.EncodeCursor(trail.Cursor{OccurredAt: last.OccurredAt, ID: last.ID})
	}
	return page, nil
}

// dayMicros is the width of trail_events.utc_day, the day that leads the
// subject indexes' keys (migration 0009).
const dayMicros = 86400000000

// subjectIndex names the day-led index (migration 0009) that answers q, or
// "" when q names no subject it indexes: an object (with or without a
// tenant), an actor in a tenant, or one exact action or action prefix in a
// tenant, in that order of preference (an object has the fewest events).
func subjectIndex(q trail.Query) string {
	switch {
	case q.TargetType != "" && q.TargetID != "":
		return "trail_events_target"
	case q.Tenant != "" && q.ActorID != "":
		return "trail_events_actor"
	case q.Tenant != "" && q.Action != "":
		f, _ := trail.ParseActionFilter(q.Action)
		if len(f.Include) != 1 {
			return ""
		}
		p := f.Include[0]
		if _, _, prefix := prefixRange(p); prefix || !strings.Contains(p, "*") {
			return "trail_events_action"
		}
	}
	return ""
}

// filterDays adds, for a read through a day-led subject index, the days to
// probe: the tenant's days with events (all tenants' days without a tenant),
// bounded by the time range and the cursor. Days are whole UTC days, and
// integer division is monotonic, so an event at or after since lies on a day
// at or after since's, and one before a bound on a day no later than the
// bound's.
func filterDays(w *where, q trail.Query, cursor *trail.Cursor) {
	var sub where
	table := "trail_days"
	if q.Tenant != "" {
		table = "trail_tenant_days"
		sub.add("tenant = ?", q.Tenant)
	}
	if !q.Since.IsZero() {
		sub.add("day >= ?", q.Since.UnixMicro()/dayMicros)
	}
	if !q.Until.IsZero() {
		sub.add("day <= ?", q.Until.UnixMicro()/dayMicros)
	}
	if cursor != nil {
		sub.add("day <= ?", cursor.OccurredAt.UnixMicro()/dayMicros)
	}
	w.add("utc_day IN (SELECT day FROM "+table+sub.String()+")", sub.args...)
}

// filters returns the conditions of every filter of a validated q but its
// cursor: Query's and Counts'. ok is false when q can match nothing (a text
// search without any word).
func filters(q trail.Query) (w where, ok bool) {
	if q.Tenant != "" {
		w.add("tenant = ?", q.Tenant)
	}
	if q.ActorType != "" {
		w.add("actor_type = ?", string(q.ActorType))
	}
	if q.ActorID != "" {
		w.add("actor_id = ?", q.ActorID)
	}
	if q.ActorName != "" {
		w.add("actor_name = ?", q.ActorName)
	}
	if q.ActorEmail != "" {
		w.add("actor_email = ?", q.ActorEmail)
	}
	// The e-mail digest's index (migration 0007) is partial on IS NOT NULL,
	// which equality implies; the name's has none (0008).
	if !q.ActorNameDigest.IsZero() {
		w.add("actor_name_digest = ?", q.ActorNameDigest[:])
	}
	if !q.ActorEmailDigest.IsZero() {
		w.add("actor_email_digest = ?", q.ActorEmailDigest[:])
	}
	filterAction(&w, q.Action)
	if q.TargetType != "" {
		w.add("target_type = ?", q.TargetType)
	}
	if q.TargetID != "" {
		w.add("target_id = ?", q.TargetID)
	}
	filterTime(&w, q.Since, q.Until)
	if q.Outcome != "" {
		w.add("outcome = ?", string(q.Outcome))
	}
	if q.Field != "" {
		w.add("seq IN (SELECT seq FROM trail_event_fields WHERE field = ?)", q.Field)
	}
	if q.Metadata != "" {
		// SQLite's LIKE ignores the case of ASCII letters only, as the
		// pattern expects.
		w.add(`metadata LIKE ? ESCAPE '\'`, q.MetadataPattern())
	}
	if q.Text != "" {
		m, ok := ftsQuery(q.Text)
		if !ok {
			return w, false
		}
		w.add("seq IN (SELECT rowid FROM trail_events_fts WHERE trail_events_fts MATCH ?)", m)
	}
	return w, true
}

// buildQuery returns the SELECT for a validated q returning at most n rows.
// ok is false when q can match nothing (a text search without any word).
func buildQuery(q trail.Query, n int) (query string, args []any, ok bool, err error) {
	w, ok := filters(q)
	if !ok {
		return "", nil, false, nil
	}
	var cursor *trail.Cursor
	if q.Cursor != "" {
		c, err := trail.DecodeCursor(q.Cursor)
		if err != nil {
			return "", nil, false, err
		}
		cursor = &c
		w.add("(occurred_at, id) < (?, ?)", c.OccurredAt.UnixMicro(), c.ID[:])
	}
	from, order := ` FROM trail_events`, ` ORDER BY occurred_at DESC, id DESC`
	if index := subjectIndex(q); index != "" {
		// Day by day, newest first, each day in (occurred_at, id) order
		// (the same order: the day grows with occurred_at). The index is
		// named because the planner, seeing a cursor or time range, may
		// prefer the tenant's time index and sort every row of the tenant.
		filterDays(&w, q, cursor)
		from = ` FROM trail_events INDEXED BY ` + index
		order = ` ORDER BY utc_day DESC, occurred_at DESC, id DESC`
	}
	query = `SELECT ` + selectCols + from + w.String() + order + ` LIMIT ?`
	return query, append(w.args, n), true, nil
}

// ftsQuery turns user text into an FTS5 query that can only mean "all these
// words": each whitespace-separated chunk becomes a quoted phrase (quotes
// doubled), so FTS5 operators (OR, NEAR, *, ^, column filters) are plain
// text, and the phrase is tokenized by the same tokenizer as the index.
// Chunks without a letter or digit are dropped; ok is false when none is left.
func ftsQuery(text string) (string, bool) {
	var b strings.Builder
	for _, w := range strings.Fields(text) {
		if !strings.ContainsFunc(w, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('"')
		b.WriteString(strings.ReplaceAll(w, `"`, `""`))
		b.WriteByte('"')
	}
	return b.String(), b.Len() > 0
}

// Counts returns the number of events per day (UTC, or q.Zone's) and
// action, ordered by day then action.
func (s *Store) Counts(ctx context.Context, q trail.CountQuery) ([]trail.Count, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	// SQLite knows no time zones: in a zone, count per quarter hour (every
	// zone's offset is whole quarter hours) and add them up per local day.
	zone := q.Zone
	if zone == time.UTC {
		zone = nil
	}
	bucket := int64(86400000000)
	if zone != nil {
		bucket = 900000000
	}
	query, args := buildCounts(q, bucket)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("trailsqlite: counts: %w", err)
	}
	defer rows.Close()
	var out []trail.Count
	for rows.Next() {
		var b, n int64
		var action string
		if err := rows.Scan(&b, &action, &n); err != nil {
			return nil, fmt.Errorf("trailsqlite: counts: %w", err)
		}
		day := time.UnixMicro(b * bucket).UTC()
		if zone != nil {
			t := day.In(zone)
			day = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, zone)
		}
		out = append(out, trail.Count{Day: day, Action: action, N: n})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trailsqlite: counts: %w", err)
	}
	if zone != nil {
		out = trail.MergeCounts(out)
	}
	return out, nil
}

func buildCounts(q trail.CountQuery, bucket int64) (string, []any) {
	qq := q.Query()
	w, ok := filters(qq)
	if !ok {
		w.add("0") // a text search without any word matches nothing
	}
	// An actor's or an object's counts read the day-led index (and each
	// match's row, for its action). An action's alone read the tenant's
	// time index, which holds the action and so is covering: once a query
	// names utc_day, a virtual column, SQLite reads every match's row.
	if idx := subjectIndex(qq); idx != "" && idx != "trail_events_action" {
		filterDays(&w, qq, nil)
	}
	return `SELECT occurred_at / ` + strconv.FormatInt(bucket, 10) + ` AS day, action, count(*) FROM trail_events` +
		w.String() + ` GROUP BY day, action ORDER BY day, action`, w.args
}

func scanEvent(rows *sql.Rows) (trail.Event, error) {
	var (
		ev                          trail.Event
		id                          []byte
		occurred, recorded, schema  int64
		actorType, outcome          string
		onBehalf, changes, metadata sql.NullString
	)
	err := rows.Scan(&id, &occurred, &recorded, &ev.Tenant, &actorType, &ev.Actor.ID, &ev.Actor.Name,
		&ev.Actor.Email, &ev.Actor.IP, &ev.Actor.UserAgent, &onBehalf, &ev.Action, &ev.Target.Type,
		&ev.Target.ID, &ev.Target.Name, &outcome, &ev.Description, &changes, &metadata, &ev.RequestID,
		&ev.TraceID, &ev.Source, &schema, &ev.SpanID)
	if err != nil {
		return ev, err
	}
	if len(id) != 16 {
		return ev, fmt.Errorf("stored id has %d bytes, want 16", len(id))
	}
	copy(ev.ID[:], id)
	ev.OccurredAt = time.UnixMicro(occurred).UTC()
	ev.RecordedAt = time.UnixMicro(recorded).UTC()
	ev.Actor.Type = trail.ActorType(actorType)
	ev.Outcome = trail.Outcome(outcome)
	ev.SchemaVersion = int(schema)
	if onBehalf.Valid {
		ev.Actor.OnBehalfOf = new(trail.Actor)
		if err := json.Unmarshal([]byte(onBehalf.String), ev.Actor.OnBehalfOf); err != nil {
			return ev, fmt.Errorf("event %s: on_behalf_of: %w", ev.ID, err)
		}
	}
	// The stored text is canonical: storedjson cuts it without reflection,
	// and leaves anything else (an edited row too) to encoding/json.
	if changes.Valid {
		var ok bool
		if ev.Changes, ok = storedjson.CanonicalChanges([]byte(changes.String)); !ok {
			if err := json.Unmarshal([]byte(changes.String), &ev.Changes); err != nil {
				return ev, fmt.Errorf("event %s: changes: %w", ev.ID, err)
			}
		}
	}
	if metadata.Valid {
		m, ok := storedjson.CanonicalMetadata([]byte(metadata.String))
		if !ok {
			var err error
			if m, err = trail.DecodeMetadata([]byte(metadata.String)); err != nil {
				return ev, fmt.Errorf("event %s: %w", ev.ID, err)
			}
		}
		ev.Metadata = m
	}
	return ev, nil
}

// Tenants returns up to limit tenants that have events, in name order,
// after the tenant after (trail.TenantLister): a recursive CTE probes
// trail_events_tenant_time once per tenant instead of reading its events.
func (s *Store) Tenants(ctx context.Context, after string, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `WITH RECURSIVE t(tenant) AS (
		SELECT (SELECT min(tenant) FROM trail_events WHERE tenant > ?)
		UNION ALL SELECT (SELECT min(tenant) FROM trail_events WHERE tenant > t.tenant) FROM t WHERE t.tenant IS NOT NULL)
		SELECT tenant FROM t WHERE tenant IS NOT NULL LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("trailsqlite: tenants: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("trailsqlite: tenants: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trailsqlite: tenants: %w", err)
	}
	return out, nil
}

package logstream

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trailhq/trail"
)

// Dialects of Store.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// Appender writes events in the caller's transaction: trailsqlite.Store,
// and trailsql.Store on PostgreSQL. A stream's change and its audit event
// commit together.
type Appender interface {
	AppendTx(ctx context.Context, tx *sql.Tx, events []trail.Event) ([]trail.Result, error)
}

// Store keeps the streams in a table of db: trail_log_streams in the SQLite
// file, or log_streams in the PostgreSQL store's schema, with their dead
// letters beside them. It creates its tables if needed.
type Store struct {
	db      *sql.DB
	dollars bool
	streams string
	dead    string
	events  Appender
}

const streamsDDL = `CREATE TABLE IF NOT EXISTS %s (
	id            TEXT PRIMARY KEY,
	tenant        TEXT NOT NULL,
	all_tenants   INTEGER NOT NULL,
	name          TEXT NOT NULL,
	config        TEXT NOT NULL,
	secret        TEXT NOT NULL,
	overlap_until BIGINT,
	enabled       INTEGER NOT NULL,
	created_at    BIGINT NOT NULL,
	updated_at    BIGINT NOT NULL,
	cursor        TEXT NOT NULL,
	next_seq      BIGINT NOT NULL,
	last_success  BIGINT,
	last_error    TEXT NOT NULL,
	last_error_at BIGINT,
	failures      INTEGER NOT NULL,
	failing_since BIGINT,
	dead_letters  BIGINT NOT NULL
)`

const deadDDL = `CREATE TABLE IF NOT EXISTS %s (
	stream_id TEXT NOT NULL,
	at        BIGINT NOT NULL,
	first_seq BIGINT NOT NULL,
	last_seq  BIGINT NOT NULL,
	event_ids TEXT NOT NULL,
	error     TEXT NOT NULL
)`

// NewSQLiteStore returns the streams of the SQLite database db; events
// (the trailsqlite.Store of the same file) records the changes.
func NewSQLiteStore(ctx context.Context, db *sql.DB, events Appender) (*Store, error) {
	return newStore(ctx, db, false, `"trail_log_streams"`, `"trail_log_stream_dead_letters"`, events)
}

// NewPostgresStore returns the streams in schema (the trailpgx store's) of
// db, a database/sql handle on pgx's stdlib driver; events (a trailsql.Store
// over the same db and schema) records the changes.
func NewPostgresStore(ctx context.Context, db *sql.DB, schema string, events Appender) (*Store, error) {
	if schema == "" || strings.ContainsAny(schema, "\"\x00") {
		return nil, fmt.Errorf("logstream: bad schema name %q", clip(schema))
	}
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS "`+schema+`"`); err != nil {
		return nil, fmt.Errorf("logstream: create schema: %w", err)
	}
	return newStore(ctx, db, true, `"`+schema+`"."log_streams"`, `"`+schema+`"."log_stream_dead_letters"`, events)
}

func newStore(ctx context.Context, db *sql.DB, dollars bool, streams, dead string, events Appender) (*Store, error) {
	if events == nil {
		return nil, errors.New("logstream: no event appender")
	}
	for _, ddl := range []string{fmt.Sprintf(streamsDDL, streams), fmt.Sprintf(deadDDL, dead)} {
		if _, err := db.ExecContext(ctx, ddl); err != nil {
			return nil, fmt.Errorf("logstream: create tables: %w", err)
		}
	}
	return &Store{db: db, dollars: dollars, streams: streams, dead: dead, events: events}, nil
}

func (s *Store) q(query string) string {
	query = strings.ReplaceAll(query, "{streams}", s.streams)
	query = strings.ReplaceAll(query, "{dead}", s.dead)
	if s.dollars {
		return query
	}
	return strings.ReplaceAll(query, "$", "?")
}

// config is the JSON of a stream's settings column.
type config struct {
	Destination      Destination `json:"destination"`
	Format           string      `json:"format"`
	Filter           Filter      `json:"filter"`
	Batching         Batching    `json:"batching"`
	DeadLetterAfterS int         `json:"dead_letter_after_s"`
}

// row is one stream as stored.
type row struct {
	Stream
	secret string
	cursor map[string]int64 // log name -> next index to read
	next   int64            // next stream sequence number
	// failingSince is when the batch now failing first failed.
	failingSince *time.Time
}

const cols = `id, tenant, all_tenants, name, config, secret, overlap_until, enabled, created_at, updated_at, cursor, next_seq,
	last_success, last_error, last_error_at, failures, failing_since, dead_letters`

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func tm(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.UnixMicro(v.Int64).UTC()
	return &t
}

func us(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMicro()
}

func scanRow(sc interface{ Scan(...any) error }) (*row, error) {
	var (
		r                                   row
		all, enabled, failures              int
		cfg, cur                            string
		created, updated                    int64
		overlap, success, errAt, failingSin sql.NullInt64
	)
	if err := sc.Scan(&r.ID, &r.Tenant, &all, &r.Name, &cfg, &r.secret, &overlap, &enabled, &created, &updated, &cur, &r.next,
		&success, &r.Health.LastError, &errAt, &failures, &failingSin, &r.Health.DeadLetters); err != nil {
		return nil, err
	}
	var c config
	if err := json.Unmarshal([]byte(cfg), &c); err != nil {
		return nil, fmt.Errorf("logstream: stream %s: config: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(cur), &r.cursor); err != nil {
		return nil, fmt.Errorf("logstream: stream %s: cursor: %w", r.ID, err)
	}
	if r.cursor == nil {
		r.cursor = map[string]int64{}
	}
	r.AllTenants, r.Enabled = all == 1, enabled == 1
	r.Destination, r.Format, r.Filter, r.Batching, r.DeadLetterAfterS = c.Destination, c.Format, c.Filter, c.Batching, c.DeadLetterAfterS
	r.CreatedAt, r.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
	r.HasSecret = r.secret != ""
	r.SecretOverlapUntil = tm(overlap)
	r.Health.LastSuccess, r.Health.LastErrorAt = tm(success), tm(errAt)
	r.Health.Failures = failures
	r.failingSince = tm(failingSin)
	r.Health.Delivered = r.next - 1
	switch {
	case !r.Enabled:
		r.Health.State = StatePaused
	case failures > 0:
		r.Health.State = StateError
	case r.Health.LastSuccess != nil:
		r.Health.State = StateHealthy
	default:
		r.Health.State = StatePending
	}
	return &r, nil
}

func (s *Store) get(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id string) (*row, error) {
	r, err := scanRow(q.QueryRowContext(ctx, s.q(`SELECT `+cols+` FROM {streams} WHERE id = $1`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return r, err
}

// list returns the streams of tenant ("" with all: every stream), oldest first.
func (s *Store) list(ctx context.Context, tenant string, all bool) ([]*row, error) {
	query, args := `SELECT `+cols+` FROM {streams} ORDER BY created_at, id`, []any(nil)
	if !all {
		query, args = `SELECT `+cols+` FROM {streams} WHERE tenant = $1 AND all_tenants = 0 ORDER BY created_at, id`, []any{tenant}
	}
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("logstream: list: %w", err)
	}
	defer rows.Close()
	var out []*row
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// change runs fn in a transaction and appends ev (the change's audit
// event) in it: both commit, or neither.
func (s *Store) change(ctx context.Context, ev trail.Event, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("logstream: begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if _, err := s.events.AppendTx(ctx, tx, []trail.Event{ev}); err != nil {
		return fmt.Errorf("logstream: record the change: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("logstream: commit: %w", err)
	}
	return nil
}

func (s *Store) insert(ctx context.Context, tx *sql.Tx, r *row) error {
	cfg, err := json.Marshal(config{r.Destination, r.Format, r.Filter, r.Batching, r.DeadLetterAfterS})
	if err != nil {
		return err
	}
	cur, _ := json.Marshal(r.cursor)
	_, err = tx.ExecContext(ctx, s.q(`INSERT INTO {streams} (`+cols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, '', NULL, 0, NULL, 0)`),
		r.ID, r.Tenant, b2i(r.AllTenants), r.Name, string(cfg), r.secret, us(r.SecretOverlapUntil), b2i(r.Enabled),
		r.CreatedAt.UnixMicro(), r.UpdatedAt.UnixMicro(), string(cur), r.next)
	if err != nil {
		return fmt.Errorf("logstream: insert: %w", err)
	}
	return nil
}

// advance records a delivered batch: the cursor and sequence reached, and
// a success. It fails with ErrNotFound when the stream is gone.
func (s *Store) advance(ctx context.Context, id string, cursor map[string]int64, next int64, at time.Time) error {
	cur, _ := json.Marshal(cursor)
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE {streams} SET cursor = $1, next_seq = $2, last_success = $3,
		failures = 0, failing_since = NULL WHERE id = $4`), string(cur), next, at.UnixMicro(), id)
	return affected(res, err)
}

// skip moves the cursor past events the filter dropped.
func (s *Store) skip(ctx context.Context, id string, cursor map[string]int64) error {
	cur, _ := json.Marshal(cursor)
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE {streams} SET cursor = $1 WHERE id = $2`), string(cur), id)
	return affected(res, err)
}

// fail records a failed attempt.
func (s *Store) fail(ctx context.Context, id, msg string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE {streams} SET last_error = $1, last_error_at = $2, failures = failures + 1,
		failing_since = COALESCE(failing_since, $3) WHERE id = $4`), clipErr(msg), at.UnixMicro(), at.UnixMicro(), id)
	return affected(res, err)
}

// deadLetter sets a batch aside: a dead-letter row naming its events and
// the error, and the cursor and sequence moved past it, in one
// transaction. The skipped sequence numbers are the receiver's gap, which
// the dead-letter row explains.
func (s *Store) deadLetter(ctx context.Context, id string, cursor map[string]int64, first, next int64, ids []string, msg string, at time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	idj, _ := json.Marshal(ids)
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO {dead} (stream_id, at, first_seq, last_seq, event_ids, error) VALUES ($1, $2, $3, $4, $5, $6)`),
		id, at.UnixMicro(), first, next-1, string(idj), clipErr(msg)); err != nil {
		return err
	}
	cur, _ := json.Marshal(cursor)
	res, err := tx.ExecContext(ctx, s.q(`UPDATE {streams} SET cursor = $1, next_seq = $2, dead_letters = dead_letters + 1,
		failures = 0, failing_since = NULL, last_error = $3, last_error_at = $4 WHERE id = $5`), string(cur), next, "dead-lettered: "+clipErr(msg), at.UnixMicro(), id)
	if err := affected(res, err); err != nil {
		return err
	}
	return tx.Commit()
}

// DeadLetter is a batch set aside after failing for the stream's
// dead_letter_after_s.
type DeadLetter struct {
	At       time.Time `json:"at"`
	FirstSeq int64     `json:"first_seq"`
	LastSeq  int64     `json:"last_seq"`
	EventIDs []string  `json:"event_ids"`
	Error    string    `json:"error"`
}

func (s *Store) deadLetters(ctx context.Context, id string) ([]DeadLetter, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT at, first_seq, last_seq, event_ids, error FROM {dead} WHERE stream_id = $1 ORDER BY first_seq`), id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []DeadLetter{}
	for rows.Next() {
		var d DeadLetter
		var at int64
		var ids string
		if err := rows.Scan(&at, &d.FirstSeq, &d.LastSeq, &ids, &d.Error); err != nil {
			return nil, err
		}
		d.At = time.UnixMicro(at).UTC()
		json.Unmarshal([]byte(ids), &d.EventIDs)
		out = append(out, d)
	}
	return out, rows.Err()
}

func affected(res sql.Result, err error) error {
	if err != nil {
		return fmt.Errorf("logstream: update: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

func clipErr(s string) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "?"), "\n", " ")
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return s
}

// Package trailimport reads the audit tables Django applications already
// have and turns each row into a Trail event: the seed design's AuditLog
// model, django-auditlog's LogEntry, and django-simple-history's
// Historical* tables. Times, actors, tenants, targets and field changes are
// kept; every event names its source (Source "import:<format>", metadata
// "import" with the table and row), and its ID is derived from the table and
// the row's key, so that importing the same rows again stores nothing new.
//
// `trail import` runs it; it reads the source through database/sql
// (PostgreSQL through pgx's driver, or SQLite) and hands batches of events
// to the caller, which writes them like any other (prepared by the privacy
// layer, appended, then sealed).
package trailimport

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

// Format names a source table's layout.
type Format string

// The formats Import reads.
const (
	// Seed is the AuditLog model of the design note Trail grew from:
	// id, action ("USER_DELETE"), user_id, timestamp, content_type_id,
	// object_id, description.
	Seed Format = "seed"
	// Auditlog is django-auditlog's LogEntry (table auditlog_logentry):
	// id, content_type_id, object_pk, object_repr, action (0 create, 1
	// update, 2 delete, 3 access), changes ({"field": [old, new]}),
	// actor_id, remote_addr, timestamp, and additional_data when present.
	Auditlog Format = "auditlog"
	// SimpleHistory is a django-simple-history table (Historical<Model>):
	// the model's columns plus history_id, history_date, history_type
	// (+ ~ -), history_user_id and history_change_reason. An update's
	// changes are the difference from the object's previous history row.
	SimpleHistory Format = "simple-history"
)

// AuditlogTable is django-auditlog's table, the default Table of Auditlog.
const AuditlogTable = "auditlog_logentry"

// Config says what to read and how to file it.
type Config struct {
	Format Format
	// Table is the source table. Default: auditlog_logentry for Auditlog;
	// required for the others.
	Table string
	// Tenant files every event in this tenant. Default: none.
	Tenant string
	// TenantColumn reads each row's tenant from this column of the source
	// table (a simple-history table keeps the model's tenant_id, say). It
	// wins over Tenant when the row has a value. A row left without a
	// tenant becomes a platform event.
	TenantColumn string
	// Model is the target type of a simple-history table's events.
	// Default: the table's name without its app prefix and "historical"
	// (core_historicalsubscription → subscription).
	Model string
	// ObjectColumn is a simple-history table's object key. Default: "id".
	ObjectColumn string
	// Batch is the number of events handed over at once. Default: 1000.
	Batch int
}

// Skipped is a source row that was not imported, and why.
type Skipped struct {
	Row    string // the row's key in the source table
	Reason string
}

// Stats counts what Import read.
type Stats struct {
	Rows    int // rows read
	Events  int // events handed over
	Skipped int // rows skipped
}

// ErrSource is returned when the source table cannot be read as its format
// says: a missing table or column. Nothing has been handed over then.
var ErrSource = errors.New("trailimport: source table")

// Import reads cfg.Table from src and calls write with each batch of events,
// in source order, and skip with each row it cannot import. A row becomes
// exactly one event or is skipped whole. write's error stops the import.
func Import(ctx context.Context, src *sql.DB, cfg Config, write func(context.Context, []trail.Event) error, skip func(Skipped)) (Stats, error) {
	var st Stats
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	if cfg.Table == "" && cfg.Format == Auditlog {
		cfg.Table = AuditlogTable
	}
	if cfg.Table == "" {
		return st, fmt.Errorf("trailimport: the %s format needs the table's name", cfg.Format)
	}
	if !identRE.MatchString(cfg.Table) || (cfg.TenantColumn != "" && !identRE.MatchString(cfg.TenantColumn)) ||
		(cfg.ObjectColumn != "" && !identRE.MatchString(cfg.ObjectColumn)) {
		return st, fmt.Errorf("trailimport: table and column names must be plain identifiers (letters, digits, _, optionally schema.table)")
	}
	im := &importer{cfg: cfg, src: src, write: write, skip: func(s Skipped) {
		st.Skipped++
		if skip != nil {
			skip(s)
		}
	}}
	var err error
	switch cfg.Format {
	case Seed:
		err = im.seed(ctx)
	case Auditlog:
		err = im.auditlog(ctx)
	case SimpleHistory:
		err = im.simpleHistory(ctx)
	default:
		return st, fmt.Errorf("trailimport: unknown format %q: want seed, auditlog or simple-history", cfg.Format)
	}
	if err == nil {
		err = im.flush(ctx)
	}
	st.Rows, st.Events = im.rows, im.events
	return st, err
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)

type importer struct {
	cfg          Config
	src          *sql.DB
	write        func(context.Context, []trail.Event) error
	skip         func(Skipped)
	batch        []trail.Event
	rows, events int
	models       map[int64]string // django_content_type id → model
}

func (im *importer) emit(ctx context.Context, ev trail.Event) error {
	im.batch = append(im.batch, ev)
	im.events++
	if len(im.batch) >= im.cfg.Batch {
		return im.flush(ctx)
	}
	return nil
}

func (im *importer) flush(ctx context.Context) error {
	if len(im.batch) == 0 {
		return nil
	}
	err := im.write(ctx, im.batch)
	im.batch = im.batch[:0]
	return err
}

// source marks an event as imported from row key of the table.
func (im *importer) source(ev *trail.Event, key string) {
	ev.ID = ID(string(im.cfg.Format), im.cfg.Table, key, ev.OccurredAt)
	ev.Source = "import:" + string(im.cfg.Format)
	if ev.Metadata == nil {
		ev.Metadata = map[string]any{}
	}
	ev.Metadata["import"] = map[string]any{"format": string(im.cfg.Format), "table": im.cfg.Table, "row": key}
}

// ID is an imported row's event ID: the layout of a UUIDv7 (its first 48
// bits the row's time in milliseconds, so imported events sort by time like
// recorded ones) whose other bits are a SHA-256 of format, table and key.
// The same row always gets the same ID, which makes a second import store
// nothing.
func ID(format, table, key string, at time.Time) uuid.UUID {
	sum := sha256.Sum256([]byte("trail-import\x00" + format + "\x00" + table + "\x00" + key))
	var id uuid.UUID
	copy(id[:], sum[:16])
	ms := uint64(max(at.UnixMilli(), 0))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], ms)
	copy(id[:6], b[2:])
	id[6] = 0x70 | id[6]&0x0f // version 7
	id[8] = 0x80 | id[8]&0x3f // RFC 9562 variant
	return id
}

// tenant applies Config.Tenant and TenantColumn to ev.
func (im *importer) tenant(ev *trail.Event, row map[string]any) {
	ev.Tenant = im.cfg.Tenant
	if im.cfg.TenantColumn != "" {
		if v := text(row[strings.ToLower(im.cfg.TenantColumn)]); v != "" {
			ev.Tenant = v
		}
	}
}

// contentTypes loads django_content_type, for the target type of a
// content_type_id. A database without it leaves the IDs as they are.
func (im *importer) contentTypes(ctx context.Context) {
	im.models = map[int64]string{}
	rows, err := im.src.QueryContext(ctx, `SELECT id, model FROM django_content_type`)
	if err != nil {
		return
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var model string
		if rows.Scan(&id, &model) == nil {
			im.models[id] = model
		}
	}
}

func (im *importer) model(ct any) string {
	if id, ok := ct.(int64); ok {
		if m, ok := im.models[id]; ok && validSegment(m) {
			return m
		}
		return fmt.Sprintf("content_type_%d", id)
	}
	return "object"
}

var segmentRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

func validSegment(s string) bool { return segmentRE.MatchString(s) }

// query runs a SELECT of the table and calls fn with each row as a map of
// lower-cased column name to value. Missing columns in want are an
// ErrSource error before any row is read.
func (im *importer) query(ctx context.Context, sqlText string, want []string, fn func(row map[string]any) error) error {
	// The columns first, so that a table of another layout is named as such
	// rather than by the database's complaint about the ORDER BY.
	probe, err := im.src.QueryContext(ctx, "SELECT * FROM "+im.cfg.Table+" WHERE 1 = 0")
	if err != nil {
		return fmt.Errorf("%w %s: %v", ErrSource, im.cfg.Table, err)
	}
	pcols, err := probe.Columns()
	probe.Close()
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, c := range pcols {
		have[strings.ToLower(c)] = true
	}
	if im.cfg.TenantColumn != "" {
		want = append(want, strings.ToLower(im.cfg.TenantColumn))
	}
	for _, w := range want {
		if !have[w] {
			return fmt.Errorf("%w %s has no column %s: is it a %s table?", ErrSource, im.cfg.Table, w, im.cfg.Format)
		}
	}
	rows, err := im.src.QueryContext(ctx, sqlText)
	if err != nil {
		return fmt.Errorf("%w %s: %v", ErrSource, im.cfg.Table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	for i, c := range cols {
		cols[i] = strings.ToLower(c)
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		row := make(map[string]any, len(cols))
		for i, c := range cols {
			row[c] = normalize(vals[i])
		}
		im.rows++
		if err := fn(row); err != nil {
			return err
		}
	}
	return rows.Err()
}

// normalize turns a driver value into what JSON and the converters expect.
func normalize(v any) any {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case time.Time:
		return x.UTC()
	case int:
		return int64(x)
	case int32:
		return int64(x)
	}
	return v
}

// text is a value as text: "" for NULL.
func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case time.Time:
		return x.Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

// when reads a timestamp column: a time, or text in one of the forms
// SQLite keeps them in.
func when(v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x.UTC(), nil
	case string:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
			if t, err := time.Parse(layout, x); err == nil {
				return t.UTC(), nil
			}
		}
		return time.Time{}, fmt.Errorf("timestamp %q is not a time", clip(x))
	case nil:
		return time.Time{}, errors.New("no timestamp")
	}
	return time.Time{}, fmt.Errorf("timestamp of type %T", v)
}

// userActor is the actor of a Django user ID; an empty ID (the user was
// deleted, SET_NULL, or nobody was signed in) is the system "unknown".
func userActor(id any) trail.Actor {
	if s := text(id); s != "" {
		return trail.Actor{Type: trail.ActorUser, ID: s}
	}
	return trail.Actor{Type: trail.ActorSystem, ID: "unknown"}
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func order(cols ...string) string { return " ORDER BY " + strings.Join(cols, ", ") }

package trailgorm

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode"

	"github.com/trailhq/trail"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

// Audited is implemented by models that opt in to auditing. TrailType names
// the target type of their events ("subscription"), and with it their
// actions ("subscription.create", "subscription.update",
// "subscription.delete").
type Audited interface {
	TrailType() string
}

// Tenanted is implemented by models that know their tenant, e.g. from a
// tenant_id column: each row's event is filed in the row's tenant. The
// context's tenant (trail.WithTenant), when set, must agree, or the write
// fails (trail.ErrTenantMismatch): a request of one tenant cannot write
// audit events into another's log. A model without it is filed in the
// context's tenant.
type Tenanted interface {
	TrailTenant() string
}

// Recorder records events in the caller's *sql.Tx: *trail.Client[*sql.Tx]
// (trailsql.NewClient, trailsqlite.NewClient) implements it.
type Recorder = trail.TxRecorder[*sql.Tx]

// manyRecorder is the batch form a *trail.Client also has: one call per
// statement instead of one per row.
type manyRecorder interface {
	RecordManyTx(ctx context.Context, tx *sql.Tx, events []trail.Event) ([]trail.Result, error)
}

// Config configures the plugin. A nil *Config means every default.
type Config struct {
	// Models lists models audited although they do not implement Audited,
	// as pointers to their zero values (&Invoice{}): their target type is
	// the snake_case of the Go type's name ("invoice"). Default: none, so
	// only models implementing Audited are audited.
	Models []any
	// Ignore names fields whose changes are left out of update diffs, by
	// the name trail.Diff gives them (the json tag's name, else the Go
	// name). Fields GORM maintains itself (autoUpdateTime, such as
	// UpdatedAt) are always left out. An update that changes nothing else
	// records no event. Default: none.
	Ignore []string
	// Source is written into events that name no source and whose context
	// carries none. Default: "gorm".
	Source string
}

// ErrNoTransaction is returned (as the statement's error, which rolls it
// back) when an audited write does not run in a transaction: with GORM's
// SkipDefaultTransaction the write is committed alone, so its audit event
// could not be committed with it. Run the write inside db.Transaction.
var ErrNoTransaction = errors.New("trailgorm: an audited write runs outside a transaction (SkipDefaultTransaction is set): run it inside db.Transaction, so that the event commits with the change")

// Plugin records an audit event for every create, update and delete of an
// audited model, in the statement's own transaction. Install it with
// db.Use(trailgorm.New(client, cfg)).
type Plugin struct {
	rec    Recorder
	cfg    Config
	listed map[reflect.Type]bool
	ignore map[string]bool
	models sync.Map // reflect.Type → *model, decided once per model type
}

// model is what the plugin decided about one model type.
type model struct {
	typ    string          // target type; "" when the model is not audited
	ignore map[string]bool // fields left out of update diffs
}

// New returns the plugin, recording through rec.
func New(rec Recorder, cfg *Config) *Plugin {
	p := &Plugin{rec: rec, listed: map[reflect.Type]bool{}, ignore: map[string]bool{}}
	if cfg != nil {
		p.cfg = *cfg
	}
	if p.cfg.Source == "" {
		p.cfg.Source = "gorm"
	}
	for _, m := range p.cfg.Models {
		t := reflect.TypeOf(m)
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t != nil {
			p.listed[t] = true
		}
	}
	for _, f := range p.cfg.Ignore {
		p.ignore[f] = true
	}
	return p
}

// Name implements gorm.Plugin.
func (p *Plugin) Name() string { return "trail" }

const (
	beforeKey = "trail:before"
)

// Initialize implements gorm.Plugin. The callbacks that record run after
// GORM's own write and before "gorm:commit_or_rollback_transaction": there
// the statement's connection is still the transaction, and an error from
// Trail rolls the write back.
func (p *Plugin) Initialize(db *gorm.DB) error {
	if p.rec == nil {
		return errors.New("trailgorm: New: recorder is nil")
	}
	cb := db.Callback()
	const commit = "gorm:commit_or_rollback_transaction"
	const begin = "gorm:begin_transaction"
	return errors.Join(
		cb.Create().After(begin).Before("gorm:create").Register("trail:before_create", p.checkTx),
		cb.Create().After("gorm:after_create").Before(commit).Register("trail:after_create", p.afterCreate),
		cb.Update().After(begin).Before("gorm:update").Register("trail:before_update", p.loadBefore),
		cb.Update().After("gorm:after_update").Before(commit).Register("trail:after_update", p.afterUpdate),
		cb.Delete().After(begin).Before("gorm:delete").Register("trail:before_delete", p.loadBefore),
		cb.Delete().After("gorm:after_delete").Before(commit).Register("trail:after_delete", p.afterDelete),
	)
}

// checkTx fails an audited create before it is written when it runs
// outside a transaction: its event could not commit with it.
func (p *Plugin) checkTx(db *gorm.DB) {
	if db.Error != nil || p.targetType(db.Statement.Schema) == "" {
		return
	}
	if _, err := sqlTx(db); err != nil {
		db.AddError(err)
	}
}

// targetType returns the audited model's target type, or "" when the
// statement's model is not audited.
func (p *Plugin) targetType(s *schema.Schema) string {
	if s == nil {
		return ""
	}
	return p.model(s).typ
}

// model returns what the plugin decided about s's model type, deciding it
// on the model's first write: every write of every model passes here.
func (p *Plugin) model(s *schema.Schema) *model {
	if m, ok := p.models.Load(s.ModelType); ok {
		return m.(*model)
	}
	m := &model{ignore: map[string]bool{}}
	if a, ok := reflect.New(s.ModelType).Interface().(Audited); ok {
		m.typ = a.TrailType()
	} else if p.listed[s.ModelType] {
		m.typ = snake(s.ModelType.Name())
	}
	for k := range p.ignore {
		m.ignore[k] = true
	}
	for _, f := range s.Fields {
		if f.AutoUpdateTime > 0 {
			m.ignore[diffName(f)] = true
		}
	}
	actual, _ := p.models.LoadOrStore(s.ModelType, m)
	return actual.(*model)
}

// snake turns a Go type name into a target type: "APIKey" → "api_key".
func snake(name string) string {
	var b strings.Builder
	rs := []rune(name)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]) && unicode.IsUpper(rs[i-1]))) {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// sqlTx returns the transaction the statement runs in.
func sqlTx(db *gorm.DB) (*sql.Tx, error) {
	switch c := db.Statement.ConnPool.(type) {
	case *sql.Tx:
		return c, nil
	case *gorm.PreparedStmtTX:
		if tx, ok := c.Tx.(*sql.Tx); ok {
			return tx, nil
		}
	}
	return nil, ErrNoTransaction
}

// rows returns the addressable structs a value holds: one for a struct,
// each element for a slice or array (of structs or pointers to them).
func rows(v reflect.Value) []reflect.Value {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Struct:
		return []reflect.Value{v}
	case reflect.Slice, reflect.Array:
		out := make([]reflect.Value, 0, v.Len())
		for i := range v.Len() {
			out = append(out, rows(v.Index(i))...)
		}
		return out
	}
	return nil
}

// primaryKey formats a row's primary key as the event's target ID: the
// value, or the values joined by "/" for a composite key.
func primaryKey(ctx context.Context, s *schema.Schema, row reflect.Value) string {
	parts := make([]string, 0, len(s.PrimaryFields))
	for _, f := range s.PrimaryFields {
		v, _ := f.ValueOf(ctx, row)
		parts = append(parts, fmt.Sprint(v))
	}
	return strings.Join(parts, "/")
}

// loadBefore reads, in the statement's transaction, the rows an update or
// delete is about to change: the statement's WHERE clause, and the primary
// keys of the model value it was given, as GORM itself will apply them. On
// PostgreSQL the rows are locked (FOR UPDATE), so that no concurrent
// transaction changes them between this read and the write.
func (p *Plugin) loadBefore(db *gorm.DB) {
	if db.Error != nil || db.Statement.Schema == nil || p.targetType(db.Statement.Schema) == "" {
		return
	}
	if _, err := sqlTx(db); err != nil {
		db.AddError(err)
		return
	}
	stmt := db.Statement
	s := stmt.Schema
	q := db.Session(&gorm.Session{NewDB: true, SkipHooks: true}).Table(stmt.Table)
	if stmt.Unscoped {
		q = q.Unscoped()
	}
	conds := 0
	if c, ok := stmt.Clauses["WHERE"]; ok {
		if w, ok := c.Expression.(clause.Where); ok && len(w.Exprs) > 0 {
			q = q.Clauses(w)
			conds++
		}
	}
	if pk := pkCondition(stmt); pk != nil {
		q = q.Clauses(clause.Where{Exprs: []clause.Expression{pk}})
		conds++
	}
	if conds == 0 && !stmt.AllowGlobalUpdate && !db.AllowGlobalUpdate {
		// GORM refuses this write itself (ErrMissingWhereClause).
		return
	}
	if db.Dialector.Name() == "postgres" {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	before := reflect.New(reflect.SliceOf(reflect.PointerTo(s.ModelType)))
	if err := q.Find(before.Interface()).Error; err != nil {
		db.AddError(fmt.Errorf("trailgorm: reading the rows before the write: %w", err))
		return
	}
	stmt.Settings.Store(beforeKey, before.Elem())
}

// pkCondition is the primary-key condition GORM adds for a model value
// whose keys are set (db.Model(&row).Update, db.Save, db.Delete(&row)).
func pkCondition(stmt *gorm.Statement) clause.Expression {
	s := stmt.Schema
	if len(s.PrimaryFields) == 0 {
		return nil
	}
	rv := reflect.Indirect(stmt.ReflectValue)
	switch rv.Kind() {
	case reflect.Struct, reflect.Slice, reflect.Array:
	default:
		return nil
	}
	_, values := schema.GetIdentityFieldValuesMap(stmt.Context, rv, s.PrimaryFields)
	if len(values) == 0 {
		return nil
	}
	col, vals := schema.ToQueryValues(stmt.Table, s.PrimaryFieldDBNames, values)
	return clause.IN{Column: col, Values: vals}
}

func (p *Plugin) afterCreate(db *gorm.DB) {
	if db.Error != nil || db.Statement.Schema == nil {
		return
	}
	typ := p.targetType(db.Statement.Schema)
	if typ == "" {
		return
	}
	var events []trail.Event
	for _, row := range rows(db.Statement.ReflectValue) {
		changes, err := trail.Diff(nil, row.Addr().Interface())
		if err != nil {
			db.AddError(fmt.Errorf("trailgorm: %s.create: %w", typ, err))
			return
		}
		events = append(events, p.event(db, typ, "create", row, changes))
	}
	p.record(db, events)
}

func (p *Plugin) afterUpdate(db *gorm.DB) {
	typ, before, ok := p.beforeRows(db)
	if !ok {
		return
	}
	s := db.Statement.Schema
	ctx := db.Statement.Context
	// Read the rows again by their primary keys: GORM's own value holds
	// only what the statement set, not the rows as stored.
	_, values := schema.GetIdentityFieldValuesMap(ctx, before, s.PrimaryFields)
	col, vals := schema.ToQueryValues(db.Statement.Table, s.PrimaryFieldDBNames, values)
	after := reflect.New(reflect.SliceOf(reflect.PointerTo(s.ModelType)))
	q := db.Session(&gorm.Session{NewDB: true, SkipHooks: true}).Table(db.Statement.Table).Unscoped()
	if err := q.Clauses(clause.Where{Exprs: []clause.Expression{clause.IN{Column: col, Values: vals}}}).Find(after.Interface()).Error; err != nil {
		db.AddError(fmt.Errorf("trailgorm: reading the rows after the update: %w", err))
		return
	}
	byKey := map[string]reflect.Value{}
	for _, r := range rows(after.Elem()) {
		byKey[primaryKey(ctx, s, r)] = r
	}
	ignore := p.model(s).ignore // Config.Ignore and the fields GORM stamps on every update
	var events []trail.Event
	for _, b := range rows(before) {
		a, ok := byKey[primaryKey(ctx, s, b)]
		if !ok {
			continue // its primary key changed: not followed
		}
		changes, err := trail.Diff(b.Addr().Interface(), a.Addr().Interface())
		if err != nil {
			db.AddError(fmt.Errorf("trailgorm: %s.update: %w", typ, err))
			return
		}
		changes = slices.DeleteFunc(changes, func(c trail.Change) bool { return ignore[c.Field] })
		if len(changes) == 0 {
			continue
		}
		events = append(events, p.event(db, typ, "update", a, changes))
	}
	p.record(db, events)
}

func (p *Plugin) afterDelete(db *gorm.DB) {
	typ, before, ok := p.beforeRows(db)
	if !ok {
		return
	}
	var events []trail.Event
	for _, b := range rows(before) {
		changes, err := trail.Diff(b.Addr().Interface(), nil)
		if err != nil {
			db.AddError(fmt.Errorf("trailgorm: %s.delete: %w", typ, err))
			return
		}
		events = append(events, p.event(db, typ, "delete", b, changes))
	}
	p.record(db, events)
}

// beforeRows returns what loadBefore read, when the write succeeded.
func (p *Plugin) beforeRows(db *gorm.DB) (string, reflect.Value, bool) {
	if db.Error != nil || db.Statement.Schema == nil {
		return "", reflect.Value{}, false
	}
	typ := p.targetType(db.Statement.Schema)
	v, ok := db.Statement.Settings.Load(beforeKey)
	if typ == "" || !ok {
		return "", reflect.Value{}, false
	}
	db.Statement.Settings.Delete(beforeKey)
	return typ, v.(reflect.Value), true
}

// diffName is the name trail.Diff gives a field: its json tag's name, else
// its Go name.
func diffName(f *schema.Field) string {
	if tag, ok := f.StructField.Tag.Lookup("json"); ok {
		if name, _, _ := strings.Cut(tag, ","); name != "" && name != "-" {
			return name
		}
	}
	return f.Name
}

func (p *Plugin) event(db *gorm.DB, typ, verb string, row reflect.Value, changes []trail.Change) trail.Event {
	ev := trail.Event{
		Action:  typ + "." + verb,
		Target:  trail.Target{Type: typ, ID: primaryKey(db.Statement.Context, db.Statement.Schema, row)},
		Changes: changes,
	}
	if t, ok := row.Addr().Interface().(Tenanted); ok {
		ev.Tenant = t.TrailTenant()
	}
	if _, ok := trail.SourceFrom(db.Statement.Context); !ok {
		ev.Source = p.cfg.Source
	}
	return ev
}

// record writes the statement's events in its transaction; an error fails
// the statement, and GORM rolls the transaction back.
func (p *Plugin) record(db *gorm.DB, events []trail.Event) {
	if len(events) == 0 {
		return
	}
	tx, err := sqlTx(db)
	if err != nil {
		db.AddError(err)
		return
	}
	ctx := db.Statement.Context
	if m, ok := p.rec.(manyRecorder); ok {
		if _, err := m.RecordManyTx(ctx, tx, events); err != nil {
			db.AddError(fmt.Errorf("trailgorm: recording %s: %w", events[0].Action, err))
		}
		return
	}
	for _, ev := range events {
		if _, err := p.rec.RecordTx(ctx, tx, ev); err != nil {
			db.AddError(fmt.Errorf("trailgorm: recording %s: %w", ev.Action, err))
			return
		}
	}
}

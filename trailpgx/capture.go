package trailpgx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail/trailprivacy"
)

// Trigger capture: every INSERT, UPDATE and DELETE on a captured table
// becomes an event, whoever makes it (the application, a bulk statement, a
// person in psql). See docs/capture.md.

// CaptureOptions configure the capture of one table. The zero value captures
// every column, with no tenant column, into the schema "trail", and redacts
// the columns the default deny-list names (see NoDefaultRedaction).
type CaptureOptions struct {
	// Schema is the Trail store's schema (Config.Schema). Default: "trail".
	Schema string
	// Name is the resource name: actions are Name.insert, Name.update and
	// Name.delete, and the target type is Name. Default: the table's name,
	// lower-cased, without its schema. Set it when two schemas hold tables of
	// the same name.
	Name string
	// TenantColumn is the column holding the row's tenant, used when the
	// transaction has no trail.tenant setting.
	TenantColumn string
	// Ignore lists columns left out of the changes (an update touching only
	// them records nothing), e.g. updated_at.
	Ignore []string
	// Redact lists columns recorded as changed without their values, on top
	// of the default redaction.
	Redact []string
	// NoDefaultRedaction turns the default redaction off. By default a
	// column whose name matches trailprivacy's deny-list
	// (trailprivacy.DefaultDenyList: password_hash, api_token,
	// session_secret, card_number…) is recorded as changed without its
	// values, like a Redact column, and so is a column added later whose
	// name matches. See docs/capture.md, "Default redaction".
	NoDefaultRedaction bool
	// RequireTenant makes a change with neither trail.tenant nor a non-empty
	// tenant column an error that aborts the statement, instead of a platform
	// event.
	RequireTenant bool
}

// Capture describes one captured table, as ListCaptures reports it.
type Capture struct {
	Table         string   `json:"table"` // schema-qualified, quoted where needed
	Name          string   `json:"name"`  // the resource name (action prefix, target type)
	Key           []string `json:"key"`   // primary-key columns, in key order
	TenantColumn  string   `json:"tenant_column,omitempty"`
	Ignore        []string `json:"ignore,omitempty"`
	Redact        []string `json:"redact,omitempty"`
	RequireTenant bool     `json:"require_tenant,omitempty"`
	// DefaultRedaction is true unless the capture was enabled with
	// NoDefaultRedaction (or its Trail schema is older than migration 0009,
	// whose capture functions do not redact by default).
	DefaultRedaction bool `json:"default_redaction"`
	// DefaultRedacted lists the table's columns the default redaction
	// redacts now, in column order: deny-listed columns that are neither
	// ignored nor in Redact.
	DefaultRedacted []string `json:"default_redacted,omitempty"`

	schema string   // the Trail schema it writes to, quoted
	oid    uint32   // the table
	args   []string // the trigger's arguments
}

// Errors EnableCapture and DisableCapture wrap, for callers that branch.
var (
	ErrCaptureEnabled    = errors.New("capture is already enabled")
	ErrCaptureNotEnabled = errors.New("capture is not enabled")
	ErrNoPrimaryKey      = errors.New("table has no primary key")
	ErrUnknownTable      = errors.New("no such table")
	ErrUnknownColumn     = errors.New("no such column")
)

// The three triggers EnableCapture installs.
var captureTriggers = []struct{ name, event, referencing string }{
	{"trail_capture_insert", "INSERT", "NEW TABLE AS trail_new"},
	{"trail_capture_update", "UPDATE", "OLD TABLE AS trail_old NEW TABLE AS trail_new"},
	{"trail_capture_delete", "DELETE", "OLD TABLE AS trail_old"},
}

var resourceRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// EnableCapture installs trigger capture on table (a name as SQL would read
// it: "users", "billing.invoices", `"Mixed"`), in one transaction: either
// every trigger is installed or none. It fails, naming the problem, for an
// unknown table, a table without a primary key, an unknown tenant, ignored
// or redacted column, a capture already enabled, or a Trail schema not
// migrated. The caller must own the table. It returns the capture as
// ListCaptures will report it.
//
// Unless opts.NoDefaultRedaction is set, the columns trailprivacy's default
// deny-list matches are redacted: those that exist now (matched by
// trailprivacy and stored with the capture) and any added later (matched
// by the triggers, with a rule generated from the same deny-list).
func EnableCapture(ctx context.Context, db Beginner, table string, opts CaptureOptions) (Capture, error) {
	schema, err := captureSchema(opts.Schema)
	if err != nil {
		return Capture{}, err
	}
	var out Capture
	err = captureTx(ctx, db, func(tx pgx.Tx) error {
		rel, err := lookupTable(ctx, tx, table)
		if err != nil {
			return err
		}
		if err := checkCaptureInstalled(ctx, tx, schema); err != nil {
			return err
		}
		// CREATE TRIGGER takes this lock anyway; taking it first makes the
		// checks below hold until we commit.
		if _, err := tx.Exec(ctx, "LOCK TABLE "+rel.qualified+" IN SHARE ROW EXCLUSIVE MODE"); err != nil {
			return fmt.Errorf("trailpgx: capture %s: %w", rel.qualified, err)
		}
		existing, err := listCaptures(ctx, tx, "", false)
		if err != nil {
			return err
		}
		name := opts.Name
		if name == "" {
			name = strings.ToLower(rel.name)
		}
		if !resourceRE.MatchString(name) || len(name) > 100 {
			return fmt.Errorf("trailpgx: capture %s: resource name %q must be lower-case letters, digits, _ or - starting with a letter (actions are %q); set CaptureOptions.Name (--name)", rel.qualified, name, name+".insert")
		}
		for _, c := range existing {
			if c.Table == rel.qualified {
				return fmt.Errorf("trailpgx: capture %s: %w (disable it first to change its options)", rel.qualified, ErrCaptureEnabled)
			}
			if c.Name == name && c.schema == schema {
				return fmt.Errorf("trailpgx: capture %s: the name %q is already used by %s; choose another with CaptureOptions.Name (--name)", rel.qualified, name, c.Table)
			}
		}
		cols, key, err := tableColumns(ctx, tx, rel.oid)
		if err != nil {
			return err
		}
		if len(key) == 0 {
			return fmt.Errorf("trailpgx: capture %s: %w: capture names each event's target by its primary key; add one (ALTER TABLE … ADD PRIMARY KEY)", rel.qualified, ErrNoPrimaryKey)
		}
		check := func(what string, names ...string) error {
			for _, n := range names {
				if !slices.Contains(cols, n) {
					return fmt.Errorf("trailpgx: capture %s: %s column %q: %w (columns: %s)", rel.qualified, what, n, ErrUnknownColumn, strings.Join(cols, ", "))
				}
			}
			return nil
		}
		if opts.TenantColumn != "" {
			if err := check("tenant", opts.TenantColumn); err != nil {
				return err
			}
		}
		if err := check("ignored", opts.Ignore...); err != nil {
			return err
		}
		if err := check("redacted", opts.Redact...); err != nil {
			return err
		}
		for _, n := range opts.Ignore {
			if slices.Contains(opts.Redact, n) {
				return fmt.Errorf("trailpgx: capture %s: column %q is both ignored and redacted", rel.qualified, n)
			}
		}
		req := ""
		if opts.RequireTenant {
			req = "require_tenant"
		}
		// The default redaction: the rule the triggers apply to every column
		// name, and the columns trailprivacy finds deny-listed now.
		pattern, denied := "", []string{}
		if !opts.NoDefaultRedaction {
			pattern = defaultRedactionPattern()
			pol := trailprivacy.DefaultPolicy()
			for _, c := range cols {
				if !slices.Contains(opts.Ignore, c) && !slices.Contains(opts.Redact, c) && pol.ActionFor("", c) == trailprivacy.ActionRedact {
					denied = append(denied, c)
				}
			}
		}
		args := []string{name, opts.TenantColumn, arrayLiteral(opts.Ignore), arrayLiteral(opts.Redact), arrayLiteral(key), req,
			pattern, arrayLiteral(denied)}
		quoted := make([]string, len(args))
		for i, a := range args {
			quoted[i] = quoteLiteral(a)
		}
		// Compile the capture into one function per operation (planned once
		// per session), then point the triggers at them.
		var fns []string
		if err := tx.QueryRow(ctx, "SELECT "+schema+".capture_install($1::regclass, $2::text[])", rel.oid, args).Scan(&fns); err != nil {
			return fmt.Errorf("trailpgx: capture %s: %w", rel.qualified, err)
		}
		if len(fns) != len(captureTriggers) {
			return fmt.Errorf("trailpgx: capture %s: capture_install returned %d functions", rel.qualified, len(fns))
		}
		for i, t := range captureTriggers {
			q := fmt.Sprintf("CREATE TRIGGER %s AFTER %s ON %s REFERENCING %s FOR EACH STATEMENT EXECUTE FUNCTION %s(%s)",
				t.name, t.event, rel.qualified, t.referencing, fns[i], strings.Join(quoted, ", "))
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("trailpgx: capture %s: %w", rel.qualified, err)
			}
		}
		out = Capture{Table: rel.qualified, Name: name, Key: key, TenantColumn: opts.TenantColumn,
			Ignore: opts.Ignore, Redact: opts.Redact, RequireTenant: opts.RequireTenant,
			schema: schema, oid: rel.oid, args: args}
		return out.readDefaultRedaction(ctx, tx)
	})
	if err != nil {
		return Capture{}, err
	}
	return out, nil
}

// DisableCapture removes the capture triggers from table, in one
// transaction. Events already recorded stay.
func DisableCapture(ctx context.Context, db Beginner, table string) error {
	return captureTx(ctx, db, func(tx pgx.Tx) error {
		rel, err := lookupTable(ctx, tx, table)
		if err != nil {
			return err
		}
		// The Trail schemas whose functions the triggers call.
		rows, err := tx.Query(ctx, `SELECT DISTINCT quote_ident(n.nspname) FROM pg_trigger t
			JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace n ON n.oid = p.pronamespace
			WHERE t.tgrelid = $1 AND t.tgname LIKE 'trail\_capture\_%'`, rel.oid)
		if err != nil {
			return fmt.Errorf("trailpgx: capture %s: %w", rel.qualified, err)
		}
		schemas, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("trailpgx: capture %s: %w", rel.qualified, err)
		}
		if len(schemas) == 0 {
			return fmt.Errorf("trailpgx: capture %s: %w", rel.qualified, ErrCaptureNotEnabled)
		}
		for _, t := range captureTriggers {
			if _, err := tx.Exec(ctx, "DROP TRIGGER IF EXISTS "+t.name+" ON "+rel.qualified); err != nil {
				return fmt.Errorf("trailpgx: capture %s: %w", rel.qualified, err)
			}
		}
		for _, sc := range schemas {
			if _, err := tx.Exec(ctx, "SELECT "+sc+".capture_uninstall($1::regclass)", rel.oid); err != nil {
				return fmt.Errorf("trailpgx: capture %s: %w", rel.qualified, err)
			}
		}
		return nil
	})
}

// ListCaptures returns the tables captured into Trail's schema (default
// "trail"), ordered by table. The triggers themselves are the registry:
// dropping a table drops its capture, and nothing can go stale.
func ListCaptures(ctx context.Context, db Beginner, schema string) ([]Capture, error) {
	quoted, err := captureSchema(schema)
	if err != nil {
		return nil, err
	}
	var out []Capture
	err = captureTx(ctx, db, func(tx pgx.Tx) error {
		out, err = listCaptures(ctx, tx, quoted, true)
		return err
	})
	return out, err
}

func captureSchema(schema string) (string, error) {
	if schema == "" {
		schema = "trail"
	}
	if !identRE.MatchString(schema) {
		return "", fmt.Errorf("trailpgx: capture: schema %q must be a lower-case SQL identifier", schema)
	}
	return pgx.Identifier{schema}.Sanitize(), nil
}

func captureTx(ctx context.Context, db Beginner, fn func(pgx.Tx) error) error {
	if db == nil {
		return errors.New("trailpgx: capture: db is nil")
	}
	tx, err := db.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return fmt.Errorf("trailpgx: capture: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("trailpgx: capture: commit: %w", err)
	}
	return nil
}

type relation struct {
	oid       uint32
	name      string // unquoted table name
	qualified string // schema-qualified, quoted where needed
}

func lookupTable(ctx context.Context, tx pgx.Tx, table string) (relation, error) {
	var r relation
	if strings.TrimSpace(table) == "" {
		return r, errors.New("trailpgx: capture: a table name is required")
	}
	var kind string
	err := tx.QueryRow(ctx, `SELECT c.oid, c.relname, format('%I.%I', n.nspname, c.relname), c.relkind::text
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = to_regclass($1)`, table).Scan(&r.oid, &r.name, &r.qualified, &kind)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("trailpgx: capture %q: %w (names are resolved on the search_path; qualify it, e.g. public.%s)", table, ErrUnknownTable, table)
	}
	if err != nil {
		return r, fmt.Errorf("trailpgx: capture %q: %w", table, err)
	}
	if kind != "r" && kind != "p" {
		return r, fmt.Errorf("trailpgx: capture %s: not a table (relkind %s)", r.qualified, kind)
	}
	return r, nil
}

func checkCaptureInstalled(ctx context.Context, tx pgx.Tx, schema string) error {
	var ok bool
	if err := tx.QueryRow(ctx, "SELECT to_regprocedure($1) IS NOT NULL", schema+".capture_install(regclass, text[])").Scan(&ok); err != nil {
		return fmt.Errorf("trailpgx: capture: %w", err)
	}
	if !ok {
		return fmt.Errorf("trailpgx: capture: Trail schema %s has no capture function: migrate the store first (trail migrate --postgres DSN, or Store.Migrate)", schema)
	}
	ok, err := hasDefaultRedaction(ctx, tx, schema)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("trailpgx: capture: Trail schema %s predates the default redaction (migration 0009): migrate the store first (trail migrate --postgres DSN, or Store.Migrate)", schema)
	}
	return nil
}

// hasDefaultRedaction reports whether the Trail schema (quoted) has the
// default-redaction functions of migration 0009.
func hasDefaultRedaction(ctx context.Context, tx pgx.Tx, schema string) (bool, error) {
	var ok bool
	if err := tx.QueryRow(ctx, "SELECT to_regprocedure($1) IS NOT NULL", schema+".capture_redacts(text[], text)").Scan(&ok); err != nil {
		return false, fmt.Errorf("trailpgx: capture: %w", err)
	}
	return ok, nil
}

// defaultRedactionPattern is the rule the capture triggers apply to column
// names (capture_redacts in migration 0009): a PostgreSQL regular
// expression generated from trailprivacy.DefaultDenyList. Each entry's
// letters and digits, lower-cased, form one alternative, with an optional
// '_' between any two, between word boundaries; the triggers match it
// against the column name split into words the way trailprivacy splits
// names (camelCase, acronyms, separators) and joined with '_'. So "api_key"
// becomes a_?p_?i_?k_?e_?y, which matches api_key, apikey, apiKey, APIKey,
// x_api_key, but not rapid_keys; "pan" matches card_pan but not company.
// Entries with other than ASCII letters and digits are left out of the
// rule: EnableCapture's trailprivacy list still covers existing columns.
var defaultRedactionPattern = sync.OnceValue(func() string {
	var alts []string
next:
	for _, d := range trailprivacy.DefaultDenyList() {
		var b strings.Builder
		for _, r := range d {
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				continue
			}
			if r > unicode.MaxASCII {
				continue next
			}
			if b.Len() > 0 {
				b.WriteString("_?")
			}
			b.WriteRune(unicode.ToLower(r))
		}
		if s := b.String(); s != "" && !slices.Contains(alts, s) {
			alts = append(alts, s)
		}
	}
	return "(^|_)(" + strings.Join(alts, "|") + ")(_|$)"
})

// readDefaultRedaction sets DefaultRedaction and DefaultRedacted from the
// capture's trigger arguments and the table's columns now, as the triggers
// see them.
func (c *Capture) readDefaultRedaction(ctx context.Context, tx pgx.Tx) error {
	ok, err := hasDefaultRedaction(ctx, tx, c.schema)
	if err != nil || !ok {
		return err // an older schema's capture functions do not redact by default
	}
	// 6 arguments: enabled before migration 0009, which gave it the default.
	c.DefaultRedaction = len(c.args) < 8 || c.args[6] != ""
	c.DefaultRedacted = nil
	if !c.DefaultRedaction {
		return nil
	}
	err = tx.QueryRow(ctx, `SELECT coalesce(array_agg(attname::text ORDER BY attnum), '{}') FROM pg_attribute
		WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped
			AND attname::text <> ALL ($3::text[]) AND attname::text <> ALL ($4::text[])
			AND `+c.schema+`.capture_redacts($2::text[], attname::text)`,
		c.oid, c.args, nonNil(c.Ignore), nonNil(c.Redact)).Scan(&c.DefaultRedacted)
	if err != nil {
		return fmt.Errorf("trailpgx: capture %s: default redaction: %w", c.Table, err)
	}
	if len(c.DefaultRedacted) == 0 {
		c.DefaultRedacted = nil
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// tableColumns returns the table's live columns in order and its primary
// key's columns in key order.
func tableColumns(ctx context.Context, tx pgx.Tx, oid uint32) (cols, key []string, err error) {
	rows, err := tx.Query(ctx, `SELECT attname::text FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, oid)
	if err == nil {
		cols, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		return nil, nil, fmt.Errorf("trailpgx: capture: columns: %w", err)
	}
	rows, err = tx.Query(ctx, `SELECT a.attname::text FROM pg_index i
		CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.ord`, oid)
	if err == nil {
		key, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		return nil, nil, fmt.Errorf("trailpgx: capture: primary key: %w", err)
	}
	return cols, key, nil
}

// listCaptures reads the insert triggers (every capture has one) and their
// arguments; schema limits them to one Trail schema's capture function.
// detail reads the default redaction too.
func listCaptures(ctx context.Context, tx pgx.Tx, schema string, detail bool) ([]Capture, error) {
	rows, err := tx.Query(ctx, `SELECT format('%I.%I', n.nspname, c.relname), t.tgargs, t.tgnargs, quote_ident(pn.nspname), t.tgrelid
		FROM pg_trigger t
		JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace pn ON pn.oid = p.pronamespace
		WHERE t.tgname = 'trail_capture_insert' AND (p.proname = 'capture' OR p.proname LIKE 'capture\_%\_insert')
			AND ($1 = '' OR p.pronamespace = to_regnamespace($1))
		ORDER BY 1`, schema)
	if err != nil {
		return nil, fmt.Errorf("trailpgx: capture: list: %w", err)
	}
	defer rows.Close()
	var out []Capture
	for rows.Next() {
		var (
			c     Capture
			raw   []byte
			nargs int16
		)
		if err := rows.Scan(&c.Table, &raw, &nargs, &c.schema, &c.oid); err != nil {
			return nil, fmt.Errorf("trailpgx: capture: list: %w", err)
		}
		args := strings.Split(string(bytes.TrimSuffix(raw, []byte{0})), "\x00")
		// 6 arguments: enabled before migration 0009.
		if len(args) != int(nargs) || (nargs != 6 && nargs != 8) {
			return nil, fmt.Errorf("trailpgx: capture: list: trigger on %s has %d arguments, want 8", c.Table, nargs)
		}
		c.args = args
		c.Name, c.TenantColumn = args[0], args[1]
		c.Ignore, c.Redact, c.Key = parseArray(args[2]), parseArray(args[3]), parseArray(args[4])
		c.RequireTenant = args[5] == "require_tenant"
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trailpgx: capture: list: %w", err)
	}
	if detail {
		for i := range out {
			if err := out[i].readDefaultRedaction(ctx, tx); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// arrayLiteral writes names as a PostgreSQL text[] literal, every element
// quoted.
func arrayLiteral(names []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for _, r := range n {
			if r == '"' || r == '\\' {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// parseArray reads what arrayLiteral wrote.
func parseArray(s string) []string {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	var (
		out    []string
		cur    strings.Builder
		in, bs bool
	)
	for _, r := range s {
		switch {
		case bs:
			cur.WriteRune(r)
			bs = false
		case r == '\\':
			bs = true
		case r == '"':
			in = !in
		case r == ',' && !in:
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	if s != "" {
		out = append(out, cur.String())
	}
	return out
}

// EnableCapture is the package function EnableCapture in the store's schema,
// on the store's connections.
func (s *Store) EnableCapture(ctx context.Context, table string, opts CaptureOptions) (Capture, error) {
	opts.Schema = s.cfg.Schema
	var out Capture
	err := s.with(ctx, func(c *pgx.Conn) error {
		var err error
		out, err = EnableCapture(ctx, c, table, opts)
		return err
	})
	return out, err
}

// DisableCapture is the package function DisableCapture on the store's
// connections.
func (s *Store) DisableCapture(ctx context.Context, table string) error {
	return s.with(ctx, func(c *pgx.Conn) error { return DisableCapture(ctx, c, table) })
}

// ListCaptures is the package function ListCaptures for the store's schema.
func (s *Store) ListCaptures(ctx context.Context) ([]Capture, error) {
	var out []Capture
	err := s.with(ctx, func(c *pgx.Conn) error {
		var err error
		out, err = ListCaptures(ctx, c, s.cfg.Schema)
		return err
	})
	return out, err
}

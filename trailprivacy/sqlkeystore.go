package trailprivacy

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// KeyStoreSchema creates the table of wrapped data keys. It is portable SQL
// that SQLite and PostgreSQL both run, one statement per element; store
// migrators can embed it, and SQLKeyStore.Init runs it (IF NOT EXISTS).
//
// A row is one data key; wrapped_key is NULL and destroyed_at set once the
// key is destroyed (a tombstone without key material). The partial unique
// index allows one live key per tenant and subject.
var KeyStoreSchema = []string{
	`CREATE TABLE IF NOT EXISTS trail_subject_keys (
	tenant       TEXT   NOT NULL,
	subject      TEXT   NOT NULL,
	key_id       TEXT   NOT NULL,
	kek_id       TEXT   NOT NULL,
	wrapped_key  TEXT,
	created_at   BIGINT NOT NULL,
	destroyed_at BIGINT,
	PRIMARY KEY (tenant, subject, key_id)
)`,
	`CREATE UNIQUE INDEX IF NOT EXISTS trail_subject_keys_live
	ON trail_subject_keys (tenant, subject) WHERE destroyed_at IS NULL`,
}

// DBTX is what SQLKeyStore needs of a database: *sql.DB, *sql.Conn or *sql.Tx.
type DBTX interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// SQLKeyStore is a KeyStore in the table trail_subject_keys of a SQLite
// (modernc.org/sqlite) or PostgreSQL (pgx stdlib) database, through
// database/sql. Its SQL is portable: $n placeholders, TEXT and BIGINT
// columns (key material as base64, times as Unix microseconds).
type SQLKeyStore struct {
	db     DBTX
	schema string // "" until resolved: SQLite's database, or DefaultSchema on PostgreSQL

	// stmts holds Current's and Create's statements prepared on root, the
	// *sql.DB the store was made on (nil otherwise): database/sql prepares
	// a query's text on every call, which on SQLite cost more than running
	// it. A transaction of root's (createAll) uses them through Tx.Stmt.
	root  *sql.DB
	stmts *stmtCache

	once    sync.Once
	resolve error
}

// DefaultSchema is the PostgreSQL schema NewSQLKeyStore keeps its table in:
// the default schema of Trail's PostgreSQL store (trailpgx.Config.Schema), so
// that the keys sit beside the events they protect and the CLI and server
// find them. A store in another schema takes NewSQLKeyStoreIn.
const DefaultSchema = "trail"

// NewSQLKeyStore returns a key store over db: on PostgreSQL in the schema
// DefaultSchema ("trail"), on SQLite in the database itself. Call Init (or run
// KeyStoreSchema in a migration) before use.
//
// Before this default, NewSQLKeyStore on PostgreSQL used the search_path
// (usually public). Init refuses to start when it finds keys only there,
// naming the statement that moves them (docs/privacy.md).
func NewSQLKeyStore(db DBTX) *SQLKeyStore { return withStmts(&SQLKeyStore{db: db}) }

// withStmts gives s a statement cache when its db is a *sql.DB.
func withStmts(s *SQLKeyStore) *SQLKeyStore {
	if db, ok := s.db.(*sql.DB); ok {
		s.root, s.stmts = db, &stmtCache{m: map[string]*sql.Stmt{}}
	}
	return s
}

// stmtCache is a SQLKeyStore's prepared statements by query text.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// stmt returns query prepared on s.root, for use on s.db (root itself or a
// transaction of root's), or nil to run the text (no cache, or preparing
// failed: running it reports the error).
func (s *SQLKeyStore) stmt(ctx context.Context, query string) *sql.Stmt {
	if s.stmts == nil {
		return nil
	}
	s.stmts.mu.Lock()
	st := s.stmts.m[query]
	if st == nil {
		var err error
		if st, err = s.root.PrepareContext(ctx, query); err != nil {
			s.stmts.mu.Unlock()
			return nil
		}
		s.stmts.m[query] = st
	}
	s.stmts.mu.Unlock()
	if tx, ok := s.db.(*sql.Tx); ok {
		return tx.StmtContext(ctx, st)
	}
	return st
}

func (s *SQLKeyStore) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if st := s.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.db.QueryRowContext(ctx, query, args...)
}

func (s *SQLKeyStore) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := s.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return s.db.ExecContext(ctx, query, args...)
}

// NewSQLKeyStoreIn returns a key store whose table lives in the PostgreSQL
// schema named schema (the schema of the deployment's events, so that one
// dump or one DROP SCHEMA covers both). Init creates the schema if needed.
// A schema name holding a double quote or NUL is an error.
func NewSQLKeyStoreIn(db DBTX, schema string) (*SQLKeyStore, error) {
	if schema == "" || strings.ContainsAny(schema, "\"\x00") {
		return nil, fmt.Errorf("trailprivacy: bad schema name %q", schema)
	}
	return withStmts(&SQLKeyStore{db: db, schema: schema}), nil
}

// resolveSchema settles which schema a store made by NewSQLKeyStore uses:
// DefaultSchema on PostgreSQL, none on SQLite (which has no current_schema).
func (s *SQLKeyStore) resolveSchema(ctx context.Context) error {
	s.once.Do(func() {
		if s.schema != "" {
			return
		}
		var cur sql.NullString
		if err := s.db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&cur); err != nil {
			if strings.Contains(err.Error(), "no such function") {
				return // SQLite
			}
			s.resolve = fmt.Errorf("trailprivacy: key store: %w", err)
			return
		}
		s.schema = DefaultSchema
	})
	return s.resolve
}

// In returns the same key table through tx, the caller's transaction: what
// it creates exists only if tx commits. The schema must be resolved (Init).
func (s *SQLKeyStore) In(tx DBTX) KeyStore { return s.in(tx, false) }

// in is In; own says tx is a transaction of s's own *sql.DB (createAll), in
// which the statements prepared on it serve (Tx.Stmt refuses another's).
func (s *SQLKeyStore) in(tx DBTX, own bool) *SQLKeyStore {
	in := &SQLKeyStore{db: tx, schema: s.schema, resolve: s.resolve}
	if own {
		in.root, in.stmts = s.root, s.stmts
	}
	in.once.Do(func() {})
	return in
}

// Where says where the keys are, for error messages: `schema "trail"` on
// PostgreSQL, "the SQLite database" on SQLite.
func (s *SQLKeyStore) Where() string {
	if s.schema == "" {
		return "the SQLite database"
	}
	return fmt.Sprintf("schema %q", s.schema)
}

// q qualifies the table name of query with the store's schema.
func (s *SQLKeyStore) q(query string) string {
	if s.schema == "" {
		return query
	}
	return strings.ReplaceAll(query, "trail_subject_keys", `"`+s.schema+`".trail_subject_keys`)
}

// Init creates the table and index if they are absent (and the schema, for
// a store made by NewSQLKeyStoreIn).
func (s *SQLKeyStore) Init(ctx context.Context) error {
	if err := s.resolveSchema(ctx); err != nil {
		return err
	}
	if s.schema != "" {
		if _, err := s.db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS "`+s.schema+`"`); err != nil {
			return fmt.Errorf("trailprivacy: create schema %s: %w", s.schema, err)
		}
		if err := s.checkStrayKeys(ctx); err != nil {
			return err
		}
	}
	for i, q := range KeyStoreSchema {
		if s.schema != "" {
			if i == 0 {
				q = s.q(q)
			} else {
				// The index takes the table's schema; only the table is qualified.
				q = strings.Replace(q, "ON trail_subject_keys", `ON "`+s.schema+`".trail_subject_keys`, 1)
			}
		}
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("trailprivacy: create trail_subject_keys: %w", err)
		}
	}
	return nil
}

// checkStrayKeys refuses a PostgreSQL key store whose schema has no key
// table while the search_path's default schema has one with keys in it:
// keys written by an earlier NewSQLKeyStore. Starting anyway would write new
// keys beside the old ones and leave every old value unreadable.
func (s *SQLKeyStore) checkStrayKeys(ctx context.Context) error {
	var here, there sql.NullString
	err := s.db.QueryRowContext(ctx, `SELECT to_regclass(quote_ident($1) || '.trail_subject_keys')::text,
		(SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE c.relname = 'trail_subject_keys' AND c.relkind IN ('r', 'p') AND n.nspname = current_schema() AND n.nspname <> $1)`,
		s.schema).Scan(&here, &there)
	if err != nil {
		return fmt.Errorf("trailprivacy: key store: %w", err)
	}
	if here.Valid || !there.Valid {
		return nil
	}
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM "`+strings.ReplaceAll(there.String, `"`, `""`)+`".trail_subject_keys`).Scan(&n); err != nil {
		return fmt.Errorf("trailprivacy: key store: %w", err)
	}
	if n == 0 {
		return nil
	}
	return fmt.Errorf("trailprivacy: the data keys are in %s.trail_subject_keys (%d keys), not in schema %q where Trail now keeps them: move them with ALTER TABLE %s.trail_subject_keys SET SCHEMA %s (see docs/privacy.md), or open the key store with NewSQLKeyStoreIn(db, %q)",
		there.String, n, s.schema, there.String, s.schema, there.String)
}

const keyCols = `tenant, subject, key_id, kek_id, wrapped_key, created_at, destroyed_at`

type rowScanner interface{ Scan(...any) error }

func scanKey(r rowScanner) (SubjectKey, error) {
	var k SubjectKey
	var wrapped sql.NullString
	var created int64
	var destroyed sql.NullInt64
	if err := r.Scan(&k.Tenant, &k.Subject, &k.ID, &k.KEKID, &wrapped, &created, &destroyed); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return SubjectKey{}, ErrKeyNotFound
		}
		return SubjectKey{}, fmt.Errorf("trailprivacy: read data key: %w", err)
	}
	k.CreatedAt = time.UnixMicro(created).UTC()
	if destroyed.Valid {
		k.DestroyedAt = time.UnixMicro(destroyed.Int64).UTC()
	}
	if wrapped.Valid {
		b, err := base64.StdEncoding.DecodeString(wrapped.String)
		if err != nil {
			return SubjectKey{}, fmt.Errorf("trailprivacy: data key %s of %s: corrupt wrapped key", k.ID, k.Subject)
		}
		k.Wrapped = b
	}
	return k, nil
}

func (s *SQLKeyStore) Current(ctx context.Context, tenant, subject string) (SubjectKey, error) {
	if err := s.resolveSchema(ctx); err != nil {
		return SubjectKey{}, err
	}
	return scanKey(s.queryRow(ctx,
		s.q(`SELECT `+keyCols+` FROM trail_subject_keys WHERE tenant = $1 AND subject = $2 AND destroyed_at IS NULL`),
		tenant, subject))
}

func (s *SQLKeyStore) Get(ctx context.Context, tenant, subject, id string) (SubjectKey, error) {
	if err := s.resolveSchema(ctx); err != nil {
		return SubjectKey{}, err
	}
	return scanKey(s.db.QueryRowContext(ctx,
		s.q(`SELECT `+keyCols+` FROM trail_subject_keys WHERE tenant = $1 AND subject = $2 AND key_id = $3`),
		tenant, subject, id))
}

// HasKeyID reports whether any subject of any tenant has the key id (live
// or destroyed). It reads the whole table: Reveal asks only when a value's
// key is not its subject's, to tell a moved value from a missing table.
func (s *SQLKeyStore) HasKeyID(ctx context.Context, id string) (bool, error) {
	if err := s.resolveSchema(ctx); err != nil {
		return false, err
	}
	var n int
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT count(*) FROM trail_subject_keys WHERE key_id = $1`), id).Scan(&n); err != nil {
		return false, fmt.Errorf("trailprivacy: find data key: %w", err)
	}
	return n > 0, nil
}

func (s *SQLKeyStore) Create(ctx context.Context, k SubjectKey) (SubjectKey, error) {
	if err := s.resolveSchema(ctx); err != nil {
		return SubjectKey{}, err
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = time.Now()
	}
	_, err := s.exec(ctx,
		s.q(`INSERT INTO trail_subject_keys (`+keyCols+`) VALUES ($1, $2, $3, $4, $5, $6, NULL) ON CONFLICT DO NOTHING`),
		k.Tenant, k.Subject, k.ID, k.KEKID, base64.StdEncoding.EncodeToString(k.Wrapped), k.CreatedAt.UnixMicro())
	if err != nil {
		return SubjectKey{}, fmt.Errorf("trailprivacy: store data key: %w", err)
	}
	cur, err := s.Current(ctx, k.Tenant, k.Subject)
	if errors.Is(err, ErrKeyNotFound) {
		// The insert conflicted on the primary key with a destroyed key of
		// the same ID: refuse rather than reuse an ID.
		return SubjectKey{}, errors.New("trailprivacy: data key ID reused")
	}
	return cur, err
}

// createAll is Create for many keys in one transaction (one commit, not
// one per key), for Privacy.Batch. Inside a caller's transaction (In) it
// runs in that transaction.
func (s *SQLKeyStore) createAll(ctx context.Context, keys []SubjectKey) ([]SubjectKey, error) {
	db, ok := s.db.(*sql.DB)
	if !ok {
		return createEach(ctx, s, keys)
	}
	if err := s.resolveSchema(ctx); err != nil {
		return nil, err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("trailprivacy: store data keys: %w", err)
	}
	defer tx.Rollback()
	live, err := s.in(tx, true).insertAll(ctx, keys)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("trailprivacy: store data keys: %w", err)
	}
	return live, nil
}

// keysPerInsert bounds one multi-row INSERT of keys: 6 parameters a row.
const keysPerInsert = 500

// insertAll is createEach in multi-row INSERTs: a key the INSERT returns is
// the subject's live key; for one it does not (another writer's key was
// there first), the live key is read.
func (s *SQLKeyStore) insertAll(ctx context.Context, keys []SubjectKey) ([]SubjectKey, error) {
	live := make([]SubjectKey, len(keys))
	for lo := 0; lo < len(keys); lo += keysPerInsert {
		chunk := keys[lo:min(lo+keysPerInsert, len(keys))]
		var b strings.Builder
		args := make([]any, 0, 6*len(chunk))
		b.WriteString(`INSERT INTO trail_subject_keys (` + keyCols + `) VALUES `)
		for i, k := range chunk {
			if k.CreatedAt.IsZero() {
				k.CreatedAt = time.Now()
			}
			k.CreatedAt = k.CreatedAt.UTC().Truncate(time.Microsecond) // as stored
			live[lo+i] = k
			if i > 0 {
				b.WriteByte(',')
			}
			if s.schema == "" {
				// SQLite: "$n" is a named parameter there, looked up by name
				// at every bind, which a statement of 3,000 made quadratic.
				b.WriteString("(?, ?, ?, ?, ?, ?, NULL)")
			} else {
				n := len(args)
				fmt.Fprintf(&b, "($%d, $%d, $%d, $%d, $%d, $%d, NULL)", n+1, n+2, n+3, n+4, n+5, n+6)
			}
			args = append(args, k.Tenant, k.Subject, k.ID, k.KEKID, base64.StdEncoding.EncodeToString(k.Wrapped), k.CreatedAt.UnixMicro())
		}
		b.WriteString(` ON CONFLICT DO NOTHING RETURNING key_id`)
		rows, err := s.db.QueryContext(ctx, s.q(b.String()), args...)
		if err != nil {
			return nil, fmt.Errorf("trailprivacy: store data keys: %w", err)
		}
		stored := map[string]bool{}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("trailprivacy: store data keys: %w", err)
			}
			stored[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("trailprivacy: store data keys: %w", err)
		}
		for i, k := range chunk {
			if stored[k.ID] {
				continue // live[lo+i] is k
			}
			cur, err := s.Current(ctx, k.Tenant, k.Subject)
			if errors.Is(err, ErrKeyNotFound) {
				return nil, errors.New("trailprivacy: data key ID reused")
			}
			if err != nil {
				return nil, err
			}
			live[lo+i] = cur
		}
	}
	return live, nil
}

// createEach stores keys one Create at a time, for a KeyStore that has no
// createAll, and returns each subject's live key.
func createEach(ctx context.Context, ks KeyStore, keys []SubjectKey) ([]SubjectKey, error) {
	live := make([]SubjectKey, len(keys))
	for i, k := range keys {
		cur, err := ks.Create(ctx, k)
		if err != nil {
			return nil, err
		}
		live[i] = cur
	}
	return live, nil
}

func (s *SQLKeyStore) Destroy(ctx context.Context, tenant, subject string, at time.Time) error {
	if err := s.resolveSchema(ctx); err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx,
		s.q(`UPDATE trail_subject_keys SET wrapped_key = NULL, destroyed_at = $3
		WHERE tenant = $1 AND subject = $2 AND destroyed_at IS NULL`),
		tenant, subject, at.UnixMicro())
	if err != nil {
		return fmt.Errorf("trailprivacy: destroy data key: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("trailprivacy: destroy data key: %w", err)
	}
	if n > 0 {
		return nil
	}
	var tombstones int64
	if err := s.db.QueryRowContext(ctx,
		s.q(`SELECT COUNT(*) FROM trail_subject_keys WHERE tenant = $1 AND subject = $2`),
		tenant, subject).Scan(&tombstones); err != nil {
		return fmt.Errorf("trailprivacy: destroy data key: %w", err)
	}
	if tombstones > 0 {
		return ErrAlreadyForgotten
	}
	return ErrUnknownSubject
}

func (s *SQLKeyStore) List(ctx context.Context, afterTenant, afterSubject string, limit int) ([]SubjectKey, error) {
	if err := s.resolveSchema(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.db.QueryContext(ctx,
		s.q(`SELECT `+keyCols+` FROM trail_subject_keys
		WHERE destroyed_at IS NULL AND (tenant > $1 OR (tenant = $1 AND subject > $2))
		ORDER BY tenant, subject LIMIT $3`),
		afterTenant, afterSubject, limit)
	if err != nil {
		return nil, fmt.Errorf("trailprivacy: list data keys: %w", err)
	}
	defer rows.Close()
	var out []SubjectKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trailprivacy: list data keys: %w", err)
	}
	return out, nil
}

func (s *SQLKeyStore) Replace(ctx context.Context, k SubjectKey, oldKEK string) (bool, error) {
	if err := s.resolveSchema(ctx); err != nil {
		return false, err
	}
	res, err := s.db.ExecContext(ctx,
		s.q(`UPDATE trail_subject_keys SET wrapped_key = $1, kek_id = $2
		WHERE tenant = $3 AND subject = $4 AND key_id = $5 AND kek_id = $6 AND destroyed_at IS NULL`),
		base64.StdEncoding.EncodeToString(k.Wrapped), k.KEKID, k.Tenant, k.Subject, k.ID, oldKEK)
	if err != nil {
		return false, fmt.Errorf("trailprivacy: rewrap data key: %w", err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

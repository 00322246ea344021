package trailserver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/trailhq/trail"
)

// Role is what an API key may do.
type Role string

// Roles. Admin includes everything reader and ingest may do.
const (
	RoleIngest Role = "ingest" // POST /v1/events only
	RoleReader Role = "reader" // the read endpoints only
	RoleAdmin  Role = "admin"  // reads, ingest and key management
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleIngest || r == RoleReader || r == RoleAdmin }

func (r Role) canIngest() bool { return r == RoleIngest || r == RoleAdmin }
func (r Role) canRead() bool   { return r == RoleReader || r == RoleAdmin }

// KeyPrefix starts every API key, so that secret scanners and people can tell
// a Trail key from other tokens.
const KeyPrefix = "trail_"

// Key is an API key's stored record. The secret itself is never stored: only
// its SHA-256 hash, which is what a request's key is looked up by.
type Key struct {
	ID string `json:"id"`
	// Tenant is the only tenant the key may read and write; empty means every
	// tenant and the platform events.
	Tenant    string     `json:"tenant,omitempty"`
	Role      Role       `json:"role"`
	Name      string     `json:"name,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// AllTenants reports whether the key is not scoped to one tenant.
func (k *Key) AllTenants() bool { return k.Tenant == "" }

// Active reports whether the key may be used at now.
func (k *Key) Active(now time.Time) bool {
	if k.RevokedAt != nil && !now.Before(*k.RevokedAt) {
		return false
	}
	return k.ExpiresAt == nil || now.Before(*k.ExpiresAt)
}

// Actor is how reads and writes made with the key appear in events.
func (k *Key) Actor() trail.Actor {
	return trail.Actor{Type: trail.ActorService, ID: "key-" + k.ID}
}

// Errors of key management that callers branch on.
var (
	ErrKeyNotFound = errors.New("trailserver: key not found")
	ErrInvalidKey  = errors.New("trailserver: invalid key")
)

// KeyStore keeps API keys. The server needs only Lookup on every request;
// the rest is key management for `trail keys` and the /v1/keys endpoints.
type KeyStore interface {
	// Insert stores k under the SHA-256 hash of its secret.
	Insert(ctx context.Context, k Key, hash [32]byte) error
	// Lookup returns the key whose secret hashes to hash, or ErrKeyNotFound.
	Lookup(ctx context.Context, hash [32]byte) (Key, error)
	// List returns every key, newest first; tenant, when set, limits it to
	// that tenant's keys.
	List(ctx context.Context, tenant string) ([]Key, error)
	// Revoke marks the key revoked at 'at'. Revoking twice keeps the first
	// time. An unknown id is ErrKeyNotFound.
	Revoke(ctx context.Context, id string, at time.Time) error
	// Count returns the number of keys, revoked ones included.
	Count(ctx context.Context) (int, error)
}

// NewKeyRequest describes a key to create.
type NewKeyRequest struct {
	Tenant string        `json:"tenant,omitempty"` // empty: all tenants (AllTenants must be true)
	All    bool          `json:"all_tenants,omitempty"`
	Role   Role          `json:"role"`
	Name   string        `json:"name,omitempty"`
	TTL    time.Duration `json:"-"` // 0: never expires
}

func (req *NewKeyRequest) validate() *Problem {
	if !req.Role.Valid() {
		return badRequest("role", fmt.Sprintf("%q must be ingest, reader or admin", clipStr(string(req.Role))))
	}
	switch {
	case req.All && req.Tenant != "":
		return badRequest("tenant", "give a tenant or all_tenants, not both")
	case !req.All && req.Tenant == "":
		return badRequest("tenant", "required (or all_tenants: true)")
	case req.Tenant != "" && !trail.ValidTenant(req.Tenant):
		return badRequest("tenant", fmt.Sprintf("%q is not a valid tenant", clipStr(req.Tenant)))
	}
	if len(req.Name) > 128 {
		return badRequest("name", "at most 128 bytes")
	}
	if req.TTL < 0 {
		return badRequest("expires_in", "must be positive")
	}
	return nil
}

// CreateKey makes a new random key, stores its hash and returns the record
// and the secret. The secret is shown to the caller once and never again.
func CreateKey(ctx context.Context, ks KeyStore, req NewKeyRequest, now time.Time) (Key, string, error) {
	if p := req.validate(); p != nil {
		return Key{}, "", fmt.Errorf("%w: %s: %s", ErrInvalidKey, p.Field, p.Detail)
	}
	secret, err := GenerateKey()
	if err != nil {
		return Key{}, "", err
	}
	k, err := insertKey(ctx, ks, req, secret, now)
	return k, secret, err
}

func insertKey(ctx context.Context, ks KeyStore, req NewKeyRequest, secret string, now time.Time) (Key, error) {
	id, err := randomID()
	if err != nil {
		return Key{}, err
	}
	now = now.UTC().Truncate(time.Microsecond)
	k := Key{ID: id, Tenant: req.Tenant, Role: req.Role, Name: req.Name, CreatedAt: now}
	if req.TTL > 0 {
		exp := now.Add(req.TTL)
		k.ExpiresAt = &exp
	}
	if err := ks.Insert(ctx, k, HashKey(secret)); err != nil {
		return Key{}, err
	}
	return k, nil
}

// GenerateKey returns a new secret: KeyPrefix and 256 random bits in
// base64url.
func GenerateKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("trailserver: random key: %w", err)
	}
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// HashKey returns the SHA-256 of a secret, the only form a key is stored in.
// A 256-bit random secret needs no salt or slow hash: it cannot be guessed.
func HashKey(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

func randomID() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("trailserver: random key id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// wellFormedKey reports whether s could be a key, before any lookup: bounded
// length, printable ASCII. It stops hostile headers from reaching the store.
func wellFormedKey(s string) bool {
	if len(s) < 16 || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// Bootstrap makes sure an admin key exists on a fresh deployment. If envKey
// (TRAIL_ADMIN_KEY) is set, that secret becomes an all-tenant admin key
// unless it is already stored, and secret is empty (the operator knows it).
// Otherwise, if no key exists at all, a new all-tenant admin key is created
// and its secret returned, to be printed once. With keys already present and
// no envKey, Bootstrap does nothing.
func Bootstrap(ctx context.Context, ks KeyStore, envKey string, now time.Time) (k Key, secret string, err error) {
	if envKey != "" {
		if !wellFormedKey(envKey) {
			return Key{}, "", fmt.Errorf("%w: TRAIL_ADMIN_KEY must be 16-256 printable ASCII characters", ErrInvalidKey)
		}
		existing, err := ks.Lookup(ctx, HashKey(envKey))
		if err == nil {
			if existing.Role != RoleAdmin || !existing.AllTenants() {
				return Key{}, "", fmt.Errorf("%w: TRAIL_ADMIN_KEY is stored as a %s key, not an all-tenant admin key", ErrInvalidKey, existing.Role)
			}
			if !existing.Active(now) {
				return Key{}, "", fmt.Errorf("%w: TRAIL_ADMIN_KEY is revoked or expired", ErrInvalidKey)
			}
			return existing, "", nil
		}
		if !errors.Is(err, ErrKeyNotFound) {
			return Key{}, "", err
		}
		k, err := insertKey(ctx, ks, NewKeyRequest{All: true, Role: RoleAdmin, Name: "bootstrap (TRAIL_ADMIN_KEY)"}, envKey, now)
		return k, "", err
	}
	n, err := ks.Count(ctx)
	if err != nil {
		return Key{}, "", err
	}
	if n > 0 {
		return Key{}, "", nil
	}
	return CreateKey(ctx, ks, NewKeyRequest{All: true, Role: RoleAdmin, Name: "bootstrap"}, now)
}

// SQLKeyStore keeps keys in a table of a database/sql database: the SQLite
// file of the embedded store, or PostgreSQL through pgx's stdlib driver. The
// table uses only TEXT and BIGINT columns so that one schema serves both.
type SQLKeyStore struct {
	db      *sql.DB
	dollars bool   // $1 placeholders (PostgreSQL) instead of ?1 (SQLite)
	table   string // quoted, possibly schema-qualified
}

// Dialects of SQLKeyStore.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

const keysDDL = `CREATE TABLE IF NOT EXISTS %s (
	id         TEXT PRIMARY KEY,
	hash       TEXT NOT NULL UNIQUE,
	tenant     TEXT NOT NULL,
	role       TEXT NOT NULL,
	name       TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT,
	revoked_at BIGINT
)`

// NewSQLKeyStore returns a key store in table trail_api_keys of db (the
// SQLite file, or PostgreSQL's search path), creating the table if needed.
func NewSQLKeyStore(ctx context.Context, db *sql.DB, dialect string) (*SQLKeyStore, error) {
	return newSQLKeyStore(ctx, db, dialect, `"trail_api_keys"`)
}

// NewPostgresKeyStore returns a key store in table api_keys of schema (the
// trailpgx store's schema, "trail" by default), creating it if needed. db is
// a database/sql handle on pgx's stdlib driver.
func NewPostgresKeyStore(ctx context.Context, db *sql.DB, schema string) (*SQLKeyStore, error) {
	if schema == "" || strings.ContainsAny(schema, "\"\x00") {
		return nil, fmt.Errorf("trailserver: bad schema name %q", clipStr(schema))
	}
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS "`+schema+`"`); err != nil {
		return nil, fmt.Errorf("trailserver: create schema for keys: %w", err)
	}
	return newSQLKeyStore(ctx, db, DialectPostgres, `"`+schema+`"."api_keys"`)
}

func newSQLKeyStore(ctx context.Context, db *sql.DB, dialect, table string) (*SQLKeyStore, error) {
	if dialect != DialectSQLite && dialect != DialectPostgres {
		return nil, fmt.Errorf("trailserver: unknown key store dialect %q", dialect)
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf(keysDDL, table)); err != nil {
		return nil, fmt.Errorf("trailserver: create key table: %w", err)
	}
	return &SQLKeyStore{db: db, dollars: dialect == DialectPostgres, table: table}, nil
}

// q names the table and rewrites $n placeholders for SQLite (?n).
func (s *SQLKeyStore) q(query string) string {
	query = strings.ReplaceAll(query, "trail_api_keys", s.table)
	if s.dollars {
		return query
	}
	return strings.ReplaceAll(query, "$", "?")
}

func micros(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMicro()
}

func fromMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.UnixMicro(v.Int64).UTC()
	return &t
}

// Insert implements KeyStore.
func (s *SQLKeyStore) Insert(ctx context.Context, k Key, hash [32]byte) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO trail_api_keys (id, hash, tenant, role, name, created_at, expires_at, revoked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`),
		k.ID, hex.EncodeToString(hash[:]), k.Tenant, string(k.Role), k.Name, k.CreatedAt.UnixMicro(), micros(k.ExpiresAt), micros(k.RevokedAt))
	if err != nil {
		return fmt.Errorf("trailserver: insert key: %w", err)
	}
	return nil
}

const keyCols = `id, hash, tenant, role, name, created_at, expires_at, revoked_at`

func scanKey(sc interface{ Scan(...any) error }) (Key, string, error) {
	var (
		k        Key
		hash     string
		role     string
		created  int64
		exp, rev sql.NullInt64
	)
	if err := sc.Scan(&k.ID, &hash, &k.Tenant, &role, &k.Name, &created, &exp, &rev); err != nil {
		return Key{}, "", err
	}
	k.Role = Role(role)
	k.CreatedAt = time.UnixMicro(created).UTC()
	k.ExpiresAt = fromMicros(exp)
	k.RevokedAt = fromMicros(rev)
	return k, hash, nil
}

// Lookup implements KeyStore. The row is found by its hash through the
// unique index, then the hashes are compared in constant time, so neither
// the lookup nor the comparison reveals anything about a secret.
func (s *SQLKeyStore) Lookup(ctx context.Context, hash [32]byte) (Key, error) {
	want := hex.EncodeToString(hash[:])
	row := s.db.QueryRowContext(ctx, s.q(`SELECT `+keyCols+` FROM trail_api_keys WHERE hash = $1`), want)
	k, got, err := scanKey(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, ErrKeyNotFound
	}
	if err != nil {
		return Key{}, fmt.Errorf("trailserver: look up key: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return Key{}, ErrKeyNotFound
	}
	return k, nil
}

// List implements KeyStore.
func (s *SQLKeyStore) List(ctx context.Context, tenant string) ([]Key, error) {
	query, args := `SELECT `+keyCols+` FROM trail_api_keys ORDER BY created_at DESC, id`, []any{}
	if tenant != "" {
		query, args = `SELECT `+keyCols+` FROM trail_api_keys WHERE tenant = $1 ORDER BY created_at DESC, id`, []any{tenant}
	}
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("trailserver: list keys: %w", err)
	}
	defer rows.Close()
	keys := []Key{}
	for rows.Next() {
		k, _, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("trailserver: list keys: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// Revoke implements KeyStore.
func (s *SQLKeyStore) Revoke(ctx context.Context, id string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE trail_api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2`), at.UnixMicro(), id)
	if err != nil {
		return fmt.Errorf("trailserver: revoke key: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("trailserver: revoke key: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", ErrKeyNotFound, strconv.Quote(clipStr(id)))
	}
	return nil
}

// Count implements KeyStore.
func (s *SQLKeyStore) Count(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM trail_api_keys`)).Scan(&n); err != nil {
		return 0, fmt.Errorf("trailserver: count keys: %w", err)
	}
	return n, nil
}

func clipStr(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

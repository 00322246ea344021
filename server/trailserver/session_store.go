package trailserver

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// AuthStore is what sessions and viewer tokens need beyond KeyStore, kept
// in the same database so that every replica on one store shares it. A
// KeyStore that implements it (SQLKeyStore does) is used by New; without
// one, sessions and viewer tokens are signed with a per-process key and
// sign-outs are remembered by that process only.
type AuthStore interface {
	// Secret returns the named 32-byte secret, creating it at random the
	// first time; concurrent first calls on one store agree on one value.
	Secret(ctx context.Context, name string) ([]byte, error)
	// KeyByID returns a key by its ID (ErrKeyNotFound): sessions carry the
	// key's ID, never its secret or hash.
	KeyByID(ctx context.Context, id string) (Key, error)
	// EndSession records that session id is over; it is remembered until
	// until, when the session would have expired anyway.
	EndSession(ctx context.Context, id string, until time.Time) error
	// SessionEnded reports whether EndSession was called for id.
	SessionEnded(ctx context.Context, id string) (bool, error)
	// ViewerSettings returns a tenant's viewer settings as stored JSON, or
	// nil when it has none.
	ViewerSettings(ctx context.Context, tenant string) ([]byte, error)
	// SetViewerSettings stores (replaces) a tenant's viewer settings.
	SetViewerSettings(ctx context.Context, tenant string, settings []byte) error
}

var _ AuthStore = (*SQLKeyStore)(nil)

// authTables are created beside the key table (trail_ui_secrets beside
// trail_api_keys; ui_secrets beside "schema".api_keys), TEXT and BIGINT
// only, as keysDDL.
var authTables = []struct{ name, ddl string }{
	{"ui_secrets", `CREATE TABLE IF NOT EXISTS %s (name TEXT PRIMARY KEY, secret TEXT NOT NULL)`},
	{"ui_ended_sessions", `CREATE TABLE IF NOT EXISTS %s (id TEXT PRIMARY KEY, until_at BIGINT NOT NULL)`},
	{"viewer_settings", `CREATE TABLE IF NOT EXISTS %s (tenant TEXT PRIMARY KEY, settings TEXT NOT NULL)`},
}

// authTable names a table beside the key table.
func (s *SQLKeyStore) authTable(name string) string {
	return strings.Replace(s.table, "api_keys", name, 1)
}

// authReady holds the SQLKeyStores whose auth tables exist.
var authReady sync.Map

// ensureAuth creates the tables on a store's first use of them (not in
// NewSQLKeyStore, so that a key store that never serves the UI adds none).
func (s *SQLKeyStore) ensureAuth(ctx context.Context) error {
	if _, ok := authReady.Load(s); ok {
		return nil
	}
	for _, t := range authTables {
		ddl := fmt.Sprintf(t.ddl, s.authTable(t.name))
		if _, err := s.db.ExecContext(ctx, ddl); err != nil {
			// Two replicas creating the table at once: PostgreSQL's
			// IF NOT EXISTS can lose that race with a unique violation;
			// the second try sees the table.
			if _, err2 := s.db.ExecContext(ctx, ddl); err2 != nil {
				return fmt.Errorf("trailserver: create %s: %w", t.name, err)
			}
		}
	}
	authReady.Store(s, true)
	return nil
}

func (s *SQLKeyStore) qa(name, query string) string {
	query = strings.ReplaceAll(query, "$T", s.authTable(name))
	if s.dollars {
		return query
	}
	return strings.ReplaceAll(query, "$", "?")
}

// Secret implements AuthStore.
func (s *SQLKeyStore) Secret(ctx context.Context, name string) ([]byte, error) {
	if err := s.ensureAuth(ctx); err != nil {
		return nil, err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("trailserver: random secret: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, s.qa("ui_secrets", `INSERT INTO $T (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`),
		name, hex.EncodeToString(b[:])); err != nil {
		return nil, fmt.Errorf("trailserver: store secret: %w", err)
	}
	var h string
	if err := s.db.QueryRowContext(ctx, s.qa("ui_secrets", `SELECT secret FROM $T WHERE name = $1`), name).Scan(&h); err != nil {
		return nil, fmt.Errorf("trailserver: read secret: %w", err)
	}
	sec, err := hex.DecodeString(h)
	if err != nil || len(sec) < 32 {
		return nil, fmt.Errorf("trailserver: stored secret %q is damaged", name)
	}
	return sec, nil
}

// KeyByID implements AuthStore.
func (s *SQLKeyStore) KeyByID(ctx context.Context, id string) (Key, error) {
	k, _, err := scanKey(s.db.QueryRowContext(ctx, s.q(`SELECT `+keyCols+` FROM trail_api_keys WHERE id = $1`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, ErrKeyNotFound
	}
	if err != nil {
		return Key{}, fmt.Errorf("trailserver: look up key: %w", err)
	}
	return k, nil
}

// EndSession implements AuthStore. Rows of sessions that have expired
// anyway are deleted on the way.
func (s *SQLKeyStore) EndSession(ctx context.Context, id string, until time.Time) error {
	if err := s.ensureAuth(ctx); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, s.qa("ui_ended_sessions", `INSERT INTO $T (id, until_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`),
		id, until.UnixMicro()); err != nil {
		return fmt.Errorf("trailserver: end session: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, s.qa("ui_ended_sessions", `DELETE FROM $T WHERE until_at < $1`), time.Now().UnixMicro()); err != nil {
		return fmt.Errorf("trailserver: prune ended sessions: %w", err)
	}
	return nil
}

// SessionEnded implements AuthStore.
func (s *SQLKeyStore) SessionEnded(ctx context.Context, id string) (bool, error) {
	if err := s.ensureAuth(ctx); err != nil {
		return false, err
	}
	var n int
	if err := s.db.QueryRowContext(ctx, s.qa("ui_ended_sessions", `SELECT COUNT(*) FROM $T WHERE id = $1`), id).Scan(&n); err != nil {
		return false, fmt.Errorf("trailserver: read ended sessions: %w", err)
	}
	return n > 0, nil
}

// ViewerSettings implements AuthStore.
func (s *SQLKeyStore) ViewerSettings(ctx context.Context, tenant string) ([]byte, error) {
	if err := s.ensureAuth(ctx); err != nil {
		return nil, err
	}
	var v string
	err := s.db.QueryRowContext(ctx, s.qa("viewer_settings", `SELECT settings FROM $T WHERE tenant = $1`), tenant).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("trailserver: read viewer settings: %w", err)
	}
	return []byte(v), nil
}

// SetViewerSettings implements AuthStore.
func (s *SQLKeyStore) SetViewerSettings(ctx context.Context, tenant string, settings []byte) error {
	if err := s.ensureAuth(ctx); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, s.qa("viewer_settings", `INSERT INTO $T (tenant, settings) VALUES ($1, $2)
		ON CONFLICT (tenant) DO UPDATE SET settings = excluded.settings`), tenant, string(settings)); err != nil {
		return fmt.Errorf("trailserver: store viewer settings: %w", err)
	}
	return nil
}

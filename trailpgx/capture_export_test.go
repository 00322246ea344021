package trailpgx

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail/internal/migrate"
)

// DefaultRedactionPattern exposes the capture triggers' redaction rule.
var DefaultRedactionPattern = defaultRedactionPattern

// MigrateTo brings the store's schema to version v and no further: the
// starting point of an upgrade test.
func MigrateTo(ctx context.Context, s *Store, v int) error {
	ms, err := migrate.Load(migrationFS, "migrations")
	if err != nil {
		return err
	}
	ms = ms[:v]
	for i := range ms {
		ms[i].SQL = s.render(ms[i].SQL)
	}
	table := s.cfg.Schema + ".trail_migrations"
	m, err := migrate.New(ms, &migrate.Config{Table: table, Lock: "LOCK TABLE " + table + " IN EXCLUSIVE MODE", Now: s.cfg.Now})
	if err != nil {
		return err
	}
	return s.with(ctx, func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+s.schema+"; CREATE TABLE IF NOT EXISTS "+s.schema+
			".trail_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"); err != nil {
			return err
		}
		_, err := m.Up(ctx, migrateDB{c})
		return err
	})
}

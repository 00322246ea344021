// Package migrate applies Trail's embedded, versioned schema migrations.
//
// Each store embeds its own files (0001_init.up.sql, 0002_….up.sql) and runs
// them with a Migrator at startup. The migrator is deliberately small (River's
// approach, not goose): the library must stay light, and a store should not
// pull a migration framework into every service that records events. It keeps
// a version table, applies each migration in its own transaction together with
// its version row (so a failure leaves the database at the previous version and
// the error names the migration), and refuses a database that a newer binary
// already migrated, because older code writing a newer schema can corrupt it.
//
// The apply loop talks to a two-interface abstraction (DB, Tx) so that the
// SQLite store (database/sql, see SQLDB) and the PostgreSQL store (pgx) share
// it.
package migrate

// Package trailsqlite is Trail's embedded store: one SQLite file, no server
// to run, so that `trail demo`, the CLI and a small service work with zero
// set-up. It uses modernc.org/sqlite (pure Go, no cgo) so the binary stays a
// single static file.
//
// Open configures the file for many readers and one writer at a time: WAL
// journal, a busy timeout, and transactions begun IMMEDIATE (a reader that
// later writes would otherwise deadlock against another writer and fail with
// SQLITE_BUSY). The schema comes from embedded, versioned migrations applied
// on Open; see docs/storage-sqlite.md for the tables and why each index
// exists.
//
// NewClient sets it all up in one call: the file, its migrations, the privacy
// layer (secrets redacted, personal data encrypted under a master key from
// TRAIL_MASTER_KEY or a key file created beside the database) and the client.
//
// Store implements trail.TxStore[*sql.Tx]: AppendTx writes events in the
// caller's own transaction (from Store.DB), so the audit record exists if and
// only if the business change commits. It passes the shared conformance
// suite, trailstoretest.
package trailsqlite

// Package trailserver is Trail's HTTP API v1 as an http.Handler: ingest,
// query, object history, stats, export and live tail of audit events, behind
// API keys scoped to one tenant or all, with the roles ingest, reader and
// admin.
//
// Why a server at all: most SaaS backends are polyglot, and the people who
// read audit logs are not the services that write them. The server is how
// events arrive from any language, and how the right people — and only
// they — read them. So the rules live here, not in each client:
//
//   - A tenant key reads and writes only its tenant; another tenant's event
//     is answered 404, exactly like a missing one, so existence does not leak.
//   - Every read is itself recorded, as an audit.read event by
//     service:key-<id> in the tenant read.
//   - Ingest is acknowledged only after the store commits, and is idempotent
//     by event ID, so a client may re-send until it hears back.
//   - Keys are 256-bit random secrets stored only as SHA-256 hashes.
//   - Errors are RFC 9457 problem details naming the offending field.
//
// The API is described by the OpenAPI 3.1 document OpenAPI (openapi.json,
// served at /openapi.json); the tests check every real response against it.
// The store is any trail.Store (the embedded SQLite store, PostgreSQL);
// keys live in a KeyStore, normally SQLKeyStore in the same database.
//
// Live tail is an in-process broadcast from ingest with a catch-up query
// from the store on connect; see tail.go for what that does and does not see.
package trailserver

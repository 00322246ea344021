// Package trailstoretest is the conformance suite every Trail store passes:
// the embedded SQLite store (trailsqlite), the PostgreSQL store (trailpgx) and
// the in-memory store of trailtest. It exists so that "a Store" means one
// behaviour — idempotency by ID, newest-first order with ties broken by ID,
// keyset pagination without gaps, tenant isolation, exact round trip of every
// field — and code written against trail.Store can move between stores.
//
// A store's test calls Run with a Harness that makes a fresh, empty store per
// subtest, and, if the store writes in the caller's transactions, RunTx with
// the functions that begin, commit and roll back one (River's
// riverdrivertest does the same for its drivers):
//
//	func TestConformance(t *testing.T) {
//		trailstoretest.Run(t, trailstoretest.Harness{NewStore: func(t *testing.T) trail.Store {
//			return openTestStore(t)
//		}})
//		trailstoretest.RunTx(t, trailstoretest.TxHarness[*sql.Tx]{
//			NewStore: …, Begin: …, Commit: …, Rollback: …,
//		})
//	}
//
// Expected results come from a reference model of the query filters in this
// package (matches, newestFirst), so the cases check stores against one
// definition rather than against hand-counted numbers. Text search is checked
// only on plain words, which any reasonable full-text engine (FTS5, PostgreSQL
// with the simple or english configuration) treats alike.
package trailstoretest

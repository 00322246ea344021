// Package trailtest helps test code that records audit events with Trail.
//
// Audit events are easy to forget and hard to notice missing: nothing breaks
// when a deletion goes unrecorded, until someone asks who deleted the user.
// Tests should therefore assert them like any other output. A Recorder is a
// trail.Recorder that keeps events in memory; hand it to the code under test
// in place of the production recorder, then assert:
//
//	func TestDeleteUser(t *testing.T) {
//		rec := trailtest.NewRecorder(t)
//		svc := NewService(rec)
//		ctx := trail.WithTenant(trail.WithActor(ctx, trail.Actor{Type: trail.ActorUser, ID: "42"}), "acme")
//		if err := svc.DeleteUser(ctx, "17"); err != nil {
//			t.Fatal(err)
//		}
//		trailtest.RequireRecorded(t, rec, trailtest.Match{
//			Action: "user.delete", Tenant: "acme", Actor: "user:42", Target: "user:17",
//		})
//	}
//
// The Recorder records through a real trail.Client, so events are filled
// from the context, normalized and validated exactly as in production: an
// invalid event returns the same error a service would get in production.
// Matches use the trail CLI's forms: actor and target "type:id", action
// exact or a prefix pattern "subscription.*". A failing assertion lists what
// was recorded, and what was rejected as invalid (code under test often logs
// and swallows audit errors, which would otherwise leave the test guessing).
//
// Code that records in its own PostgreSQL transactions depends on
// trail.TxRecorder (RecordTx), which the client implements. Its tests hand
// it a TxRecorder (NewTxRecorder for pgx, NewSQLTxRecorder for
// database/sql) and run it on a real database: the recorder takes the code's
// real transactions and keeps an event only if the transaction that
// recorded it commits, savepoints included, so that a test proves a failed
// operation leaves no event (RequireNotRecorded, RolledBack). The same
// assertions apply.
//
// Store is the in-memory trail.TxStore underneath, with its own transaction
// type Tx (Begin, Commit, Rollback), for code that records with
// Client.RecordTx. It passes the store conformance suite (trailstoretest),
// so queries behave as on SQLite and PostgreSQL; it is meant for tests, not
// for keeping events.
package trailtest

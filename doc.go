// Package trail records who did what, to which object, in which tenant.
//
// An Event names its Actor, Action, Target and Tenant, with field-level
// Changes and free-form Metadata. Services put the actor, tenant and request
// into the context once (WithActor, WithTenant, WithRequest, usually from
// middleware such as trailhttp) and record events with a Client:
//
//	client, err := trail.NewClient(store, &trail.Config{Source: "billing"})
//	...
//	changes, err := trail.Diff(before, after)
//	...
//	_, err = client.RecordTx(ctx, tx, trail.Event{
//		Action:      "subscription.update",
//		Target:      trail.Target{Type: "subscription", ID: sub.ID},
//		Description: "Changed subscription plan to pro",
//		Changes:     changes,
//	})
//
// RecordTx writes in the caller's own transaction, so the event exists if and
// only if the business change commits. Record writes on its own.
//
// Stores implement Store (and TxStore for their transaction type): the
// embedded SQLite store (module github.com/trailhq/trail/server, package
// trailsqlite) and the PostgreSQL store (trailpgx). Package trailstoretest is
// the conformance suite every store passes; trailtest has an in-memory
// recorder for users' own tests.
//
// Every event has a canonical byte encoding (Canonical), specified in
// docs/canonical-encoding.md, that integrity proofs hash.
package trail

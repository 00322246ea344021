// Package trail records who did what, to which object, in which tenant.
//
// An Event names its Actor, Action, Target and Tenant, with field-level
// Changes and free-form Metadata. Services put the actor, tenant and request
// into the context once (WithActor, WithTenant, WithRequest, usually from
// middleware such as trailhttp) and record events with a Client, made in one
// call by the store's package (trailpgx.NewClient, trailsql.NewClient,
// trailsqlite.NewClient) with the privacy layer on:
//
//	client, err := trailpgx.NewClient(ctx, pool, &trailpgx.ClientConfig{Source: "billing"})
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
// only if the business change commits. Record writes on its own. Code that
// records depends on TxRecorder (or Recorder), which trailtest implements
// over real transactions for tests.
//
// The defaults are safe: NewClient refuses a client that would store
// personal data in plaintext (ErrNoPrivacy) unless Config.Transform or
// Config.Plaintext is set; a client without a Transform redacts the default
// deny-list of secrets (RedactSecrets). Every event must have a tenant
// (ErrNoTenant) unless its context is marked WithPlatform, and a query names
// its tenant or sets AllTenants.
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

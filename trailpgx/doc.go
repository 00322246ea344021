// Package trailpgx is Trail's production store: PostgreSQL through pgx v5.
//
// It exists so that the audit event and the change it describes commit
// together. A service records in its own transaction, and the event exists
// if and only if that transaction commits:
//
//	// One call at start-up: store in schema "trail", migrated, privacy layer
//	// on (master key from TRAIL_MASTER_KEY), subject keys in the same schema.
//	client, err := trailpgx.NewClient(ctx, pool, &trailpgx.ClientConfig{Source: "billing"})
//
//	err = trailpgx.WithTx(ctx, pool, func(tx pgx.Tx) error {
//		if _, err := tx.Exec(ctx, "UPDATE subscriptions SET plan = $1 WHERE id = $2", plan, id); err != nil {
//			return err
//		}
//		_, err := client.RecordTx(ctx, tx, trail.Event{
//			Action:      "subscription.update",
//			Target:      trail.Target{Type: "subscription", ID: id},
//			Description: "Changed subscription plan to " + plan,
//		})
//		return err
//	})
//
// RecordTx is one statement on the caller's connection (one round trip);
// Queue puts the same statement into the caller's own pgx.Batch, so that the
// audit write costs no round trip of its own. BeginTx (used by WithTx) sets
// trail.actor, trail.tenant and trail.request_id for the transaction from the
// context, in the same message as BEGIN, for trigger capture and row-level
// security.
//
// The schema (docs/storage-postgres.md explains every choice): events are
// partitioned by month of occurred_at, with partitions created ahead and on
// demand, so that retention drops whole months; each partition's unique id
// key makes a retry (same ID, same occurred_at) a no-op, and a statement
// trigger on events queues every stored event for sealing; indexes answer a tenant's newest
// events, a user's events in a tenant, an object's history, a tenant's counts
// by action, words in descriptions and changed fields. The tables are
// append-only (privileges plus triggers; retention's purge_event_ids and
// purge_events are the only way out) and a reader role sees only the tenant
// its transaction names (row-level security).
//
// Batches of Config.CopyThreshold events or more go through COPY. Smaller
// ones, and AppendTx, are one INSERT statement. Either way a batch is atomic
// and idempotent by event ID.
//
// EnableCapture turns every INSERT, UPDATE and DELETE on a table into events
// (trigger capture, docs/capture.md): statement-level triggers with
// transition tables write all of a statement's events in one INSERT, so bulk
// writes and raw SQL are audited too, attributed through the settings BeginTx
// sets, or to the database role when there are none.
//
// Package trailsql offers the same store over database/sql.
package trailpgx

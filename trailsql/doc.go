// Package trailsql is Trail's PostgreSQL store for code written against
// database/sql, through pgx's stdlib driver (github.com/jackc/pgx/v5/stdlib).
//
// It exists because many services hold a *sql.DB, not a pgx pool, and still
// need what matters most: the audit event written in their own transaction,
// so that it exists if and only if the business change commits.
//
//	db, _ := sql.Open("pgx", dsn)
//	_, _ = trailsql.NewClient(ctx, db, nil) // migrated, privacy on; the default of RecordTx
//	err := trailsql.WithTx(ctx, db, func(tx *sql.Tx) error {
//		if _, err := tx.ExecContext(ctx, "UPDATE subscriptions SET plan = $1 WHERE id = $2", plan, id); err != nil {
//			return err
//		}
//		_, err := trailsql.RecordTx(ctx, tx, trail.Event{Action: "subscription.update", …})
//		return err
//	})
//
// The schema, indexes, partitions, roles and append-only guard are those of
// package trailpgx, which does the work: reads and Append borrow the pgx
// connection under database/sql (sql.Conn.Raw), and AppendTx sends one
// INSERT … SELECT FROM unnest(…) statement on the caller's *sql.Tx, one round
// trip whatever the batch size.
package trailsql

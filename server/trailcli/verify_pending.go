package trailcli

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail/server/trailarchive"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailpgx"
	"github.com/trailhq/trail/trailseal"
)

// verifyJSON is `trail verify --json`: the verifier's report and the
// events not sealed yet, which it could not check (not a problem: the
// sealer has not taken them yet).
type verifyJSON struct {
	*trailarchive.Report
	Pending int64 `json:"pending"`
	// KeySource says where the checkpoint keys came from (pinned,
	// configured, beside_data); Warnings holds the loud ones (verify_keys.go).
	KeySource string   `json:"key_source,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
}

// pendingEvents counts the events stored but not sealed yet (the sealer's
// queue), of log only when log is not empty. A store of another kind
// counts 0.
func pendingEvents(ctx context.Context, st trailseal.Store, log string) (int64, error) {
	var n int64
	switch s := st.(type) {
	case *trailsqlite.Store:
		// As Pending reads the queue: a row whose event is gone is not one.
		q := `SELECT COUNT(*) FROM trail_seal_pending p JOIN trail_events e ON e.seq = p.seq AND e.id = p.id`
		var args []any
		if log != "" {
			q += ` WHERE e.tenant = ?`
			args = append(args, trailseal.TenantOf(log))
		}
		if err := s.DB().QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
			return 0, fmt.Errorf("count unsealed events: %w", err)
		}
	case *trailpgx.Store:
		q := `SELECT count(*) FROM ` + s.Table("seal_pending")
		var args []any
		if log != "" {
			q += ` WHERE tenant = $1`
			args = append(args, trailseal.TenantOf(log))
		}
		// RetentionTx is the store's one transaction on its own pool; the
		// queue is owner-only, like the tables verify reads.
		if err := s.RetentionTx(ctx, func(tx pgx.Tx) error { return tx.QueryRow(ctx, q, args...).Scan(&n) }); err != nil {
			return 0, fmt.Errorf("count unsealed events: %w", err)
		}
	}
	return n, nil
}

package trailpgx_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail/trailseal/sealtest"
)

// purgeTamperer removes events and records their seqs in seal_purges in
// one transaction, as purge_events does.
type purgeTamperer struct{ *sqlTamperer }

func (d purgeTamperer) TamperPurge(ctx context.Context, log string, seqs []int64, ids []uuid.UUID) error {
	return d.do(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM `+d.table("events")+` WHERE id = ANY($1)`, ids); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO `+d.table("seal_purges")+` (log, seqs, events, cutoff)
			SELECT $1, range_agg(int8range(s, s + 1)), count(*), now() FROM unnest($2::int8[]) s`, log, seqs)
		return err
	})
}

// TestVerifyManyLogs runs the many-tiny-logs suite: the store's grouped
// read path (BatchReader) against its log-by-log one, with tampering and
// purges spread over the logs.
func TestVerifyManyLogs(t *testing.T) {
	sealtest.RunManyLogs(t, func(t *testing.T) sealtest.Instance {
		s := newStore(t, nil)
		return sealInstance(s, purgeTamperer{newTamperer(t, s)})
	})
}

// TestSealerScale runs the sealer-scale suite: a step's round trips do not
// grow with the logs it extends; SaveCheckpoints saves all or none.
func TestSealerScale(t *testing.T) {
	sealtest.RunSealerScale(t, func(t *testing.T) sealtest.Instance {
		s := newStore(t, nil)
		return sealInstance(s, newTamperer(t, s))
	})
}

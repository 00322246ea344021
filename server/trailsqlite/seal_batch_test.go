package trailsqlite_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/trailhq/trail/trailseal/sealtest"
)

// purgeTamperer removes events as retention does: the DELETE and the
// record of their seqs in one transaction.
type purgeTamperer struct{ *sqlTamperer }

func (d purgeTamperer) TamperPurge(ctx context.Context, log string, seqs []int64, ids []uuid.UUID) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, `DELETE FROM trail_events WHERE id = ?`, id[:]); err != nil {
			return err
		}
	}
	for _, s := range seqs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO trail_seal_purges (log, seq_from, seq_to, purged_at) VALUES (?, ?, ?, 0)`, log, s, s+1); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// TestVerifyManyLogs runs the many-tiny-logs suite: the store's grouped
// read path (BatchReader) against its log-by-log one, with tampering and
// purges spread over the logs.
func TestVerifyManyLogs(t *testing.T) {
	t.Parallel()
	sealtest.RunManyLogs(t, func(t *testing.T) sealtest.Instance {
		s := openStore(t, nil)
		return sealInstance(s, purgeTamperer{openTamperer(t, s.Path())})
	})
}

// TestSealerScale runs the sealer-scale suite: a step's statements do not
// grow with the logs it extends; SaveCheckpoints saves all or none.
func TestSealerScale(t *testing.T) {
	t.Parallel()
	sealtest.RunSealerScale(t, func(t *testing.T) sealtest.Instance {
		s := openStore(t, nil)
		return sealInstance(s, openTamperer(t, s.Path()))
	})
}

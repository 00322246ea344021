package trailpgx_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailpgx"
	"github.com/trailhq/trail/trailseal"
	"github.com/trailhq/trail/trailseal/sealtest"
	"golang.org/x/mod/sumdb/tlog"
)

// sqlTamperer tampers with the store's tables through plain SQL, as a
// database superuser could: session_replication_role = replica turns off
// the append-only triggers (and the one that queues events for sealing).
type sqlTamperer struct {
	t     testing.TB
	s     *trailpgx.Store
	table func(name string) string
}

func newTamperer(t testing.TB, s *trailpgx.Store) *sqlTamperer {
	return &sqlTamperer{t: t, s: s, table: func(n string) string { return pgx.Identifier{s.Schema(), n}.Sanitize() }}
}

func (d *sqlTamperer) do(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, testPool(d.t), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		return fn(tx)
	})
}

func (d *sqlTamperer) exec(ctx context.Context, q string, args ...any) error {
	return d.do(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, q, args...)
		return err
	})
}

func (d *sqlTamperer) TamperEditDescription(ctx context.Context, id uuid.UUID, desc string) error {
	return d.exec(ctx, `UPDATE `+d.table("events")+` SET description = $1 WHERE id = $2`, desc, id)
}

func (d *sqlTamperer) TamperDeleteEvent(ctx context.Context, id uuid.UUID) error {
	return d.exec(ctx, `DELETE FROM `+d.table("events")+` WHERE id = $1`, id)
}

func (d *sqlTamperer) TamperInsertEvent(ctx context.Context, ev trail.Event) error {
	q, args, _, err := d.s.InsertSQL([]trail.Event{ev})
	if err != nil {
		return err
	}
	return d.exec(ctx, q, args...)
}

func (d *sqlTamperer) TamperSwapSeqs(ctx context.Context, log string, i, j int64) error {
	return d.do(ctx, func(tx pgx.Tx) error {
		for _, q := range [][2]int64{{i, -1}, {j, i}, {-1, j}} {
			if _, err := tx.Exec(ctx, `UPDATE `+d.table("seal_leaves")+` SET seq = $1 WHERE log = $2 AND seq = $3`, q[1], log, q[0]); err != nil {
				return err
			}
		}
		return nil
	})
}

func (d *sqlTamperer) TamperTruncate(ctx context.Context, log string, n int64) error {
	return d.do(ctx, func(tx pgx.Tx) error {
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`DELETE FROM ` + d.table("events") + ` WHERE id IN (SELECT event_id FROM ` + d.table("seal_leaves") + ` WHERE log = $1 AND seq >= $2)`, []any{log, n}},
			{`DELETE FROM ` + d.table("seal_leaves") + ` WHERE log = $1 AND seq >= $2`, []any{log, n}},
			{`DELETE FROM ` + d.table("seal_hashes") + ` WHERE log = $1 AND idx >= $2`, []any{log, tlog.StoredHashIndex(0, n)}},
			{`UPDATE ` + d.table("seal_logs") + ` SET size = $1 WHERE log = $2`, []any{n, log}},
		} {
			if _, err := tx.Exec(ctx, q.sql, q.args...); err != nil {
				return err
			}
		}
		return nil
	})
}

func (d *sqlTamperer) TamperReplaceCheckpoint(ctx context.Context, log string, size int64, note string) error {
	return d.exec(ctx, `UPDATE `+d.table("seal_checkpoints")+` SET note = $1 WHERE log = $2 AND size = $3`, note, log, size)
}

// sealInstance is s as a sealtest instance, tampered with through tamper.
func sealInstance(s *trailpgx.Store, tamper sealtest.Tamperer) sealtest.Instance {
	return sealtest.Instance{
		Store: s,
		Append: func(ctx context.Context, evs []trail.Event) error {
			_, err := s.Append(ctx, evs)
			return err
		},
		Tamper: tamper,
	}
}

// TestSealConformance runs trailseal's conformance and tamper suite on
// PostgreSQL, tampering through plain SQL.
func TestSealConformance(t *testing.T) {
	sealtest.Run(t, func(t *testing.T) sealtest.Instance {
		s := newStore(t, nil)
		return sealInstance(s, newTamperer(t, s))
	})
}

// TestSealQueueEveryWritePath: events written by COPY (large batches), the
// single-event INSERT and AppendTx are queued if and only if they commit.
func TestSealQueueEveryWritePath(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, &trailpgx.Config{CopyThreshold: 4})
	if _, err := s.Append(ctx, sealtest.Events(t, "acme", 0, 10)); err != nil { // COPY
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, sealtest.Events(t, "acme", 10, 1)); err != nil { // one INSERT
		t.Fatal(err)
	}
	tx, err := testPool(t).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendTx(ctx, tx, sealtest.Events(t, "acme", 11, 2)); err != nil {
		t.Fatal(err)
	}
	tx.Rollback(ctx)
	if _, err := s.Append(ctx, sealtest.Events(t, "acme", 0, 11)); err != nil { // duplicates
		t.Fatal(err)
	}
	p, err := s.Pending(ctx, 100)
	if err != nil || len(p) != 11 {
		t.Fatalf("pending: %d events, %v; want 11", len(p), err)
	}
	if _, ok, err := s.OldestPending(ctx); !ok || err != nil {
		t.Fatalf("oldest pending: %v %v", ok, err)
	}
	signer, _ := sealtest.TestKey(t, "trail.test")
	sl, err := trailseal.NewSealer(s, &trailseal.Config{Signer: signer, Origin: "trail.test"})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := sl.SealAll(ctx); err != nil || st.Sealed != 11 {
		t.Fatalf("seal: %+v %v", st, err)
	}
	idx, err := s.LeafIndexes(ctx, []uuid.UUID{sealtest.Event(t, "acme", 10).ID})
	if err != nil || idx[sealtest.Event(t, "acme", 10).ID] != 10 {
		t.Fatalf("leaf indexes: %v %v", idx, err)
	}
}

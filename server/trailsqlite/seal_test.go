package trailsqlite_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailseal"
	"github.com/trailhq/trail/trailseal/sealtest"
	"golang.org/x/mod/sumdb/tlog"
)

// sqlTamperer tampers with the database file through its own connection,
// with plain SQL, as a database administrator could: it drops the
// append-only trigger first.
type sqlTamperer struct {
	db *sql.DB
}

// openTamperer opens a second, independent connection to the file at path.
func openTamperer(t testing.TB, path string) *sqlTamperer {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &sqlTamperer{db: db}
}

func (d *sqlTamperer) exec(ctx context.Context, q string, args ...any) error {
	res, err := d.db.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", q, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s: no row changed", q)
	}
	return nil
}

func (d *sqlTamperer) TamperEditDescription(ctx context.Context, id uuid.UUID, desc string) error {
	if _, err := d.db.ExecContext(ctx, `DROP TRIGGER IF EXISTS trail_events_bu`); err != nil {
		return err
	}
	return d.exec(ctx, `UPDATE trail_events SET description = ? WHERE id = ?`, desc, id[:])
}

func (d *sqlTamperer) TamperDeleteEvent(ctx context.Context, id uuid.UUID) error {
	return d.exec(ctx, `DELETE FROM trail_events WHERE id = ?`, id[:])
}

func (d *sqlTamperer) TamperInsertEvent(ctx context.Context, ev trail.Event) error {
	changes, err := json.Marshal(ev.Changes)
	if err != nil {
		return err
	}
	meta, err := json.Marshal(ev.Metadata)
	if err != nil {
		return err
	}
	return d.exec(ctx, `INSERT INTO trail_events (id, occurred_at, recorded_at, tenant, actor_type, actor_id, actor_name,
		action, target_type, target_id, outcome, description, changes, metadata, source, schema_version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ev.ID[:], ev.OccurredAt.UnixMicro(), ev.RecordedAt.UnixMicro(), ev.Tenant, string(ev.Actor.Type), ev.Actor.ID,
		ev.Actor.Name, ev.Action, ev.Target.Type, ev.Target.ID, string(ev.Outcome), ev.Description,
		string(changes), string(meta), ev.Source, ev.SchemaVersion)
}

func (d *sqlTamperer) TamperSwapSeqs(ctx context.Context, log string, i, j int64) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range [][3]int64{{i, -1}, {j, i}, {-1, j}} {
		if _, err := tx.ExecContext(ctx, `UPDATE trail_seal_leaves SET seq = ? WHERE log = ? AND seq = ?`, q[1], log, q[0]); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (d *sqlTamperer) TamperTruncate(ctx context.Context, log string, n int64) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`DELETE FROM trail_events WHERE id IN (SELECT event_id FROM trail_seal_leaves WHERE log = ? AND seq >= ?)`, []any{log, n}},
		{`DELETE FROM trail_seal_leaves WHERE log = ? AND seq >= ?`, []any{log, n}},
		{`DELETE FROM trail_seal_hashes WHERE log = ? AND idx >= ?`, []any{log, tlog.StoredHashIndex(0, n)}},
		{`UPDATE trail_seal_logs SET size = ? WHERE log = ?`, []any{n, log}},
	} {
		if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (d *sqlTamperer) TamperReplaceCheckpoint(ctx context.Context, log string, size int64, note string) error {
	return d.exec(ctx, `UPDATE trail_seal_checkpoints SET note = ? WHERE log = ? AND size = ?`, note, log, size)
}

// sealInstance is s as a sealtest instance, tampered with through tamper.
func sealInstance(s *trailsqlite.Store, tamper sealtest.Tamperer) sealtest.Instance {
	return sealtest.Instance{
		Store: s,
		Append: func(ctx context.Context, evs []trail.Event) error {
			_, err := s.Append(ctx, evs)
			return err
		},
		Tamper: tamper,
	}
}

// TestSealConformance runs trailseal's conformance and tamper suite on the
// SQLite store, tampering through direct SQL on the database file.
func TestSealConformance(t *testing.T) {
	sealtest.Run(t, func(t *testing.T) sealtest.Instance {
		s := openStore(t, nil)
		return sealInstance(s, openTamperer(t, s.Path()))
	})
}

// TestAppendTxQueuesForSealing: an event appended in a caller's transaction
// is queued for sealing if and only if the transaction commits.
func TestAppendTxQueuesForSealing(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, nil)
	committed, rolledBack := sealtest.Event(t, "acme", 1), sealtest.Event(t, "acme", 2)
	for _, c := range []struct {
		ev     trail.Event
		commit bool
	}{{committed, true}, {rolledBack, false}} {
		tx, err := s.DB().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendTx(ctx, tx, []trail.Event{c.ev}); err != nil {
			t.Fatal(err)
		}
		if c.commit {
			err = tx.Commit()
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	p, err := s.Pending(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 1 || p[0].ID != committed.ID {
		t.Fatalf("pending = %v, want only the committed event", p)
	}
	if _, ok, err := s.OldestPending(ctx); err != nil || !ok {
		t.Fatalf("oldest pending: %v %v", ok, err)
	}
	// A duplicate append queues nothing more.
	if _, err := s.Append(ctx, []trail.Event{committed}); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.Pending(ctx, 10); len(p) != 1 {
		t.Fatalf("duplicate queued again: %d pending", len(p))
	}
	if _, err := s.LeafOf(ctx, committed.ID); err != trailseal.ErrNotSealed {
		t.Fatalf("LeafOf pending event: %v, want ErrNotSealed", err)
	}
	if _, err := s.LeafOf(ctx, rolledBack.ID); err != trailseal.ErrUnknownEvent {
		t.Fatalf("LeafOf rolled-back event: %v, want ErrUnknownEvent", err)
	}
}

// TestEventsStayAppendOnly: sealing never updates an event row (the
// trigger would refuse it), and an UPDATE is still refused afterwards.
func TestEventsStayAppendOnly(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, nil)
	if _, err := s.Append(ctx, sealtest.Events(t, "acme", 0, 3)); err != nil {
		t.Fatal(err)
	}
	signer, _ := sealtest.TestKey(t, "trail.test")
	sl, err := trailseal.NewSealer(s, &trailseal.Config{Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := sl.SealAll(ctx); err != nil || st.Sealed != 3 || st.Checkpoints != 1 {
		t.Fatalf("seal all: %+v %v", st, err)
	}
	if _, err := s.DB().ExecContext(ctx, `UPDATE trail_events SET description = 'x'`); err == nil {
		t.Fatal("an UPDATE of trail_events was accepted")
	}
	idx, err := s.LeafIndexes(ctx, []uuid.UUID{sealtest.Event(t, "acme", 2).ID, uuid.New()})
	if err != nil || len(idx) != 1 || idx[sealtest.Event(t, "acme", 2).ID] != 2 {
		t.Fatalf("leaf indexes: %v %v", idx, err)
	}
}

var _ trailseal.Store = (*trailsqlite.Store)(nil)

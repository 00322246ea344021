package trailpgx_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailpgx"
	"github.com/trailhq/trail/trailseal"
	"github.com/trailhq/trail/trailseal/sealtest"
	"golang.org/x/mod/sumdb/note"
)

// sealAll seals every pending event of s and signs checkpoints.
func sealAll(t *testing.T, s *trailpgx.Store) trailseal.Stats {
	t.Helper()
	signer, _ := sealtest.TestKey(t, "trail.test")
	sl, err := trailseal.NewSealer(s, &trailseal.Config{Signer: signer, Origin: "trail.test", Holder: "test", CheckpointEvents: 5})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sl.SealAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := sl.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

func verifyStore(t *testing.T, s *trailpgx.Store) *trailseal.Report {
	t.Helper()
	_, v := sealtest.TestKey(t, "trail.test")
	rep, err := (&trailseal.Verifier{Store: s, Verifiers: note.VerifierList(v), Origin: "trail.test"}).Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestSealTablesAppendOnly: even the owner (here a superuser, triggers on)
// cannot rewrite leaves, stored hashes, checkpoints or purge records, shrink
// or drop a log's size, or edit a pending row; Seal's own writes (grow a
// log, delete pending rows) go through.
func TestSealTablesAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, nil)
	if _, err := s.Append(ctx, sealtest.Events(t, "acme", 0, 12)); err != nil {
		t.Fatal(err)
	}
	if st := sealAll(t, s); st.Sealed != 12 {
		t.Fatalf("sealed %d", st.Sealed)
	}
	if _, err := s.Append(ctx, sealtest.Events(t, "acme", 12, 1)); err != nil { // stays pending
		t.Fatal(err)
	}
	sc := pgx.Identifier{s.Schema()}.Sanitize()
	for _, q := range []string{
		"UPDATE " + sc + ".seal_leaves SET hash = hash WHERE seq = 3",
		"UPDATE " + sc + ".seal_leaves SET seq = 100 WHERE seq = 3",
		"DELETE FROM " + sc + ".seal_leaves WHERE seq = 11",
		"TRUNCATE " + sc + ".seal_leaves",
		"UPDATE " + sc + ".seal_hashes SET hash = hash WHERE idx = 0",
		"DELETE FROM " + sc + ".seal_hashes",
		"TRUNCATE " + sc + ".seal_hashes",
		"UPDATE " + sc + ".seal_checkpoints SET note = note",
		"DELETE FROM " + sc + ".seal_checkpoints",
		"TRUNCATE " + sc + ".seal_checkpoints",
		"UPDATE " + sc + ".seal_logs SET size = size - 1",
		"UPDATE " + sc + ".seal_logs SET log = 'globex'",
		"DELETE FROM " + sc + ".seal_logs",
		"TRUNCATE " + sc + ".seal_logs",
		"UPDATE " + sc + ".seal_pending SET tenant = 'globex'",
		"TRUNCATE " + sc + ".seal_pending",
		"INSERT INTO " + sc + ".seal_purges (log, seqs, events, cutoff) VALUES ('acme', '{[0,1)}', 1, now())",
	} {
		err := pgx.BeginFunc(ctx, testPool(t), func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, q)
			if err == nil && q[:6] == "INSERT" { // the insert is allowed; changing the row is not
				_, err = tx.Exec(ctx, "UPDATE "+sc+".seal_purges SET events = 0")
			}
			return err
		})
		if code := pgCode(err); code != "42501" {
			t.Errorf("%s: err %v (code %q), want insufficient_privilege", q, err, code)
		}
	}
	// What sealing does is allowed: a log grows; pending rows are deleted.
	if err := pgx.BeginFunc(ctx, testPool(t), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "UPDATE "+sc+".seal_logs SET size = size + 1"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM "+sc+".seal_pending"); err != nil {
			return err
		}
		return errRollback
	}); !errors.Is(err, errRollback) {
		t.Fatalf("growing a log and deleting pending rows: %v", err)
	}
	if rep := verifyStore(t, s); !rep.OK() || rep.Events != 12 {
		t.Fatalf("verify: %d events, %v", rep.Events, rep.Problems)
	}
}

// errRollback makes pgx.BeginFunc roll back a transaction that succeeded.
var errRollback = errors.New("rolled back on purpose")

// TestSealTablesPrivileges: the writer role appends (its events are queued
// for sealing through the SECURITY DEFINER trigger) but can neither read
// nor write any seal table; the reader role neither.
func TestSealTablesPrivileges(t *testing.T) {
	t.Parallel()
	s := newStore(t, nil)
	err := asRole(t, "trail_writer", func(ctx context.Context, tx pgx.Tx) error {
		if _, err := s.AppendTx(ctx, tx, sealtest.Events(t, "acme", 0, 3)); err != nil {
			return err
		}
		var n int
		// Check the queue as the owner would see it, through a savepoint-free
		// RESET ROLE inside the same transaction.
		if _, err := tx.Exec(ctx, "RESET ROLE"); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{s.Schema(), "seal_pending"}.Sanitize()).Scan(&n); err != nil {
			return err
		}
		if n != 3 {
			t.Errorf("writer's append queued %d events, want 3", n)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("append as writer: %v", err)
	}
	for _, role := range []string{"trail_writer", "trail_reader"} {
		for _, tbl := range []string{"seal_pending", "seal_leaves", "seal_hashes", "seal_logs", "seal_checkpoints", "seal_leases", "seal_purges"} {
			q := pgx.Identifier{s.Schema(), tbl}.Sanitize()
			for _, sql := range []string{"SELECT 1 FROM " + q + " LIMIT 1", "DELETE FROM " + q, "INSERT INTO " + q + " DEFAULT VALUES"} {
				if err := asRole(t, role, exec(sql)); pgCode(err) != "42501" {
					t.Errorf("%s: %s: %v, want permission denied", role, sql, err)
				}
			}
		}
		if err := asRole(t, role, exec("SELECT "+pgx.Identifier{s.Schema()}.Sanitize()+".purge_events(now())")); pgCode(err) != "42501" {
			t.Errorf("%s may call purge_events: %v", role, err)
		}
	}
}

// TestSealQueueCapture: trigger capture's INSERT … SELECT queues its events
// for sealing in the captured statement, and they seal and verify.
func TestSealQueueCapture(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, nil)
	tbl := pgx.Identifier{s.Schema(), "plans"}.Sanitize()
	if _, err := testPool(t).Exec(ctx, "CREATE TABLE "+tbl+" (id int PRIMARY KEY, plan text)"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnableCapture(ctx, tbl, trailpgx.CaptureOptions{}); err != nil {
		t.Fatal(err)
	}
	cctx := trail.WithActor(trail.WithTenant(ctx, "acme"), trail.Actor{Type: trail.ActorUser, ID: "42"})
	tx, err := trailpgx.BeginTx(cctx, testPool(t), pgx.TxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(cctx, "INSERT INTO "+tbl+" SELECT g, 'free' FROM generate_series(1, 5) g"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(cctx, "UPDATE "+tbl+" SET plan = 'pro' WHERE id <= 2"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(cctx); err != nil {
		t.Fatal(err)
	}
	p, err := s.Pending(ctx, 100)
	if err != nil || len(p) != 7 {
		t.Fatalf("pending after capture: %d, %v; want 7", len(p), err)
	}
	if st := sealAll(t, s); st.Sealed != 7 {
		t.Fatalf("sealed %d, want 7", st.Sealed)
	}
	if rep := verifyStore(t, s); !rep.OK() || rep.Events != 7 {
		t.Fatalf("verify: %d events, %v", rep.Events, rep.Problems)
	}
}

// TestSealRetention: purge_events (by rows for one tenant, by dropping a
// whole partition for all) keeps leaves and stored hashes, so the logs still
// verify, the purged leaves counted as purged; a sealed event deleted any
// other way is still missing; pending rows of purged events go with them.
func TestSealRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, nil)
	byLog := map[string][]trail.Event{
		"acme": sealtest.Events(t, "acme", 0, 20), "globex": sealtest.Events(t, "globex", 0, 20),
		trailseal.PlatformLog: sealtest.Events(t, "", 0, 6),
	}
	for _, half := range [][2]float64{{0, 0.5}, {0.5, 1}} { // two checkpoints per log
		for _, evs := range byLog {
			if _, err := s.Append(ctx, evs[int(half[0]*float64(len(evs))):int(half[1]*float64(len(evs)))]); err != nil {
				t.Fatal(err)
			}
		}
		sealAll(t, s)
	}
	late := sealtest.Event(t, "globex", 100) // same month, never sealed
	if _, err := s.Append(ctx, []trail.Event{late}); err != nil {
		t.Fatal(err)
	}
	sc := pgx.Identifier{s.Schema()}.Sanitize()
	purge := func(before time.Time, tenant *string) int64 {
		t.Helper()
		var n int64
		if err := testPool(t).QueryRow(ctx, "SELECT "+sc+".purge_events($1, $2)", before, tenant).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Rows: acme's first ten (recorded Base+i s +1 ms).
	acme := "acme"
	if n := purge(sealtest.Base.Add(10*time.Second), &acme); n != 10 {
		t.Fatalf("purged %d acme events, want 10", n)
	}
	rep := verifyStore(t, s)
	if !rep.OK() || rep.Events != 46 {
		t.Fatalf("verify after a row purge: %d events, %v", rep.Events, rep.Problems)
	}
	if got := purgedByLog(rep); got["acme"] != 10 || got["globex"] != 0 {
		t.Fatalf("purged counts %v, want acme 10", got)
	}
	if rs, err := s.PurgedRanges(ctx, "acme"); err != nil || !slices.Equal(rs, []trailseal.SeqRange{{From: 0, To: 10}}) {
		t.Fatalf("purged ranges %v, %v; want [0,10)", rs, err)
	}
	// A sealed event deleted behind retention's back is still missing.
	tamper := newTamperer(t, s)
	if err := tamper.TamperDeleteEvent(ctx, byLog["acme"][15].ID); err != nil {
		t.Fatal(err)
	}
	rep = verifyStore(t, s)
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != trailseal.KindMissing || rep.Problems[0].Seq != 15 || rep.Problems[0].Log != "acme" {
		t.Fatalf("a deleted event after a purge: %v, want acme seq 15 missing", rep.Problems)
	}
	// Partitions: everything of March 2025 (the sealed and the pending).
	if n := purge(time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC), nil); n != 9+20+6+1 {
		t.Fatalf("purged %d events by partition, want 36", n)
	}
	var parts int
	if err := testPool(t).QueryRow(ctx, "SELECT count(*) FROM pg_inherits WHERE inhparent = $1::regclass AND inhrelid::regclass::text LIKE '%202503'",
		s.Schema()+".events").Scan(&parts); err != nil || parts != 0 {
		t.Fatalf("March partition still attached (%d, %v)", parts, err)
	}
	if p, err := s.Pending(ctx, 10); err != nil || len(p) != 0 {
		t.Fatalf("pending after purge: %d, %v", len(p), err)
	}
	var pend int
	if err := testPool(t).QueryRow(ctx, "SELECT count(*) FROM "+sc+".seal_pending").Scan(&pend); err != nil || pend != 0 {
		t.Fatalf("%d pending rows left behind by the purge (%v)", pend, err)
	}
	rep = verifyStore(t, s)
	if len(rep.Problems) != 1 || rep.Problems[0].Seq != 15 || rep.Problems[0].Kind != trailseal.KindMissing {
		t.Fatalf("verify after the partition purge: %v, want only acme seq 15 missing", rep.Problems)
	}
	if got := purgedByLog(rep); got["acme"] != 19 || got["globex"] != 20 || got[trailseal.PlatformLog] != 6 {
		t.Fatalf("purged counts %v, want acme 19, globex 20, platform 6", got)
	}
	// Proofs still work over purged ranges: the tree is intact.
	cp, err := s.LatestCheckpoint(ctx, "globex")
	if err != nil {
		t.Fatal(err)
	}
	old, err := trailseal.FindCheckpoint(ctx, s, "globex", 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := trailseal.ProveConsistency(ctx, s, old, cp); err != nil {
		t.Fatalf("consistency over a purged range: %v", err)
	}
}

func purgedByLog(rep *trailseal.Report) map[string]int64 {
	out := map[string]int64{}
	for _, l := range rep.Logs {
		out[l.Log] = l.Purged
	}
	return out
}

// TestSealQueueBatch: events queued on the caller's pgx.Batch (Queue) are
// queued for sealing if and only if the transaction commits.
func TestSealQueueBatch(t *testing.T) {
	t.Parallel()
	ctx := trail.WithActor(trail.WithTenant(context.Background(), "acme"), trail.Actor{Type: trail.ActorUser, ID: "42"})
	s := newStore(t, nil)
	client, err := trail.NewClient[pgx.Tx](s, &trail.Config{Plaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, commit := range []bool{false, true} {
		tx, err := testPool(t).Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		batch := &pgx.Batch{}
		batch.Queue("SELECT 1")
		if _, err := trailpgx.Queue(ctx, client, batch, trail.Event{Action: "plan.update", Description: "one"},
			trail.Event{Action: "plan.update", Description: "two"}); err != nil {
			t.Fatal(err)
		}
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = tx.Commit(ctx)
		} else {
			err = tx.Rollback(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if p, err := s.Pending(ctx, 10); err != nil || len(p) != 2 {
		t.Fatalf("pending after Queue: %d, %v; want 2 (the committed batch)", len(p), err)
	}
	if st := sealAll(t, s); st.Sealed != 2 {
		t.Fatalf("sealed %d", st.Sealed)
	}
	if rep := verifyStore(t, s); !rep.OK() || rep.Events != 2 {
		t.Fatalf("verify: %d events, %v", rep.Events, rep.Problems)
	}
}

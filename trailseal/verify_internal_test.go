package trailseal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func testSigner(t testing.TB) (note.Signer, note.Verifiers) {
	seed := sha256.Sum256([]byte("internal"))
	skey, vkey, err := note.GenerateKey(bytes.NewReader(seed[:]), "trail.test")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	return s, note.VerifierList(v)
}

func testEvents(t testing.TB, tenant string, n int) []trail.Event {
	base := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	out := make([]trail.Event, n)
	for i := range out {
		ev := trail.Event{
			ID:          uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "%s/%d", tenant, i)),
			OccurredAt:  base.Add(time.Duration(i) * time.Second),
			RecordedAt:  base.Add(time.Duration(i) * time.Second),
			Tenant:      tenant,
			Actor:       trail.Actor{Type: trail.ActorUser, ID: "u1"},
			Action:      "user.update",
			Description: fmt.Sprintf("event %d", i),
		}
		if err := ev.Normalize(); err != nil {
			t.Fatal(err)
		}
		out[i] = ev
	}
	return out
}

// sealed returns a MemLog holding n sealed events of acme with checkpoints
// every 4 leaves and at the end.
func sealed(t *testing.T, n int) (*MemLog, *Verifier) {
	t.Helper()
	ctx := context.Background()
	s, keys := testSigner(t)
	m := NewMemLog()
	if _, err := m.Append(ctx, testEvents(t, "acme", n)); err != nil {
		t.Fatal(err)
	}
	sl, err := NewSealer(m, &Config{Signer: s, Origin: "trail.test", BatchSize: 4, CheckpointEvents: 4, CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sl.SealAll(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sl.Release(ctx); err != nil {
		t.Fatal(err)
	}
	return m, &Verifier{Store: m, Verifiers: keys, Origin: "trail.test", BatchSize: 3}
}

func kinds(rep *Report) []string {
	var out []string
	for _, p := range rep.Problems {
		out = append(out, fmt.Sprintf("%s@%d", p.Kind, p.Seq))
	}
	return out
}

func TestFrontierMatchesTlog(t *testing.T) {
	t.Parallel()
	var stored []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	var f frontier
	var created []tlog.Hash
	for n := int64(0); n < 300; n++ {
		h := tlog.RecordHash(fmt.Appendf(nil, "%d", n))
		want, err := tlog.StoredHashesForRecordHash(n, h, r)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, want...)
		created = f.push(n, h, created)
		if !slices.Equal(created, want) {
			t.Fatalf("record %d: frontier stores %d hashes, tlog %d", n, len(created), len(want))
		}
		root, _ := tlog.TreeHash(n+1, r)
		if f.root() != root {
			t.Fatalf("size %d: root differs from tlog.TreeHash", n+1)
		}
	}
}

func TestVerifyTreeDamage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name   string
		tamper func(m *MemLog)
		want   []string
	}{
		{"clean", func(*MemLog) {}, nil},
		{
			// Edit an event and rewrite its leaf and every stored hash to
			// match: only the signed checkpoints can tell.
			"consistent rewrite", func(m *MemLog) {
				ev := *m.events[m.leaves["acme"][2].EventID]
				ev.Description = "rewritten"
				m.events[ev.ID] = &ev
				rebuildTree(t, m, "acme")
			},
			[]string{"root_mismatch@-1", "root_mismatch@-1", "root_mismatch@-1"}, // checkpoints 4, 8, 10
		},
		{
			"stored parent edited", func(m *MemLog) {
				m.hashes["acme"][tlog.StoredHashIndex(1, 1)] = tlog.RecordHash([]byte("x"))
			},
			// The node of leaves 2..3 is stored by record 3.
			[]string{"hash_mismatch@3"},
		},
		{
			"leaf row hash edited", func(m *MemLog) {
				l := m.leaves["acme"][6]
				l.Hash = tlog.RecordHash([]byte("x"))
				m.leaves["acme"][6] = l
			},
			[]string{"hash_mismatch@6"},
		},
		{
			"leaf row deleted", func(m *MemLog) {
				delete(m.byEvent, m.leaves["acme"][5].EventID)
				delete(m.leaves["acme"], 5)
			},
			// Its event now has neither leaf nor pending row.
			[]string{"missing@5", "inserted@-1"},
		},
		{
			"history goes backwards", func(m *MemLog) {
				m.cps["acme"] = append(m.cps["acme"], m.cps["acme"][0])
			},
			[]string{"forked@-1"},
		},
		{
			"checkpoint row disagrees with its note", func(m *MemLog) {
				m.cps["acme"][1].Size = 7
			},
			[]string{"bad_checkpoint@-1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, v := sealed(t, 10)
			tc.tamper(m)
			rep, err := v.Verify(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := kinds(rep); !slices.Equal(got, tc.want) {
				t.Fatalf("problems %q, want %q\n%v", got, tc.want, rep.Problems)
			}
		})
	}
}

// rebuildTree recomputes log's leaves and stored hashes from its events.
func rebuildTree(t *testing.T, m *MemLog, log string) {
	var stored []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	for seq := int64(0); seq < m.sizes[log]; seq++ {
		l := m.leaves[log][seq]
		h, err := LeafHash(m.events[l.EventID])
		if err != nil {
			t.Fatal(err)
		}
		l.Hash = h
		m.leaves[log][seq] = l
		hs, _ := tlog.StoredHashesForRecordHash(seq, h, r)
		stored = append(stored, hs...)
	}
	for i, h := range stored {
		m.hashes[log][int64(i)] = h
	}
}

func TestVerifyProgressAndScope(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, v := sealed(t, 10)
	if _, err := m.Append(ctx, testEvents(t, "globex", 5)); err != nil {
		t.Fatal(err)
	}
	s, _ := testSigner(t)
	sl, _ := NewSealer(m, &Config{Signer: s, Origin: "trail.test"})
	if _, err := sl.SealAll(ctx); err != nil {
		t.Fatal(err)
	}
	var calls []Progress
	v.Progress = func(p Progress) { calls = append(calls, p) }
	rep, err := v.Verify(ctx, nil)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep.Problems)
	}
	if rep.Events != 15 || len(rep.Logs) != 2 || rep.Bytes == 0 {
		t.Fatalf("report: %+v", rep)
	}
	last := calls[len(calls)-1]
	if last.Done != 15 || last.Total != 15 {
		t.Fatalf("last progress %+v", last)
	}
	for i := 1; i < len(calls); i++ {
		if calls[i].Done <= calls[i-1].Done {
			t.Fatalf("progress does not advance: %+v", calls)
		}
	}
	rep, _ = v.Verify(ctx, &VerifyOptions{Logs: []string{"globex"}})
	if rep.Events != 5 || len(rep.Logs) != 1 || rep.Logs[0].Checkpoints != 1 {
		t.Fatalf("scoped report: %+v", rep)
	}
	// A checkpoint file of another log than the one verified is a problem.
	acme, _ := m.LatestCheckpoint(ctx, "acme")
	rep, _ = v.Verify(ctx, &VerifyOptions{Logs: []string{"globex"}, Checkpoints: [][]byte{[]byte(acme.Note)}})
	if rep.OK() || rep.Problems[0].Kind != KindBadCheckpoint {
		t.Fatalf("checkpoint file of another log: %v", rep.Problems)
	}
	// A valid one for the right log counts as verified.
	rep, _ = v.Verify(ctx, &VerifyOptions{Logs: []string{"acme"}, Checkpoints: [][]byte{[]byte(acme.Note)}})
	if !rep.OK() || rep.Logs[0].Checkpoints != 4 || rep.Logs[0].Covered != 10 {
		t.Fatalf("checkpoint file of the verified log: %+v %v", rep.Logs, rep.Problems)
	}
	// A bounded report still fails.
	for _, id := range m.order["acme"][:6] {
		if err := m.TamperEditDescription(ctx, id, "edited"); err != nil {
			t.Fatal(err)
		}
	}
	v.MaxProblems = 2
	rep, _ = v.Verify(ctx, &VerifyOptions{Logs: []string{"acme"}})
	if rep.OK() || len(rep.Problems) != 2 || rep.Omitted == 0 || rep.Logs[0].Problems != 2+int(rep.Omitted) {
		t.Fatalf("bounded report: %d kept, %d omitted, log says %d", len(rep.Problems), rep.Omitted, rep.Logs[0].Problems)
	}
	v.MaxProblems = 0
	// An unparseable checkpoint file is a problem, not a pass.
	rep, _ = v.Verify(ctx, &VerifyOptions{Logs: []string{"globex"}, Checkpoints: [][]byte{[]byte("trail.test/globex\n5\n")}})
	if rep.OK() || rep.Problems[0].Kind != KindBadCheckpoint {
		t.Fatalf("truncated checkpoint file: %v", rep.Problems)
	}
}

func TestSealerRun(t *testing.T) {
	t.Parallel()
	s, _ := testSigner(t)
	m := NewMemLog()
	var steps []Stats
	stepped := make(chan struct{}, 100)
	sl, err := NewSealer(m, &Config{Signer: s, Holder: "runner", PollInterval: time.Millisecond,
		OnStep: func(st Stats) { steps = append(steps, st); stepped <- struct{}{} }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- sl.Run(ctx) }()
	if _, err := m.Append(context.Background(), testEvents(t, "acme", 3)); err != nil {
		t.Fatal(err)
	}
	<-stepped
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if steps[0].Sealed != 3 || steps[0].Checkpoints != 1 || steps[0].Lag <= 0 {
		t.Fatalf("first step: %+v", steps[0])
	}
	// Run released the lease: another holder gets it at once.
	if _, ok, err := m.Lease(context.Background(), DefaultLeaseName, "next", time.Minute); !ok || err != nil {
		t.Fatalf("lease not released: %v %v", ok, err)
	}
	if _, err := NewSealer(m, &Config{}); err == nil {
		t.Fatal("NewSealer without a signer")
	}
	if _, err := NewSealer(m, &Config{Signer: s, Origin: "bad origin"}); err == nil {
		t.Fatal("NewSealer with an origin holding a space")
	}
}

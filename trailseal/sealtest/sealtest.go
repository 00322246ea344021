// Package sealtest is the conformance and tamper suite every
// trailseal.Store implementation runs, so that sealing, proofs and
// verification behave the same on MemLog, SQLite and PostgreSQL, and so that
// tampering done through each store's own tables is detected and classified
// the same way.
//
// A store's test calls Run with a function returning a fresh, empty store,
// how to append events to it (its real Append, which also queues them for
// sealing) and how to tamper with its tables (direct SQL for SQL stores).
package sealtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Tamperer changes a store's tables behind the sealer's back, as someone
// with write access to the database could. SQL stores implement it with
// direct SQL (bypassing any append-only trigger as a superuser would).
type Tamperer interface {
	// TamperEditDescription overwrites the description of stored event id.
	TamperEditDescription(ctx context.Context, id uuid.UUID, desc string) error
	// TamperDeleteEvent deletes the event row id; its leaf stays.
	TamperDeleteEvent(ctx context.Context, id uuid.UUID) error
	// TamperInsertEvent stores ev with neither a pending row nor a leaf.
	TamperInsertEvent(ctx context.Context, ev trail.Event) error
	// TamperSwapSeqs exchanges the seq of two leaf rows of log (each row
	// keeps its event ID and leaf hash).
	TamperSwapSeqs(ctx context.Context, log string, i, j int64) error
	// TamperTruncate removes log's tail from seq n on: its leaf rows, their
	// events, the stored hashes from tlog.StoredHashIndex(0, n) on, and sets
	// the log's size to n.
	TamperTruncate(ctx context.Context, log string, n int64) error
	// TamperReplaceCheckpoint overwrites the signed note of log's kept
	// checkpoint of the given size.
	TamperReplaceCheckpoint(ctx context.Context, log string, size int64, note string) error
}

// Instance is one fresh store under test.
type Instance struct {
	Store trailseal.Store
	// Append stores events through the store's real append path (events
	// plus pending rows, in one transaction).
	Append func(ctx context.Context, events []trail.Event) error
	// Tamper is required: the tamper suite is part of conformance.
	Tamper Tamperer
}

// Base is the suite's reference time, in the past so events validate.
var Base = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

// Event returns a valid, normalized event of tenant, deterministic in
// (tenant, i).
func Event(tb testing.TB, tenant string, i int) trail.Event {
	tb.Helper()
	at := Base.Add(time.Duration(i) * time.Second)
	ev := trail.Event{
		ID:          DeterministicID(tenant, i, at),
		OccurredAt:  at,
		RecordedAt:  at.Add(time.Millisecond),
		Tenant:      tenant,
		Actor:       trail.Actor{Type: trail.ActorUser, ID: fmt.Sprintf("u%d", i%7), Name: "User " + fmt.Sprint(i%7)},
		Action:      []string{"user.login", "subscription.update", "user.delete"}[i%3],
		Target:      trail.Target{Type: "subscription", ID: fmt.Sprintf("s%d", i%5)},
		Outcome:     trail.OutcomeSuccess,
		Description: fmt.Sprintf("event %d of %q", i, tenant),
		Changes:     []trail.Change{trail.Changed("plan", "free", fmt.Sprintf("pro-%d", i))},
		Metadata:    map[string]any{"n": float64(i)},
		Source:      "sealtest",
	}
	if i >= 13 && i%4 == 3 { // schema version 2 beside version 1 (the golden vectors use i < 13)
		ev.TraceID = fmt.Sprintf("%032x", i+1)
		ev.SpanID = fmt.Sprintf("%016x", i+1)
	}
	if err := ev.Normalize(); err != nil {
		tb.Fatalf("normalize: %v", err)
	}
	if err := ev.Validate(); err != nil {
		tb.Fatalf("validate: %v", err)
	}
	return ev
}

// Events returns n events of tenant, Event(tenant, from) onwards.
func Events(tb testing.TB, tenant string, from, n int) []trail.Event {
	tb.Helper()
	out := make([]trail.Event, n)
	for i := range out {
		out[i] = Event(tb, tenant, from+i)
	}
	return out
}

// DeterministicID returns a UUIDv7 for at whose random bits derive from
// (tenant, i).
func DeterministicID(tenant string, i int, at time.Time) uuid.UUID {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", tenant, i))
	var id uuid.UUID
	copy(id[:], sum[:])
	ms := uint64(at.UnixMilli())
	id[0], id[1], id[2], id[3], id[4], id[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	id[6] = 0x70 | id[6]&0x0f
	id[8] = 0x80 | id[8]&0x3f
	return id
}

// TestKey returns the suite's fixed checkpoint signing key: the same key
// in every run, so that checkpoints are reproducible. Never use it for real.
func TestKey(tb testing.TB, name string) (note.Signer, note.Verifier) {
	tb.Helper()
	skey, vkey := TestKeyPair(name)
	s, err := note.NewSigner(skey)
	if err != nil {
		tb.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		tb.Fatal(err)
	}
	return s, v
}

// TestKeyPair returns the encoded signer and verifier keys of TestKey.
func TestKeyPair(name string) (skey, vkey string) {
	seed := sha256.Sum256([]byte("trail sealtest key " + name))
	skey, vkey, err := note.GenerateKey(bytes.NewReader(seed[:]), name)
	if err != nil {
		panic("sealtest: " + err.Error())
	}
	return skey, vkey
}

const origin = "trail.test"

// fixture is a store plus a sealer and verifier configured for the suite.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	in     Instance
	signer note.Signer
	keys   note.Verifiers
	now    time.Time
	mu     sync.Mutex
	held   string // a checkpoint a tenant saved before the tampering
}

func newFixture(t *testing.T, newLog func(t *testing.T) Instance) *fixture {
	t.Helper()
	in := newLog(t)
	if in.Store == nil || in.Append == nil || in.Tamper == nil {
		t.Fatal("sealtest: Instance needs Store, Append and Tamper")
	}
	s, v := TestKey(t, origin)
	return &fixture{t: t, ctx: context.Background(), in: in, signer: s, keys: note.VerifierList(v), now: Base.Add(time.Hour)}
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) sealer(holder string, batch int) *trailseal.Sealer {
	f.t.Helper()
	s, err := trailseal.NewSealer(f.in.Store, &trailseal.Config{
		Signer: f.signer, Origin: origin, Holder: holder, BatchSize: batch,
		CheckpointEvents: 5, CheckpointInterval: time.Hour, Now: f.clock, LeaseTTL: time.Minute,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) append(evs []trail.Event) {
	f.t.Helper()
	if err := f.in.Append(f.ctx, evs); err != nil {
		f.t.Fatalf("append: %v", err)
	}
}

func (f *fixture) verify(opt *trailseal.VerifyOptions) *trailseal.Report {
	f.t.Helper()
	v := &trailseal.Verifier{Store: f.in.Store, Verifiers: f.keys, Origin: origin, BatchSize: 7}
	rep, err := v.Verify(f.ctx, opt)
	if err != nil {
		f.t.Fatalf("verify: %v", err)
	}
	return rep
}

// populate stores and seals acme×20, globex×20, platform×6 so that acme and
// globex have checkpoints at 5, 10, 15, 20 and the platform log at 5 and 6.
// It returns the events by log.
func (f *fixture) populate() map[string][]trail.Event {
	f.t.Helper()
	byLog := map[string][]trail.Event{
		"acme":                Events(f.t, "acme", 0, 20),
		"globex":              Events(f.t, "globex", 0, 20),
		trailseal.PlatformLog: Events(f.t, "", 0, 6),
	}
	s := f.sealer("populate", 5)
	for _, log := range []string{"acme", "globex", trailseal.PlatformLog} {
		f.append(byLog[log])
		for {
			st, err := s.Step(f.ctx)
			if err != nil {
				f.t.Fatalf("step: %v", err)
			}
			if st.Sealed == 0 {
				break
			}
		}
	}
	if _, err := s.SealAll(f.ctx); err != nil {
		f.t.Fatalf("seal all: %v", err)
	}
	if err := s.Release(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	return byLog
}

// Run runs the suite. newLog returns a fresh, empty store for one subtest
// and must clean it up with t.Cleanup.
func Run(t *testing.T, newLog func(t *testing.T) Instance) {
	t.Run("Lease", func(t *testing.T) { testLease(t, newLog) })
	t.Run("LeaseExpiry", func(t *testing.T) { testLeaseExpiry(t, newLog) })
	t.Run("Fencing", func(t *testing.T) { testFencing(t, newLog) })
	t.Run("Conflict", func(t *testing.T) { testConflict(t, newLog) })
	t.Run("SealOrder", func(t *testing.T) { testSealOrder(t, newLog) })
	t.Run("StoredHashes", func(t *testing.T) { testStoredHashes(t, newLog) })
	t.Run("Checkpoints", func(t *testing.T) { testCheckpoints(t, newLog) })
	t.Run("Proofs", func(t *testing.T) { testProofs(t, newLog) })
	t.Run("ProofErrors", func(t *testing.T) { testProofErrors(t, newLog) })
	t.Run("ConcurrentWriters", func(t *testing.T) { testConcurrentWriters(t, newLog) })
	t.Run("ReadAhead", func(t *testing.T) { testReadAhead(t, newLog) })
	t.Run("CompetingSealers", func(t *testing.T) { testCompetingSealers(t, newLog) })
	t.Run("VerifyWhileSealing", func(t *testing.T) { testVerifyWhileSealing(t, newLog) })
	t.Run("Tamper", func(t *testing.T) { testTamper(t, newLog) })
}

func testLease(t *testing.T, newLog func(t *testing.T) Instance) {
	f := newFixture(t, newLog)
	s, ctx := f.in.Store, f.ctx
	e1, ok, err := s.Lease(ctx, "L", "a", time.Minute)
	if err != nil || !ok || e1 < 1 {
		t.Fatalf("first lease: epoch %d ok %v err %v; want epoch>=1, ok", e1, ok, err)
	}
	e, ok, err := s.Lease(ctx, "L", "a", time.Minute)
	if err != nil || !ok || e != e1 {
		t.Fatalf("renew: epoch %d ok %v err %v; want %d, ok", e, ok, err, e1)
	}
	if _, ok, err := s.Lease(ctx, "L", "b", time.Minute); err != nil || ok {
		t.Fatalf("b took a held lease: ok %v err %v", ok, err)
	}
	if e, ok, err := s.Lease(ctx, "other", "b", time.Minute); err != nil || !ok || e < 1 {
		t.Fatalf("leases are independent by name: epoch %d ok %v err %v", e, ok, err)
	}
	if _, ok, err := s.Lease(ctx, "L", "b", 0); err != nil || ok {
		t.Fatalf("b released a lease it does not hold: ok %v err %v", ok, err)
	}
	if _, ok, _ := s.Lease(ctx, "L", "b", time.Minute); ok {
		t.Fatal("release by a non-holder freed the lease")
	}
	if _, ok, err := s.Lease(ctx, "L", "a", 0); err != nil || ok {
		t.Fatalf("release: ok %v err %v", ok, err)
	}
	e2, ok, err := s.Lease(ctx, "L", "b", time.Minute)
	if err != nil || !ok || e2 != e1+1 {
		t.Fatalf("after release b got epoch %d ok %v err %v; want %d", e2, ok, err, e1+1)
	}
	if _, ok, _ := s.Lease(ctx, "L", "a", time.Minute); ok {
		t.Fatal("a retook the lease b holds")
	}
}

func testLeaseExpiry(t *testing.T, newLog func(t *testing.T) Instance) {
	f := newFixture(t, newLog)
	s, ctx := f.in.Store, f.ctx
	e1, ok, err := s.Lease(ctx, "L", "a", time.Millisecond)
	if err != nil || !ok {
		t.Fatalf("lease: %v %v", ok, err)
	}
	// Poll until the store's clock passes the expiry (not a timing assertion:
	// the bound only stops a broken store from hanging the suite).
	deadline := time.Now().Add(30 * time.Second)
	for {
		e2, ok, err := s.Lease(ctx, "L", "b", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if e2 != e1+1 {
				t.Fatalf("takeover epoch %d, want %d", e2, e1+1)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an expired lease was never taken over")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testFencing(t *testing.T, newLog func(t *testing.T) Instance) {
	f := newFixture(t, newLog)
	f.append(Events(t, "acme", 0, 3))
	old := f.sealer("old", 2)
	if old.Leading() {
		t.Fatal("a sealer that never stepped says it leads")
	}
	if st, err := old.Step(f.ctx); err != nil || st.Sealed != 2 {
		t.Fatalf("old leader step: %+v %v", st, err)
	}
	if !old.Leading() {
		t.Fatal("the sealer holding the lease does not say it leads")
	}
	// The old leader stalls; its lease is released (as if expired) and a new
	// leader takes over.
	if _, _, err := f.in.Store.Lease(f.ctx, trailseal.DefaultLeaseName, "old", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.sealer("new", 100).Step(f.ctx); err != nil {
		t.Fatal(err)
	}
	size, _ := f.in.Store.TreeSize(f.ctx, "acme")
	cur, ok, err := f.in.Store.Lease(f.ctx, trailseal.DefaultLeaseName, "new", time.Minute)
	if err != nil || !ok {
		t.Fatalf("new leader lost its lease: %v %v", ok, err)
	}
	// The stale leader writes with its old epoch: fenced, nothing written.
	staleEpoch := cur - 1
	fence := trailseal.Fence{Lease: trailseal.DefaultLeaseName, Epoch: staleEpoch}
	f.append(Events(t, "acme", 3, 1))
	h := tlog.RecordHash([]byte("forged"))
	err = f.in.Store.Seal(f.ctx, fence, trailseal.SealBatch{
		Leaves: []trailseal.Leaf{{Log: "acme", Seq: size, EventID: Event(t, "acme", 3).ID, Hash: h}},
		Hashes: []trailseal.StoredHash{{Log: "acme", Index: tlog.StoredHashIndex(0, size), Hash: h}},
		Sizes:  []trailseal.LogSize{{Log: "acme", OldSize: size, NewSize: size + 1}},
		Done:   []uuid.UUID{Event(t, "acme", 3).ID},
	})
	if !errors.Is(err, trailseal.ErrFenced) {
		t.Fatalf("stale epoch %d sealed: err %v, want ErrFenced", staleEpoch, err)
	}
	if n, _ := f.in.Store.TreeSize(f.ctx, "acme"); n != size {
		t.Fatalf("fenced seal changed the size: %d, want %d", n, size)
	}
	if p, _ := f.in.Store.Pending(f.ctx, 10); len(p) != 1 {
		t.Fatalf("fenced seal removed pending rows: %d left, want 1", len(p))
	}
	cp, err := trailseal.SignCheckpoint(f.signer, origin, "acme", 1, h, f.now)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.in.Store.SaveCheckpoint(f.ctx, fence, cp); !errors.Is(err, trailseal.ErrFenced) {
		t.Fatalf("stale epoch saved a checkpoint: %v", err)
	}
	// The stale sealer itself finds out on its next step.
	if _, err := old.Step(f.ctx); !errors.Is(err, trailseal.ErrNotLeader) {
		t.Fatalf("stale sealer step: %v, want ErrNotLeader", err)
	}
	if old.Leading() {
		t.Fatal("a sealer that lost its lease still says it leads")
	}
	if rep := f.verify(nil); !rep.OK() {
		t.Fatalf("verify after fencing: %v", rep.Problems)
	}
}

func testConflict(t *testing.T, newLog func(t *testing.T) Instance) {
	f := newFixture(t, newLog)
	f.append(Events(t, "acme", 0, 2))
	if _, err := f.sealer("s", 1).Step(f.ctx); err != nil {
		t.Fatal(err)
	}
	epoch, ok, err := f.in.Store.Lease(f.ctx, trailseal.DefaultLeaseName, "s", time.Minute)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	ev := Event(t, "acme", 1)
	h := tlog.RecordHash([]byte("x"))
	err = f.in.Store.Seal(f.ctx, trailseal.Fence{Lease: trailseal.DefaultLeaseName, Epoch: epoch}, trailseal.SealBatch{
		Leaves: []trailseal.Leaf{{Log: "acme", Seq: 0, EventID: ev.ID, Hash: h}},
		Sizes:  []trailseal.LogSize{{Log: "acme", OldSize: 0, NewSize: 1}},
		Done:   []uuid.UUID{ev.ID},
	})
	if !errors.Is(err, trailseal.ErrConflict) {
		t.Fatalf("seal against a stale size: %v, want ErrConflict", err)
	}
	if n, _ := f.in.Store.TreeSize(f.ctx, "acme"); n != 1 {
		t.Fatalf("size %d after a refused seal, want 1", n)
	}
	if p, _ := f.in.Store.Pending(f.ctx, 10); len(p) != 1 || p[0].ID != ev.ID {
		t.Fatalf("pending after a refused seal: %d rows", len(p))
	}
}

func testSealOrder(t *testing.T, newLog func(t *testing.T) Instance) {
	f := newFixture(t, newLog)
	// Interleave tenants and platform events in one append and across appends.
	var all []trail.Event
	want := map[string][]uuid.UUID{}
	for i := range 12 {
		for _, tenant := range []string{"acme", "globex", ""} {
			if tenant == "" && i%3 != 0 {
				continue
			}
			ev := Event(t, tenant, i)
			all = append(all, ev)
			log := trailseal.LogName(tenant)
			want[log] = append(want[log], ev.ID)
		}
	}
	f.append(all[:10])
	f.append(all[10:])
	f.append(all[3:5]) // duplicates: stored nothing new, sealed once
	st, err := f.sealer("s", 4).SealAll(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Sealed != len(all) {
		t.Fatalf("sealed %d, want %d", st.Sealed, len(all))
	}
	logs, err := f.in.Store.Logs(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(logs, []string{"_platform", "acme", "globex"}) {
		t.Fatalf("logs %q", logs)
	}
	for log, ids := range want {
		n, err := f.in.Store.TreeSize(f.ctx, log)
		if err != nil || n != int64(len(ids)) {
			t.Fatalf("%s: size %d err %v, want %d", log, n, err, len(ids))
		}
		ses, err := f.in.Store.Leaves(f.ctx, log, 0, n)
		if err != nil {
			t.Fatal(err)
		}
		for i, se := range ses {
			if se.Seq != int64(i) || se.EventID != ids[i] || se.Log != log {
				t.Fatalf("%s leaf %d: %+v, want seq %d event %s", log, i, se.Leaf, i, ids[i])
			}
			if se.Event == nil || se.Event.ID != ids[i] {
				t.Fatalf("%s leaf %d: event not returned", log, i)
			}
			h, err := trailseal.LeafHash(se.Event)
			if err != nil || h != se.Hash {
				t.Fatalf("%s leaf %d: hash %s, recomputed %s (%v)", log, i, se.Hash, h, err)
			}
			l, err := f.in.Store.LeafOf(f.ctx, ids[i])
			if err != nil || l != se.Leaf {
				t.Fatalf("LeafOf(%s) = %+v, %v; want %+v", ids[i], l, err, se.Leaf)
			}
		}
		if len(ses) != len(ids) {
			t.Fatalf("%s: %d leaves, want %d", log, len(ses), len(ids))
		}
		if part, err := f.in.Store.Leaves(f.ctx, log, 1, 3); err != nil || len(part) != 2 || part[0].Seq != 1 {
			t.Fatalf("Leaves(1,3): %d rows, %v", len(part), err)
		}
	}
	if p, err := f.in.Store.Pending(f.ctx, 100); err != nil || len(p) != 0 {
		t.Fatalf("pending after SealAll: %d, %v", len(p), err)
	}
	if rep := f.verify(nil); !rep.OK() || rep.Events != int64(len(all)) {
		t.Fatalf("verify: %d events, problems %v", rep.Events, rep.Problems)
	}
}

// tlogHashes is the tree tlog computes over evs' canonical bytes, in
// order: its stored hashes, and a reader of them.
func tlogHashes(t *testing.T, evs []trail.Event) ([]tlog.Hash, tlog.HashReader) {
	t.Helper()
	var stored []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	for i := range evs {
		b, err := trailseal.CanonicalBytes(&evs[i])
		if err != nil {
			t.Fatal(err)
		}
		hs, err := tlog.StoredHashes(int64(i), b, r)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hs...)
	}
	return stored, r
}

// testStoredHashes checks that the tree stored by sealing in uneven
// batches is exactly the one tlog computes in one go.
func testStoredHashes(t *testing.T, newLog func(t *testing.T) Instance) {
	f := newFixture(t, newLog)
	s := f.sealer("s", 3)
	evs := Events(t, "acme", 0, 37)
	for i := 0; i < len(evs); i += 5 {
		f.append(evs[i:min(i+5, len(evs))])
		if _, err := s.Step(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.SealAll(f.ctx); err != nil {
		t.Fatal(err)
	}
	want, r := tlogHashes(t, evs)
	idx := make([]int64, len(want))
	for i := range idx {
		idx[i] = int64(i)
	}
	got, err := f.in.Store.ReadHashes(f.ctx, "acme", idx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatal("stored hashes differ from tlog.StoredHashes over the canonical bytes")
	}
	if _, err := f.in.Store.ReadHashes(f.ctx, "acme", []int64{int64(len(want))}); err == nil {
		t.Fatal("ReadHashes of an index not stored succeeded")
	}
	root, _ := tlog.TreeHash(int64(len(evs)), r)
	cp, err := f.in.Store.LatestCheckpoint(f.ctx, "acme")
	if err != nil || cp.Size != int64(len(evs)) || cp.Root != root {
		t.Fatalf("latest checkpoint %d %s (%v), want %d %s", cp.Size, cp.Root, err, len(evs), root)
	}
}

func testCheckpoints(t *testing.T, newLog func(t *testing.T) Instance) {
	f := newFixture(t, newLog)
	if _, err := f.in.Store.LatestCheckpoint(f.ctx, "acme"); !errors.Is(err, trailseal.ErrNoCheckpoint) {
		t.Fatalf("latest of an empty log: %v, want ErrNoCheckpoint", err)
	}
	f.populate()
	for log, sizes := range map[string][]int64{"acme": {5, 10, 15, 20}, "globex": {5, 10, 15, 20}, "_platform": {5, 6}} {
		cps, err := f.in.Store.Checkpoints(f.ctx, log)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, cp := range cps {
			got = append(got, cp.Size)
			body, err := trailseal.OpenCheckpoint([]byte(cp.Note), f.keys, trailseal.CheckpointOrigin(origin, log))
			if err != nil {
				t.Fatalf("%s checkpoint %d: %v", log, cp.Size, err)
			}
			if body.Size != cp.Size || body.Root != cp.Root || cp.Log != log || cp.Time.IsZero() {
				t.Fatalf("%s checkpoint %d: row %+v, note %+v", log, cp.Size, cp, body)
			}
			root, err := tlog.TreeHash(cp.Size, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
				return f.in.Store.ReadHashes(f.ctx, log, idx)
			}))
			if err != nil || root != cp.Root {
				t.Fatalf("%s checkpoint %d: root %s, tree says %s (%v)", log, cp.Size, cp.Root, root, err)
			}
		}
		if !slices.Equal(got, sizes) {
			t.Fatalf("%s checkpoint sizes %v, want %v", log, got, sizes)
		}
		latest, err := f.in.Store.LatestCheckpoint(f.ctx, log)
		if err != nil || latest.Size != sizes[len(sizes)-1] || latest.Note != cps[len(cps)-1].Note {
			t.Fatalf("%s latest: %+v %v", log, latest, err)
		}
	}
	if ls, ok := f.in.Store.(trailseal.LogStater); ok {
		states, err := ls.LogStates(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		var logs []string
		for _, st := range states {
			logs = append(logs, st.Log)
			latest, err := f.in.Store.LatestCheckpoint(f.ctx, st.Log)
			size, _ := f.in.Store.TreeSize(f.ctx, st.Log)
			if err != nil || st.Size != size || st.CheckpointSize != latest.Size || !st.CheckpointTime.Equal(latest.Time) {
				t.Fatalf("LogStates %+v, but size %d and latest checkpoint %d at %v (%v)", st, size, latest.Size, latest.Time, err)
			}
		}
		if !slices.Equal(logs, []string{"_platform", "acme", "globex"}) {
			t.Fatalf("LogStates logs %q", logs)
		}
	}
	// Nothing new: no new checkpoint.
	again := f.sealer("again", 10)
	if st, err := again.SealAll(f.ctx); err != nil || st.Checkpoints != 0 || st.Sealed != 0 {
		t.Fatalf("idle SealAll: %+v %v", st, err)
	}
	if err := again.Release(f.ctx); err != nil {
		t.Fatal(err)
	}
	// Time-based: one more event is checkpointed only once the interval passes.
	f.append(Events(t, "acme", 20, 1))
	s := f.sealer("s", 10)
	if st, err := s.Step(f.ctx); err != nil || st.Sealed != 1 || st.Checkpoints != 0 {
		t.Fatalf("step: %+v %v (want 1 sealed, no checkpoint yet)", st, err)
	}
	f.mu.Lock()
	f.now = f.now.Add(2 * time.Hour)
	f.mu.Unlock()
	if st, err := s.Step(f.ctx); err != nil || st.Checkpoints != 1 {
		t.Fatalf("step after the interval: %+v %v (want 1 checkpoint)", st, err)
	}
	if cp, _ := f.in.Store.LatestCheckpoint(f.ctx, "acme"); cp.Size != 21 {
		t.Fatalf("latest after the interval: size %d", cp.Size)
	}
}

func testProofs(t *testing.T, newLog func(t *testing.T) Instance) {
	f := newFixture(t, newLog)
	byLog := f.populate()
	for log, evs := range byLog {
		cps, err := f.in.Store.Checkpoints(f.ctx, log)
		if err != nil {
			t.Fatal(err)
		}
		for _, cp := range cps {
			for i := int64(0); i < cp.Size; i++ {
				p, err := trailseal.ProveInclusion(f.ctx, f.in.Store, evs[i].ID, &cp)
				if err != nil {
					t.Fatalf("%s prove %d at %d: %v", log, i, cp.Size, err)
				}
				if err := p.Verify(f.keys, origin); err != nil {
					t.Fatalf("%s proof %d at %d: %v", log, i, cp.Size, err)
				}
				want, _ := trailseal.CanonicalBytes(&evs[i])
				if !bytes.Equal(p.Canonical, want) || p.Index != i {
					t.Fatalf("%s proof %d: index %d, canonical bytes differ", log, i, p.Index)
				}
				if err := tlog.CheckRecord(p.Proof, cp.Size, cp.Root, i, tlog.RecordHash(want)); err != nil {
					t.Fatalf("tlog.CheckRecord: %v", err)
				}
				// The proof does not hold for any other leaf.
				other, _ := trailseal.CanonicalBytes(&evs[(i+1)%int64(len(evs))])
				if tlog.CheckRecord(p.Proof, cp.Size, cp.Root, i, tlog.RecordHash(other)) == nil {
					t.Fatalf("%s proof %d verified another event", log, i)
				}
				bad := p
				bad.Canonical = append(slices.Clone(p.Canonical[:len(p.Canonical)-1]), ' ')
				if bad.Verify(f.keys, origin) == nil {
					t.Fatalf("%s proof %d verified edited canonical bytes", log, i)
				}
			}
		}
		for i := range cps {
			for j := i; j < len(cps); j++ {
				p, err := trailseal.ProveConsistency(f.ctx, f.in.Store, cps[i], cps[j])
				if err != nil {
					t.Fatalf("%s consistency %d..%d: %v", log, cps[i].Size, cps[j].Size, err)
				}
				if err := p.Verify(f.keys, origin); err != nil {
					t.Fatalf("%s consistency %d..%d: %v", log, cps[i].Size, cps[j].Size, err)
				}
				if err := tlog.CheckTree(p.Proof, cps[j].Size, cps[j].Root, cps[i].Size, cps[i].Root); err != nil {
					t.Fatalf("tlog.CheckTree: %v", err)
				}
				if cps[i].Size != cps[j].Size {
					bad := p
					bad.OldRoot = tlog.RecordHash([]byte("other"))
					if bad.Verify(f.keys, origin) == nil {
						t.Fatal("consistency proof verified a wrong old root")
					}
				}
			}
		}
		// Latest checkpoint by default.
		p, err := trailseal.ProveInclusion(f.ctx, f.in.Store, evs[0].ID, nil)
		if err != nil || p.TreeSize != int64(len(evs)) {
			t.Fatalf("prove against latest: size %d, %v", p.TreeSize, err)
		}
	}
}

func testProofErrors(t *testing.T, newLog func(t *testing.T) Instance) {
	f := newFixture(t, newLog)
	byLog := f.populate()
	ctx, s := f.ctx, f.in.Store
	if _, err := trailseal.ProveInclusion(ctx, s, uuid.New(), nil); !errors.Is(err, trailseal.ErrUnknownEvent) || !errors.Is(err, trail.ErrNotFound) {
		t.Fatalf("unknown event: %v", err)
	}
	unsealed := Event(t, "acme", 100)
	f.append([]trail.Event{unsealed})
	if _, err := trailseal.ProveInclusion(ctx, s, unsealed.ID, nil); !errors.Is(err, trailseal.ErrNotSealed) {
		t.Fatalf("unsealed event: %v", err)
	}
	if _, err := s.LeafOf(ctx, unsealed.ID); !errors.Is(err, trailseal.ErrNotSealed) {
		t.Fatalf("LeafOf unsealed: %v", err)
	}
	cp5, err := trailseal.FindCheckpoint(ctx, s, "acme", 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := trailseal.ProveInclusion(ctx, s, byLog["acme"][7].ID, &cp5); !errors.Is(err, trailseal.ErrNotCheckpointed) {
		t.Fatalf("event after the checkpoint: %v", err)
	}
	g5, _ := trailseal.FindCheckpoint(ctx, s, "globex", 5)
	if _, err := trailseal.ProveInclusion(ctx, s, byLog["acme"][1].ID, &g5); !errors.Is(err, trailseal.ErrBadCheckpoint) {
		t.Fatalf("checkpoint of another log: %v", err)
	}
	if _, err := trailseal.FindCheckpoint(ctx, s, "acme", 7); !errors.Is(err, trailseal.ErrNoCheckpoint) {
		t.Fatalf("FindCheckpoint of a size never signed: %v", err)
	}
	// A genuine proof checked against the wrong log, key or a truncated
	// checkpoint never verifies.
	p, err := trailseal.ProveInclusion(ctx, s, byLog["acme"][3].ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	other := p
	other.Log = "globex"
	if err := other.Verify(f.keys, origin); !errors.Is(err, trailseal.ErrBadCheckpoint) {
		t.Fatalf("proof relabeled to another log: %v", err)
	}
	_, otherKey := TestKey(t, "other.test")
	if err := p.Verify(note.VerifierList(otherKey), origin); !errors.Is(err, trailseal.ErrBadCheckpoint) {
		t.Fatalf("proof checked with another key: %v", err)
	}
	for _, cut := range []int{1, 10, len(p.Checkpoint) / 2, len(p.Checkpoint) - 1} {
		tr := p
		tr.Checkpoint = p.Checkpoint[:len(p.Checkpoint)-cut]
		if err := tr.Verify(f.keys, origin); err == nil {
			t.Fatalf("checkpoint truncated by %d verified", cut)
		}
	}
	if err := p.Verify(f.keys, "elsewhere.example"); !errors.Is(err, trailseal.ErrBadCheckpoint) {
		t.Fatalf("proof checked against another origin: %v", err)
	}
}

func testConcurrentWriters(t *testing.T, newLog func(t *testing.T) Instance) {
	f := newFixture(t, newLog)
	const writers, each = 4, 25
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	s := f.sealer("s", 7)
	sealerDone := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if _, err := s.Step(ctx); err != nil && ctx.Err() == nil {
				sealerDone <- err
				return
			}
		}
		sealerDone <- nil
	}()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			tenant := []string{"acme", "globex"}[w%2]
			for i := range each {
				ev := Event(t, tenant, 1000*w+i)
				if err := f.in.Append(f.ctx, []trail.Event{ev}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("writer: %v", err)
	}
	cancel()
	if err := <-sealerDone; err != nil {
		t.Fatalf("sealer: %v", err)
	}
	if _, err := s.SealAll(f.ctx); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, log := range []string{"acme", "globex"} {
		n, _ := f.in.Store.TreeSize(f.ctx, log)
		total += n
	}
	if total != writers*each {
		t.Fatalf("sealed %d events, want %d", total, writers*each)
	}
	if rep := f.verify(nil); !rep.OK() {
		t.Fatalf("verify: %v", rep.Problems)
	}
}

func testCompetingSealers(t *testing.T, newLog func(t *testing.T) Instance) {
	f := newFixture(t, newLog)
	f.append(Events(t, "acme", 0, 30))
	f.append(Events(t, "globex", 0, 30))
	var wg sync.WaitGroup
	var mu sync.Mutex
	leaders := map[string]int{}
	for _, name := range []string{"s1", "s2", "s3"} {
		s := f.sealer(name, 4)
		wg.Go(func() {
			for range 40 {
				st, err := s.Step(f.ctx)
				if errors.Is(err, trailseal.ErrNotLeader) {
					continue
				}
				if err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
				mu.Lock()
				leaders[name] += st.Sealed
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	sealedBy := 0
	for _, n := range leaders {
		if n > 0 {
			sealedBy++
		}
	}
	if sealedBy != 1 {
		t.Fatalf("events sealed by %d sealers (%v), want exactly one leader", sealedBy, leaders)
	}
	if rep := f.verify(nil); !rep.OK() || rep.Events != 60 {
		t.Fatalf("verify: %d events, %v", rep.Events, rep.Problems)
	}
}

// testVerifyWhileSealing verifies a live store: events keep arriving and
// being sealed and checkpointed while the verifier runs, and it must never
// report a problem that is not there.
func testVerifyWhileSealing(t *testing.T, newLog func(t *testing.T) Instance) {
	f := newFixture(t, newLog)
	f.populate()
	const more = 60 // bounded: the log must not outgrow the verifier
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		s := f.sealer("live", 3)
		for i := range more {
			tenant := []string{"acme", "globex", ""}[i%3]
			if err := f.in.Append(f.ctx, []trail.Event{Event(t, tenant, 100+i)}); err != nil {
				t.Errorf("append: %v", err)
				return
			}
			if _, err := s.Step(f.ctx); err != nil {
				t.Errorf("step: %v", err)
				return
			}
		}
	})
	for live := true; live; {
		select {
		case <-done:
			live = false
		default:
		}
		if rep := f.verify(nil); !rep.OK() {
			wg.Wait()
			t.Fatalf("live store: %v", rep.Problems)
		}
	}
	wg.Wait()
	if rep := f.verify(nil); !rep.OK() || rep.Events != 46+more {
		t.Fatalf("after sealing: %d events, %v", rep.Events, rep.Problems)
	}
}

// want is an expected problem.
type want struct {
	kind trailseal.Kind
	log  string
	seq  int64
	with int64
	cp   int64
}

func (w want) String() string {
	return fmt.Sprintf("%s %s seq=%d with=%d cp=%d", w.log, w.kind, w.seq, w.with, w.cp)
}

func got(rep *trailseal.Report) []string {
	var out []string
	for _, p := range rep.Problems {
		out = append(out, want{p.Kind, p.Log, p.Seq, p.With, p.Checkpoint}.String())
	}
	return out
}

func testTamper(t *testing.T, newLog func(t *testing.T) Instance) {
	cases := []struct {
		name   string
		tamper func(f *fixture, byLog map[string][]trail.Event) error
		opt    func(f *fixture) *trailseal.VerifyOptions
		want   []want
	}{
		{name: "clean"},
		{
			name: "edit a field",
			tamper: func(f *fixture, b map[string][]trail.Event) error {
				return f.in.Tamper.TamperEditDescription(f.ctx, b["acme"][7].ID, "nothing to see here")
			},
			want: []want{{trailseal.KindModified, "acme", 7, -1, 0}},
		},
		{
			name: "edit a platform event",
			tamper: func(f *fixture, b map[string][]trail.Event) error {
				return f.in.Tamper.TamperEditDescription(f.ctx, b["_platform"][5].ID, "edited")
			},
			want: []want{{trailseal.KindModified, "_platform", 5, -1, 0}},
		},
		{
			name: "delete an event",
			tamper: func(f *fixture, b map[string][]trail.Event) error {
				return f.in.Tamper.TamperDeleteEvent(f.ctx, b["globex"][3].ID)
			},
			want: []want{{trailseal.KindMissing, "globex", 3, -1, 0}},
		},
		{
			name: "insert a forged event",
			tamper: func(f *fixture, b map[string][]trail.Event) error {
				ev := Event(f.t, "acme", 500)
				ev.Description = "forged"
				return f.in.Tamper.TamperInsertEvent(f.ctx, ev)
			},
			want: []want{{trailseal.KindInserted, "acme", -1, -1, 0}},
		},
		{
			name: "swap two sequence numbers",
			tamper: func(f *fixture, b map[string][]trail.Event) error {
				return f.in.Tamper.TamperSwapSeqs(f.ctx, "acme", 4, 9)
			},
			want: []want{{trailseal.KindReordered, "acme", 4, 9, 0}, {trailseal.KindReordered, "acme", 9, 4, 0}},
		},
		{
			name: "drop the tail",
			tamper: func(f *fixture, b map[string][]trail.Event) error {
				return f.in.Tamper.TamperTruncate(f.ctx, "globex", 17)
			},
			want: []want{{trailseal.KindTruncated, "globex", 17, -1, 20}},
		},
		{
			name: "replace a checkpoint",
			tamper: func(f *fixture, b map[string][]trail.Event) error {
				cp, err := trailseal.FindCheckpoint(f.ctx, f.in.Store, "acme", 10)
				if err != nil {
					return err
				}
				lines := strings.SplitN(cp.Note, "\n", 3)
				forged := lines[0] + "\n" + "11" + "\n" + lines[2] // size edited, signature kept
				return f.in.Tamper.TamperReplaceCheckpoint(f.ctx, "acme", 10, forged)
			},
			want: []want{{trailseal.KindBadSignature, "acme", -1, -1, 10}},
		},
		{
			name: "sign with another key",
			tamper: func(f *fixture, b map[string][]trail.Event) error {
				cp, err := trailseal.FindCheckpoint(f.ctx, f.in.Store, "acme", 15)
				if err != nil {
					return err
				}
				other, _ := TestKey(f.t, origin+"-attacker")
				forged, err := trailseal.SignCheckpoint(other, origin, "acme", cp.Size, cp.Root, f.now)
				if err != nil {
					return err
				}
				return f.in.Tamper.TamperReplaceCheckpoint(f.ctx, "acme", 15, forged.Note)
			},
			want: []want{{trailseal.KindBadSignature, "acme", -1, -1, 15}},
		},
		{
			name: "checkpoint of another log",
			tamper: func(f *fixture, b map[string][]trail.Event) error {
				cp, err := trailseal.FindCheckpoint(f.ctx, f.in.Store, "globex", 5)
				if err != nil {
					return err
				}
				return f.in.Tamper.TamperReplaceCheckpoint(f.ctx, "acme", 5, cp.Note)
			},
			want: []want{{trailseal.KindBadCheckpoint, "acme", -1, -1, 5}},
		},
		{
			name: "truncated below a checkpoint held outside",
			tamper: func(f *fixture, b map[string][]trail.Event) error {
				// The attacker drops the tail and the checkpoints that cover it.
				if err := f.in.Tamper.TamperTruncate(f.ctx, "acme", 12); err != nil {
					return err
				}
				for _, size := range []int64{15, 20} {
					cp, _ := trailseal.FindCheckpoint(f.ctx, f.in.Store, "acme", 10)
					if err := f.in.Tamper.TamperReplaceCheckpoint(f.ctx, "acme", size, cp.Note); err != nil {
						return err
					}
				}
				return nil
			},
			opt: func(f *fixture) *trailseal.VerifyOptions {
				return &trailseal.VerifyOptions{Logs: []string{"acme"}, Checkpoints: [][]byte{[]byte(f.held)}}
			},
			// The kept history now reads 5, 10, 10, 10 (rows say 15 and 20:
			// their signed text disagrees) and the tenant's own copy of the
			// checkpoint of size 20 shows the truncation.
			want: []want{
				{trailseal.KindTruncated, "acme", 12, -1, 20},
				{trailseal.KindBadCheckpoint, "acme", -1, -1, 15},
				{trailseal.KindBadCheckpoint, "acme", -1, -1, 20},
			},
		},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			f := newFixture(t, newLog)
			byLog := f.populate()
			if tc.opt != nil {
				cp, err := f.in.Store.LatestCheckpoint(f.ctx, "acme")
				if err != nil {
					t.Fatal(err)
				}
				f.held = cp.Note
			}
			if tc.tamper != nil {
				if err := tc.tamper(f, byLog); err != nil {
					t.Fatalf("tamper: %v", err)
				}
			}
			var opt *trailseal.VerifyOptions
			if tc.opt != nil {
				opt = tc.opt(f)
			}
			rep := f.verify(opt)
			var wantS []string
			for _, w := range tc.want {
				wantS = append(wantS, w.String())
			}
			gotS := got(rep)
			slices.Sort(gotS)
			slices.Sort(wantS)
			if !slices.Equal(gotS, wantS) {
				t.Fatalf("problems:\n  got  %q\n  want %q\nreport: %v", gotS, wantS, rep.Problems)
			}
			for _, p := range rep.Problems {
				if p.Kind == trailseal.KindModified || p.Kind == trailseal.KindMissing || p.Kind == trailseal.KindInserted {
					if p.EventID == uuid.Nil {
						t.Errorf("%v names no event", p)
					}
				}
			}
			if tc.want == nil && rep.Events != 46 {
				t.Fatalf("clean verify covered %d events, want 46", rep.Events)
			}
		})
	}
}

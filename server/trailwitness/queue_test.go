package trailwitness_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/server/trailwitness"
	"github.com/trailhq/trail/trailseal"
	"github.com/trailhq/trail/trailseal/sealtest"
	"golang.org/x/mod/sumdb/note"
)

// TestWitnessQueueBounded: while the HTTP witness answers 503 the sealer
// keeps at most WitnessQueue objects, drops superseded and then the oldest
// ones, counts the drops and says so. Once the witness is back it gets the
// newest head, which commits to every log at its newest checkpoint, and a
// check of the store against the witness finds nothing wrong.
func TestWitnessQueueBounded(t *testing.T) {
	ctx := context.Background()
	st, err := trailsqlite.Open(ctx, filepath.Join(t.TempDir(), "trail.db"), &trailsqlite.Config{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dir := trailseal.DirWitness{Dir: t.TempDir()}
	var down atomic.Bool
	down.Store(true)
	receiver := &trailwitness.Handler{Dir: dir}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		receiver.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	w, err := trailwitness.Open(ctx, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, verifier := sealtest.TestKey(t, "trail.test")
	now := time.Now()
	var mu sync.Mutex
	var said []string
	const bound = 3
	s, err := trailseal.NewSealer(st, &trailseal.Config{Signer: signer, Origin: "trail.test", Witnesses: []trailseal.Witness{w},
		WitnessQueue: bound, CheckpointEvents: 1, HeadInterval: time.Nanosecond,
		Now:     func() time.Time { mu.Lock(); defer mu.Unlock(); now = now.Add(time.Second); return now },
		OnError: func(err error) { mu.Lock(); said = append(said, err.Error()); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	step := func(tenant string) {
		t.Helper()
		ev := trail.Event{Tenant: tenant, Actor: trail.Actor{Type: trail.ActorUser, ID: "u1"}, Action: "user.update", Target: trail.Target{Type: "user", ID: "u1"}}
		if err := ev.Normalize(); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Append(ctx, []trail.Event{ev}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Step(ctx); err != nil && !strings.Contains(err.Error(), "503") {
			t.Fatal(err)
		}
		if waiting, _ := s.WitnessBacklog(); waiting > bound {
			t.Fatalf("%d objects waiting, bound %d", waiting, bound)
		}
	}
	// 12 steps, each a checkpoint and a head: 24 objects for a queue of 3.
	for i := range 12 {
		step(fmt.Sprintf("t%d", i%6))
	}
	waiting, dropped := s.WitnessBacklog()
	if waiting != bound || dropped != 24-bound {
		t.Fatalf("waiting %d, dropped %d; want %d and %d", waiting, dropped, bound, 24-bound)
	}
	// /metrics says so too.
	ks, err := trailserver.NewSQLKeyStore(ctx, st.DB(), trailserver.DialectSQLite)
	if err != nil {
		t.Fatal(err)
	}
	api, err := trailserver.New(trailserver.Config{Store: st, Keys: ks, Logger: slog.New(slog.DiscardHandler),
		Integrity: &trailserver.Integrity{Log: st, Origin: "trail.test", WitnessBacklog: s.WitnessBacklog}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Close)
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{fmt.Sprintf("\ntrail_witness_queue_objects %d\n", bound), fmt.Sprintf("\ntrail_witness_dropped_total %d\n", 24-bound)} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}
	mu.Lock()
	reported := slices.ContainsFunc(said, func(s string) bool { return strings.Contains(s, "witness queue full") })
	mu.Unlock()
	if !reported {
		t.Fatalf("the drops were not reported: %q", said)
	}

	down.Store(false)
	step("t0")
	if waiting, _ := s.WitnessBacklog(); waiting != 0 {
		t.Fatalf("%d objects still waiting with the witness back", waiting)
	}
	heads, err := dir.List(ctx, trailseal.WitnessHeads)
	if err != nil || len(heads) == 0 {
		t.Fatalf("witnessed heads: %v %v", heads, err)
	}
	b, err := dir.Get(ctx, heads[len(heads)-1])
	if err != nil {
		t.Fatal(err)
	}
	h, err := trailseal.ParseHead(b, note.VerifierList(verifier), "trail.test")
	if err != nil {
		t.Fatal(err)
	}
	logs, err := st.Logs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Entries) != len(logs) {
		t.Fatalf("the newest witnessed head has %d logs, the store %d", len(h.Entries), len(logs))
	}
	for _, e := range h.Entries {
		cp, err := st.LatestCheckpoint(ctx, e.Log)
		if err != nil || cp.Size != e.Size || cp.Root != e.Root {
			t.Errorf("head entry %+v, latest checkpoint %+v %v", e, cp, err)
		}
	}
	rep, err := trailseal.CheckWitness(ctx, st, dir, note.VerifierList(verifier), "trail.test", nil)
	if err != nil || !rep.OK() {
		t.Fatalf("check against the witness: %v %+v", err, rep)
	}
}

package trailserver

import (
	"context"
	"log/slog"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailsqlite"
)

// gatherStore is a real SQLite store whose first append (AppendGathered,
// or Append, which the server must not use for audit groups here) is held
// before it takes its turn, as behind a busy writer; it records the size of
// every append.
type gatherStore struct {
	*trailsqlite.Store
	entered chan struct{}
	release chan struct{}
	held    sync.Once

	mu       sync.Mutex
	gathered []int // events per AppendGathered, in order
	appended []int // events per Append
}

func (g *gatherStore) AppendGathered(ctx context.Context, gather func() []trail.Event) ([]trail.Result, error) {
	g.mu.Lock()
	g.gathered = append(g.gathered, 0)
	i := len(g.gathered) - 1
	g.mu.Unlock()
	g.hold()
	return g.Store.AppendGathered(ctx, func() []trail.Event {
		evs := gather()
		g.mu.Lock()
		g.gathered[i] = len(evs)
		g.mu.Unlock()
		return evs
	})
}

func (g *gatherStore) Append(ctx context.Context, evs []trail.Event) ([]trail.Result, error) {
	g.mu.Lock()
	g.appended = append(g.appended, len(evs))
	g.mu.Unlock()
	g.hold()
	return g.Store.Append(ctx, evs)
}

// hold holds the first append until the test releases it.
func (g *gatherStore) hold() {
	g.held.Do(func() {
		close(g.entered)
		<-g.release
	})
}

// TestAuditGroupGathersWhileWaiting: on a store whose writers wait for their
// turn, the reads that queue while an audit group waits for its turn join
// that group when it gets it: one append of all of them, not one for the
// first read and another, after it, for the rest.
func TestAuditGroupGathersWhileWaiting(t *testing.T) {
	f := newGroupFixture(t, 0, 0)
	st, ok := f.inner.(*trailsqlite.Store)
	if !ok {
		t.Fatalf("fixture store is %T", f.inner)
	}
	g := &gatherStore{Store: st, entered: make(chan struct{}), release: make(chan struct{})}
	srv, err := New(Config{Store: g, Keys: f.srv.cfg.Keys, RateLimit: -1, Logger: slog.New(slog.DiscardHandler), AuditAppends: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	f.srv = srv
	const k = 5
	done := make(chan readResult, k)
	var wg sync.WaitGroup
	wg.Go(func() { done <- f.read(context.Background(), 0) })
	<-g.entered
	for i := 1; i < k; i++ {
		wg.Go(func() { done <- f.read(context.Background(), i) })
	}
	for {
		if n, _ := queuedReads(srv); n == k-1 {
			break
		}
		runtime.Gosched()
	}
	close(g.release)
	wg.Wait()
	close(done)
	for r := range done {
		if r.code != 200 || r.panicked {
			t.Fatalf("read %d: %d (panicked %v)", r.i, r.code, r.panicked)
		}
	}
	if len(g.gathered) != 1 || g.gathered[0] != k || len(g.appended) != 0 {
		t.Fatalf("audit appends: gathered %v, plain %v; want one gathered append of %d", g.gathered, g.appended, k)
	}
	for i, n := range f.auditedReads() {
		if n != 1 {
			t.Fatalf("%s audited %d times", i, n)
		}
	}
	if got := len(f.auditedReads()); got != k {
		t.Fatalf("%d reads audited, want %d", got, k)
	}
}

// TestAuditLimit: the audit appends in flight are Config.AuditAppends, else
// what the store says, else one.
func TestAuditLimit(t *testing.T) {
	ctx := context.Background()
	st, err := trailsqlite.Open(ctx, filepath.Join(t.TempDir(), "trail.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ks, err := NewSQLKeyStore(ctx, st.DB(), DialectSQLite)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		store  trail.Store
		config int
		want   int
	}{
		{"sqlite says 1", st, 0, 1},
		{"config overrides the store", st, 3, 3},
		{"a store that says 4", fourAppends{st}, 0, 4},
		{"a store that says nothing", plainAppends{st}, 0, auditAppends},
	} {
		srv, err := New(Config{Store: c.store, Keys: ks, AuditAppends: c.config, Now: time.Now})
		if err != nil {
			t.Fatal(err)
		}
		if got := srv.auditLimit(); got != c.want {
			t.Errorf("%s: %d audit appends in flight, want %d", c.name, got, c.want)
		}
		srv.Close()
	}
}

type fourAppends struct{ trail.Store }

func (fourAppends) ConcurrentAppends() int { return 4 }

type plainAppends struct{ trail.Store }

package trailnats_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/server/trailnats"
	"github.com/trailhq/trail/trailpgx"
)

// freePort returns a loopback port nobody listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startNode runs one embedded JetStream server for the test.
func startNode(t testing.TB) *natsserver.Server {
	t.Helper()
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// cluster is three embedded JetStream servers routed together.
type cluster struct {
	nodes []*natsserver.Server
	urls  []string
}

func startCluster(t testing.TB) *cluster {
	t.Helper()
	ports := []int{freePort(t), freePort(t), freePort(t)}
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	c := &cluster{}
	for i, p := range ports {
		s, err := natsserver.NewServer(&natsserver.Options{
			ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: -1, JetStream: true,
			StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: natsserver.ClusterOpts{Name: "trail", Host: "127.0.0.1", Port: p},
			Routes:  natsserver.RoutesFromStr(strings.Join(routes, ",")),
		})
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		t.Cleanup(s.Shutdown)
		c.nodes = append(c.nodes, s)
	}
	for _, s := range c.nodes {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatal("nats-server did not start")
		}
		c.urls = append(c.urls, s.ClientURL())
	}
	return c
}

func (c *cluster) url() string { return strings.Join(c.urls, ",") }

// streamLeader returns the node leading stream, waiting for one.
func (c *cluster) streamLeader(t testing.TB, stream string) *natsserver.Server {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range c.nodes {
			if s.Running() && s.JetStreamIsStreamLeader(natsserver.DEFAULT_GLOBAL_ACCOUNT, stream) {
				return s
			}
		}
		time.Sleep(10 * time.Millisecond) // polling the cluster's state
	}
	t.Fatal("no stream leader")
	return nil
}

// connect opens a JetStream context on url (a comma-separated list).
func connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		testenv.Unavailable(t, "NATS at "+url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// setup creates the stream, retrying while a new cluster elects its meta leader.
func setup(t testing.TB, js jetstream.JetStream, cfg trailnats.Config) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := trailnats.Setup(ctx, js, cfg)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("setup: %v", err)
		}
	}
}

// externalNATS is the current nats-server outside the test process:
// TRAIL_NATS_URL (.ci/run starts one), else the machine's 127.0.0.1:4222.
func externalNATS(t testing.TB) string {
	t.Helper()
	url := os.Getenv("TRAIL_NATS_URL")
	if url == "" {
		url = "nats://127.0.0.1:4222"
	}
	nc, err := nats.Connect(url)
	if err != nil {
		testenv.Unavailable(t, "NATS at "+url, err)
	}
	defer nc.Close()
	if err := trailnats.CheckServer(nc); err != nil {
		testenv.Unavailable(t, "nats-server "+trailnats.MinServer+"+ (set TRAIL_NATS_URL)", err)
	}
	return url
}

// pgStore opens a trailpgx store in a fresh schema of the test server.
func pgStore(t testing.TB) (*trailpgx.Store, *pgxpool.Pool, string) {
	t.Helper()
	pool := testenv.PostgresPool(t, 16)
	schema := testenv.FreshSchema(t, pool)
	st, err := trailpgx.New(context.Background(), pool, &trailpgx.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st, pool, schema
}

// storedIDs returns every event ID in schema's events table, with repeats.
func storedIDs(t testing.TB, pool *pgxpool.Pool, schema string) []uuid.UUID {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT id FROM "+pgx.Identifier{schema}.Sanitize()+".events")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// orderStore records, per tenant, the IDs a store newly stored, in commit order.
type orderStore struct {
	trail.Store
	mu     sync.Mutex
	order  map[string][]uuid.UUID
	append func(ctx context.Context, evs []trail.Event) ([]trail.Result, error)
}

func newOrderStore(st trail.Store) *orderStore {
	return &orderStore{Store: st, order: map[string][]uuid.UUID{}}
}

func (o *orderStore) Append(ctx context.Context, evs []trail.Event) ([]trail.Result, error) {
	o.mu.Lock() // commit order is the order of these calls' returns
	defer o.mu.Unlock()
	res, err := o.Store.Append(ctx, evs)
	if err == nil {
		for i, r := range res {
			if !r.Duplicate {
				o.order[evs[i].Tenant] = append(o.order[evs[i].Tenant], r.ID)
			}
		}
	}
	return res, err
}

// load publishes events for tenants, one producer per tenant, each batch
// retried until acknowledged, as a client retries a 503.
type load struct {
	mu    sync.Mutex
	sent  map[uuid.UUID]bool     // published at least once
	acked map[uuid.UUID]bool     // acknowledged
	order map[string][]uuid.UUID // per tenant, in publish order
	batch map[uuid.UUID]int      // the event's batch, counted per tenant
	errs  int
}

func newLoad() *load {
	return &load{sent: map[uuid.UUID]bool{}, acked: map[uuid.UUID]bool{}, order: map[string][]uuid.UUID{}, batch: map[uuid.UUID]int{}}
}

// run publishes n events per tenant in batches of batch through pub,
// calling after(i) once the producer of tenant 0 has i events acknowledged.
func (l *load) run(ctx context.Context, pub *trailnats.Publisher, tenants []string, n, batch int, after func(acked int)) error {
	var wg sync.WaitGroup
	errc := make(chan error, len(tenants))
	for ti, tenant := range tenants {
		wg.Go(func() {
			for i := 0; i < n; i += batch {
				evs := make([]trail.Event, 0, batch)
				for j := i; j < min(i+batch, n); j++ {
					ev := trail.Event{ID: uuid.New(), Tenant: tenant, Action: "doc.update", Actor: trail.Actor{Type: trail.ActorUser, ID: "u" + strconv.Itoa(j)},
						Target: trail.Target{Type: "doc", ID: strconv.Itoa(j)}, OccurredAt: time.Now().UTC(), RecordedAt: time.Now().UTC()}
					if err := ev.Normalize(); err != nil {
						errc <- err
						return
					}
					evs = append(evs, ev)
				}
				l.mu.Lock()
				for _, ev := range evs {
					l.sent[ev.ID] = true
					l.batch[ev.ID] = i / batch
					l.order[tenant] = append(l.order[tenant], ev.ID)
				}
				l.mu.Unlock()
				for {
					if ctx.Err() != nil {
						errc <- ctx.Err()
						return
					}
					pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					_, err := pub.Publish(pctx, evs)
					cancel()
					if err == nil {
						break
					}
					if !errors.Is(err, trailnats.ErrUnavailable) {
						errc <- err
						return
					}
					l.mu.Lock()
					l.errs++
					l.mu.Unlock()
				}
				l.mu.Lock()
				for _, ev := range evs {
					l.acked[ev.ID] = true
				}
				l.mu.Unlock()
				if ti == 0 && after != nil {
					after(i + len(evs))
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// waitStored waits until the store holds every acknowledged event.
func waitStored(t testing.TB, l *load, pool *pgxpool.Pool, schema string, timeout time.Duration) []uuid.UUID {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ids := storedIDs(t, pool, schema)
		have := map[uuid.UUID]bool{}
		for _, id := range ids {
			have[id] = true
		}
		missing := 0
		for id := range l.acked {
			if !have[id] {
				missing++
			}
		}
		if missing == 0 {
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %d acknowledged events still not stored", timeout, missing)
		}
		time.Sleep(50 * time.Millisecond) // polling the store's state
	}
}

// check counts acknowledged-missing, duplicated and never-sent events.
func (l *load) check(t testing.TB, ids []uuid.UUID) {
	t.Helper()
	seen := map[uuid.UUID]int{}
	for _, id := range ids {
		seen[id]++
	}
	missing, dup, never := 0, 0, 0
	for id := range l.acked {
		if seen[id] == 0 {
			missing++
		}
	}
	for id, n := range seen {
		if n > 1 {
			dup += n - 1
		}
		if !l.sent[id] {
			never++
		}
	}
	t.Logf("acknowledged %d, stored %d, publish retries %d: acknowledged-missing %d, duplicated %d, never-sent %d",
		len(l.acked), len(ids), l.errs, missing, dup, never)
	if missing != 0 || dup != 0 || never != 0 {
		t.Fatalf("acknowledged-missing %d, duplicated %d, never-sent %d: want all 0", missing, dup, never)
	}
}

// checkOrder fails unless each tenant's events were stored in publish
// order: across requests and inside each one (a request's events of a
// partition are one atomic batch, so a stream leader failover mid-publish
// cannot store part of it before the rest).
func (l *load) checkOrder(t testing.TB, o *orderStore) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	across, inBatch, pairs := 0, 0, 0
	var first string
	for tenant, stored := range o.order {
		pos := map[uuid.UUID]int{}
		for i, id := range l.order[tenant] {
			pos[id] = i
		}
		for i := 1; i < len(stored); i++ {
			a, b := stored[i-1], stored[i]
			pairs++
			switch {
			case l.batch[b] < l.batch[a]:
				across++
				first = cmp.Or(first, fmt.Sprintf("tenant %s: event %d (request %d) stored after event %d (request %d)", tenant, pos[b], l.batch[b], pos[a], l.batch[a]))
			case pos[b] < pos[a]:
				inBatch++
				first = cmp.Or(first, fmt.Sprintf("tenant %s: event %d stored after event %d of the same request %d", tenant, pos[b], pos[a], l.batch[a]))
			}
		}
	}
	t.Logf("%d consecutive stored pairs: %d reordered across requests, %d inside one request", pairs, across, inBatch)
	if first != "" {
		t.Fatalf("stored out of publish order (first: %s): want 0 reordered pairs", first)
	}
}

func tenants(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "t" + strconv.Itoa(i)
	}
	return out
}

// newEvent returns a normalized event of tenant.
func newEvent(t testing.TB, tenant string, j int) trail.Event {
	t.Helper()
	ev := trail.Event{ID: uuid.New(), Tenant: tenant, Action: "doc.update", Actor: trail.Actor{Type: trail.ActorUser, ID: "u" + strconv.Itoa(j)},
		Target: trail.Target{Type: "doc", ID: strconv.Itoa(j)}, OccurredAt: time.Now().UTC(), RecordedAt: time.Now().UTC()}
	if err := ev.Normalize(); err != nil {
		t.Fatal(err)
	}
	return ev
}

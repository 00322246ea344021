package trailnats_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/server/trailnats"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailseal"
)

// The issue-16 numbers, side by side in one run:
//
//	go test ./server/trailnats -run '^$' -bench . -benchtime 1x
//
// Each sub-benchmark does its whole workload once per iteration and
// reports events/s (and the seal lag's figures); -benchtime 1x is one run.
// PostgreSQL is a throwaway cluster of the benchmark's own (fsync off), so
// that its processes' CPU per event (pg-cpu-us/event) can be read; cpu-us/event
// is this process: the server or sinks, the bench's clients and the
// embedded nats-server(s).

const (
	benchHTTPEvents  = 40000 // events posted per HTTP ingest run
	benchHTTPClients = 8     // concurrent clients
	benchHTTPBatch   = 100   // events per POST
	benchSinkEvents  = 60000 // events a sink run drains
	benchTenants     = 64
	benchPartitions  = 16
)

// benchEvents returns n normalized events over benchTenants tenants.
func benchEvents(b *testing.B, n int) []trail.Event {
	evs := make([]trail.Event, n)
	for i := range evs {
		evs[i] = newEvent(b, "t"+strconv.Itoa(i%benchTenants), i)
		evs[i].Description = "benchmark event of a realistic size: a document was updated by its owner"
		evs[i].Metadata = map[string]any{"plan": "pro", "seats": json.Number("12"), "region": "eu-west-1"}
	}
	return evs
}

// BenchmarkHTTPIngest: POST /v1/events (100 events each, 8 clients) into
// PostgreSQL directly and through JetStream (R1 one node, R3 three nodes in
// this process), with no sink running.
func BenchmarkHTTPIngest(b *testing.B) {
	pg := startPGCluster(b)
	b.Run("postgres", func(b *testing.B) {
		st, _, _ := pgStoreOn(b, pg)
		benchHTTP(b, st, pg)
	})
	for _, r := range []int{1, 3} {
		b.Run(fmt.Sprintf("jetstream-R%d", r), func(b *testing.B) {
			url := ""
			if r == 1 {
				url = startNode(b).ClientURL()
			} else {
				url = startCluster(b).url()
			}
			_, js := connect(b, url)
			cfg := trailnats.Config{Partitions: benchPartitions, Replicas: r}
			setup(b, js, cfg)
			st, _, _ := pgStoreOn(b, pg) // reads only
			benchHTTP(b, &trailnats.Store{Publisher: trailnats.NewPublisher(js, cfg), Read: st}, pg)
		})
	}
}

func benchHTTP(b *testing.B, st trail.Store, pg *pgCluster) {
	ctx := context.Background()
	keys, err := trailsqlite.Open(ctx, filepath.Join(b.TempDir(), "keys.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer keys.Close()
	ks, err := trailserver.NewSQLKeyStore(ctx, keys.DB(), trailserver.DialectSQLite)
	if err != nil {
		b.Fatal(err)
	}
	_, secret, err := trailserver.CreateKey(ctx, ks, trailserver.NewKeyRequest{All: true, Role: trailserver.RoleIngest}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	srv, err := trailserver.New(trailserver.Config{Store: st, Keys: ks, RateLimit: -1, TailPoll: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchHTTPClients}}
	b.ResetTimer()
	var total, cpu, pgCPU time.Duration
	for range b.N {
		b.StopTimer()
		bodies := make([][]byte, 0, benchHTTPEvents/benchHTTPBatch)
		evs := benchEvents(b, benchHTTPEvents)
		for i := 0; i < len(evs); i += benchHTTPBatch {
			raw := make([]map[string]any, 0, benchHTTPBatch)
			for _, ev := range evs[i : i+benchHTTPBatch] {
				raw = append(raw, map[string]any{"id": ev.ID, "tenant": ev.Tenant, "action": ev.Action, "actor": map[string]any{"type": ev.Actor.Type, "id": ev.Actor.ID},
					"target": map[string]any{"type": ev.Target.Type, "id": ev.Target.ID}, "description": ev.Description, "metadata": ev.Metadata})
			}
			body, _ := json.Marshal(raw)
			bodies = append(bodies, body)
		}
		b.StartTimer()
		t0, c0, p0 := time.Now(), testenv.ProcessCPU(), pg.cpu(b)
		var next atomic.Int64
		var wg sync.WaitGroup
		for range benchHTTPClients {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= len(bodies) {
						return
					}
					req, _ := http.NewRequest("POST", ts.URL+"/v1/events", bytes.NewReader(bodies[i]))
					req.Header.Set("Authorization", "Bearer "+secret)
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		}
		wg.Wait()
		total += time.Since(t0)
		cpu += testenv.ProcessCPU() - c0
		pgCPU += pg.cpu(b) - p0
	}
	b.ReportMetric(float64(b.N*benchHTTPEvents)/total.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*benchHTTPEvents), "cpu-us/event")
	b.ReportMetric(float64(pgCPU.Microseconds())/float64(b.N*benchHTTPEvents), "pg-cpu-us/event")
}

// prefill puts n events on a fresh stream and returns the stream's config.
func prefill(b *testing.B, js jetstream.JetStream, n int) trailnats.Config {
	stream, subject := uniqueStream()
	cfg := trailnats.Config{Stream: stream, Subject: subject, Partitions: benchPartitions}
	setup(b, js, cfg)
	pub := trailnats.NewPublisher(js, cfg)
	evs := benchEvents(b, n)
	for i := 0; i < n; i += 1000 {
		if _, err := pub.Publish(context.Background(), evs[i:min(i+1000, n)]); err != nil {
			b.Fatal(err)
		}
	}
	return cfg
}

// BenchmarkSink: a backlog of 60,000 events on the stream drained into a
// fresh PostgreSQL schema by one and by two sinks (in this process), beside
// the store's own Append of the same events in 500-event batches and a raw
// COPY of them into a table with a primary key only.
func BenchmarkSink(b *testing.B) {
	pg := startPGCluster(b)
	node := startNode(b)
	_, js := connect(b, node.ClientURL())
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("sinks-%d", n), func(b *testing.B) {
			var total, cpu, pgCPU time.Duration
			for range b.N {
				b.StopTimer()
				cfg := prefill(b, js, benchSinkEvents)
				st, pool, _ := pgStoreOn(b, pg)
				b.StartTimer()
				t0, c0, p0 := time.Now(), testenv.ProcessCPU(), pg.cpu(b)
				ctx, cancel := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				for range n {
					wg.Go(func() { trailnats.NewSink(js, st, trailnats.SinkConfig{Config: cfg}).Run(ctx) })
				}
				for countEvents(b, pool, st.Schema()) < benchSinkEvents {
					time.Sleep(5 * time.Millisecond) // polling the store's state
				}
				total += time.Since(t0)
				cpu += testenv.ProcessCPU() - c0
				pgCPU += pg.cpu(b) - p0
				cancel()
				wg.Wait()
			}
			b.ReportMetric(float64(b.N*benchSinkEvents)/total.Seconds(), "events/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*benchSinkEvents), "cpu-us/event")
			b.ReportMetric(float64(pgCPU.Microseconds())/float64(b.N*benchSinkEvents), "pg-cpu-us/event")
		})
	}
	b.Run("store-append", func(b *testing.B) {
		var total, pgCPU time.Duration
		for range b.N {
			b.StopTimer()
			evs := benchEvents(b, benchSinkEvents)
			st, _, _ := pgStoreOn(b, pg)
			b.StartTimer()
			t0, p0 := time.Now(), pg.cpu(b)
			for i := 0; i < len(evs); i += 500 {
				if _, err := st.Append(context.Background(), evs[i:i+500]); err != nil {
					b.Fatal(err)
				}
			}
			total += time.Since(t0)
			pgCPU += pg.cpu(b) - p0
		}
		b.ReportMetric(float64(b.N*benchSinkEvents)/total.Seconds(), "events/s")
		b.ReportMetric(float64(pgCPU.Microseconds())/float64(b.N*benchSinkEvents), "pg-cpu-us/event")
	})
	b.Run("raw-copy", func(b *testing.B) {
		var total, pgCPU time.Duration
		for range b.N {
			b.StopTimer()
			evs := benchEvents(b, benchSinkEvents)
			_, pool, schema := pgStoreOn(b, pg)
			tbl := pgx.Identifier{schema, "raw"}
			if _, err := pool.Exec(context.Background(), "CREATE TABLE "+tbl.Sanitize()+
				" (id uuid PRIMARY KEY, tenant text NOT NULL, occurred_at timestamptz NOT NULL, recorded_at timestamptz NOT NULL, body jsonb NOT NULL)"); err != nil {
				b.Fatal(err)
			}
			rows := make([][]any, len(evs))
			for i := range evs {
				body, _ := json.Marshal(&evs[i])
				rows[i] = []any{evs[i].ID, evs[i].Tenant, evs[i].OccurredAt, evs[i].RecordedAt, string(body)}
			}
			b.StartTimer()
			t0, p0 := time.Now(), pg.cpu(b)
			if _, err := pool.CopyFrom(context.Background(), tbl, []string{"id", "tenant", "occurred_at", "recorded_at", "body"}, pgx.CopyFromRows(rows)); err != nil {
				b.Fatal(err)
			}
			total += time.Since(t0)
			pgCPU += pg.cpu(b) - p0
		}
		b.ReportMetric(float64(b.N*benchSinkEvents)/total.Seconds(), "events/s")
		b.ReportMetric(float64(pgCPU.Microseconds())/float64(b.N*benchSinkEvents), "pg-cpu-us/event")
	})
}

func countEvents(b *testing.B, pool interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, schema string) int {
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM "+pgx.Identifier{schema}.Sanitize()+".events").Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkSealBehindSink: one sink drains a 60,000-event backlog at full
// speed while the sealer runs as trail serve runs it (250 ms poll, 10 s /
// 1,000-event checkpoints). Reported: the sink's events/s, the sealed
// events/s over the same time, the most events waiting to be sealed
// (sampled every 50 ms) and how long sealing went on after the sink had
// stored the last event (seal-drain-ms).
func BenchmarkSealBehindSink(b *testing.B) {
	pg := startPGCluster(b)
	node := startNode(b)
	_, js := connect(b, node.ClientURL())
	for range b.N {
		b.StopTimer()
		cfg := prefill(b, js, benchSinkEvents)
		st, pool, schema := pgStoreOn(b, pg)
		skey, _, err := trailseal.GenerateSigningKey("bench.example")
		if err != nil {
			b.Fatal(err)
		}
		signer, _, err := trailseal.ParseSigningKey(skey)
		if err != nil {
			b.Fatal(err)
		}
		var sealed atomic.Int64
		sl, err := trailseal.NewSealer(st, &trailseal.Config{Signer: signer, Origin: "bench.example", PollInterval: 250 * time.Millisecond,
			CheckpointInterval: 10 * time.Second, CheckpointEvents: 1000, OnStep: func(s trailseal.Stats) { sealed.Add(int64(s.Sealed)) }})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { sl.Run(ctx) })
		t0 := time.Now()
		wg.Go(func() { trailnats.NewSink(js, st, trailnats.SinkConfig{Config: cfg}).Run(ctx) })
		pending := func() int {
			var n int
			if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM "+pgx.Identifier{schema}.Sanitize()+".seal_pending").Scan(&n); err != nil {
				b.Fatal(err)
			}
			return n
		}
		maxPending := 0
		for countEvents(b, pool, schema) < benchSinkEvents {
			maxPending = max(maxPending, pending())
			time.Sleep(50 * time.Millisecond) // sampling
		}
		sinkDur := time.Since(t0)
		sealedDuringSink := sealed.Load()
		t1 := time.Now()
		for pending() > 0 {
			time.Sleep(20 * time.Millisecond) // polling the seal queue
		}
		drain := time.Since(t1)
		cancel()
		wg.Wait()
		b.ReportMetric(float64(benchSinkEvents)/sinkDur.Seconds(), "sink-events/s")
		b.ReportMetric(float64(sealedDuringSink)/sinkDur.Seconds(), "sealed-events/s")
		b.ReportMetric(float64(maxPending), "max-pending")
		b.ReportMetric(float64(drain.Milliseconds()), "seal-drain-ms")
	}
}

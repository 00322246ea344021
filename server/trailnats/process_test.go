package trailnats_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailhq/trail/internal/testenv"
)

var (
	trailOnce sync.Once
	trailBin  string
	trailErr  error
)

// buildTrail builds the trail command once per test binary.
func buildTrail(t testing.TB) string {
	t.Helper()
	trailOnce.Do(func() {
		dir, err := os.MkdirTemp("", "trailnats-bin-")
		if err != nil {
			trailErr = err
			return
		}
		trailBin = filepath.Join(dir, "trail")
		out, err := exec.Command("go", "build", "-o", trailBin, "github.com/trailhq/trail/cmd/trail").CombinedOutput()
		if err != nil {
			trailErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if trailErr != nil {
		t.Fatal(trailErr)
	}
	return trailBin
}

// freshDB creates a database on the test server for t and returns its DSN
// and a pool on it; it is dropped at the end of t.
func freshDB(t testing.TB, base string) (string, *pgxpool.Pool) {
	t.Helper()
	admin, err := pgx.Connect(context.Background(), base)
	if err != nil {
		testenv.Unavailable(t, "PostgreSQL", err)
	}
	defer admin.Close(context.Background())
	var b [6]byte
	rand.Read(b[:])
	name := "trailnats_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		t.Fatal(err)
	}
	dsn := fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, name)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pool.Close()
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			t.Errorf("drop database: %v", err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database: %v", err)
		}
	})
	return dsn, pool
}

// sinkProc is a `trail sink` child process.
type sinkProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	out  strings.Builder
	mu   sync.Mutex
}

// startSink starts `trail sink` and waits for its start line.
func startSink(t testing.TB, natsURL, dsn string, partitions int, extra ...string) *sinkProc {
	t.Helper()
	args := append([]string{"sink", "--nats", natsURL, "--postgres", dsn, "--nats-partitions", strconv.Itoa(partitions),
		"--batch", "100", "--ack-wait", "1s", "--pinned-ttl", "2s"}, extra...)
	p := &sinkProc{cmd: exec.Command(buildTrail(t), args...), done: make(chan struct{})}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = &lockedWriter{p: p}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		first := true
		for sc.Scan() {
			p.write(sc.Text() + "\n")
			if first {
				started <- strings.HasPrefix(sc.Text(), "Trail sink:")
				first = false
			}
		}
		if first {
			started <- false
		}
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill(); <-p.done })
	if !<-started {
		<-p.done
		t.Fatalf("trail sink did not start:\n%s", p.output())
	}
	return p
}

type lockedWriter struct{ p *sinkProc }

func (w *lockedWriter) Write(b []byte) (int, error) { w.p.write(string(b)); return len(b), nil }

func (p *sinkProc) write(s string) { p.mu.Lock(); p.out.WriteString(s); p.mu.Unlock() }
func (p *sinkProc) output() string { p.mu.Lock(); defer p.mu.Unlock(); return p.out.String() }
func (p *sinkProc) kill()          { p.cmd.Process.Signal(syscall.SIGKILL) }

// storedCount counts the rows of the events table (0 before the first sink migrated).
func storedCount(t testing.TB, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM trail.events").Scan(&n); err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return 0
		}
		t.Fatal(err)
	}
	return n
}

// waitCount waits until at least n events are stored.
func waitCount(t testing.TB, pool *pgxpool.Pool, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for storedCount(t, pool) < n {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: fewer than %d events stored", timeout, n)
		}
		time.Sleep(20 * time.Millisecond) // polling the store's state
	}
}

// checkPendingOrder fails unless each tenant's events were stored (their
// seal queue position, taken at insert) in publish order. No sealer runs.
func (l *load) checkPendingOrder(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT event_id, tenant FROM trail.seal_pending ORDER BY pos")
	if err != nil {
		t.Fatal(err)
	}
	o := &orderStore{order: map[string][]uuid.UUID{}}
	for rows.Next() {
		var id uuid.UUID
		var tenant string
		if err := rows.Scan(&id, &tenant); err != nil {
			t.Fatal(err)
		}
		o.order[tenant] = append(o.order[tenant], id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	l.checkOrder(t, o)
}

// natsTargets runs f on the in-process 3-node cluster (R3) and on the
// external server (TRAIL_NATS_URL or 127.0.0.1:4222, when 2.11+).
func natsTargets(t *testing.T, f func(t *testing.T, url string, replicas int)) {
	t.Run("cluster-R3", func(t *testing.T) { f(t, startCluster(t).url(), 3) })
	t.Run("external", func(t *testing.T) { f(t, externalNATS(t), 1) })
}

// uniqueStream keeps tests on a shared server apart.
func uniqueStream() (stream, subject string) {
	var b [4]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return "TRAIL_TEST_" + strings.ToUpper(h), "trailtest" + h
}

// TestMain removes the trail binary buildTrail made.
func TestMain(m *testing.M) {
	code := m.Run()
	if trailBin != "" {
		os.RemoveAll(filepath.Dir(trailBin))
	}
	os.Exit(code)
}

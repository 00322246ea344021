package trailnats_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/server/trailnats"
	"github.com/trailhq/trail/trailpgx"
)

// pgCluster is a throwaway PostgreSQL cluster of the test's own, so that
// stopping it touches nobody else.
type pgCluster struct {
	dir, bin string
	port     int
	cred     *syscall.Credential
}

func startPGCluster(t testing.TB) *pgCluster {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		testenv.Unavailable(t, "PostgreSQL binaries (initdb)", fmt.Errorf("none under /usr/lib/postgresql"))
	}
	c := &pgCluster{dir: t.TempDir(), bin: filepath.Dir(bins[len(bins)-1]), port: freePort(t)}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			testenv.Unavailable(t, "the postgres user (initdb refuses root)", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		for _, d := range []string{c.dir, filepath.Dir(c.dir)} {
			os.Chown(d, uid, gid)
		}
	}
	c.run(t, "initdb", "-D", c.dir+"/data", "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
	c.start(t)
	t.Cleanup(func() { c.pgctl("stop", "-m", "immediate", "-w") })
	return c
}

func (c *pgCluster) run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := c.cmd(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
}

func (c *pgCluster) cmd(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd
}

func (c *pgCluster) pgctl(args ...string) ([]byte, error) {
	return c.cmd("pg_ctl", append([]string{"-D", c.dir + "/data"}, args...)...).CombinedOutput()
}

func (c *pgCluster) start(t testing.TB) {
	t.Helper()
	if out, err := c.pgctl("-l", c.dir+"/log", "-w", "-o",
		fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off", c.port, c.dir), "start"); err != nil {
		t.Fatalf("pg_ctl start: %v\n%s", err, out)
	}
}

func (c *pgCluster) stop(t testing.TB) {
	t.Helper()
	if out, err := c.pgctl("stop", "-m", "immediate", "-w"); err != nil {
		t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

func (c *pgCluster) dsn() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// TestPostgresDownWhileIngesting: the sinks' PostgreSQL is stopped for
// 30 s while producers keep publishing; JetStream keeps acknowledging,
// the events wait in the stream, and once PostgreSQL is back the sinks
// drain them: nothing acknowledged is lost, duplicated or made up, each
// tenant's events in publish order.
func TestPostgresDownWhileIngesting(t *testing.T) {
	if testing.Short() {
		t.Skip("stops PostgreSQL for 30 s")
	}
	natsTargets(t, func(t *testing.T, url string, replicas int) {
		pg := startPGCluster(t)
		dsn, pool := freshDB(t, pg.dsn())
		_, js := connect(t, url)
		stream, subject := uniqueStream()
		cfg := trailnats.Config{Stream: stream, Subject: subject, Partitions: 4, Replicas: replicas}
		setup(t, js, cfg)
		t.Cleanup(func() { js.DeleteStream(context.Background(), stream) })
		flags := []string{"--nats-stream", stream, "--nats-subject", subject, "--nats-replicas", strconv.Itoa(replicas)}
		sinks := []*sinkProc{startSink(t, url, dsn, 4, flags...), startSink(t, url, dsn, 4, flags...)}
		pub := trailnats.NewPublisher(js, cfg)
		l := newLoad()
		const perTenant, nTenants = 1000, 8
		down, stopped := make(chan struct{}), make(chan struct{})
		var once, wait sync.Once
		var wg sync.WaitGroup
		var loadErr error
		wg.Go(func() {
			loadErr = l.run(context.Background(), pub, tenants(nTenants), perTenant, 10, func(acked int) {
				if acked >= perTenant/4 {
					once.Do(func() { close(down) })
				}
				if acked >= perTenant/2 {
					wait.Do(func() { <-stopped }) // tenant 0's second half is published during the outage
				}
			})
		})
		<-down
		pg.stop(t)
		close(stopped)
		t.Log("PostgreSQL stopped")
		time.Sleep(30 * time.Second) // the outage's length is the fault itself, not a wait for state
		wg.Wait()
		if loadErr != nil {
			t.Fatal(loadErr)
		}
		info, err := js.Stream(context.Background(), stream)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("every event acknowledged by JetStream during the outage: %d messages in the stream", info.CachedInfo().State.Msgs)
		pg.start(t)
		t.Log("PostgreSQL started again")
		l.check(t, waitStored(t, l, pool, "trail", 2*time.Minute))
		l.checkPendingOrder(t, pool)
		// Either sink may hold every partition the outage found with a batch.
		if out := sinks[0].output() + sinks[1].output(); !strings.Contains(out, "storing a batch failed") {
			t.Fatalf("no sink logged a failed store write during the outage:\n%s", out)
		}
	})
}

// cpu returns the CPU time the cluster's processes have used: the
// postmaster with its reaped children, and its live children.
func (c *pgCluster) cpu(t testing.TB) time.Duration {
	t.Helper()
	b, err := os.ReadFile(c.dir + "/data/postmaster.pid")
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.SplitN(string(b), "\n", 2)[0]
	ticks := 0
	stat := func(p string) []string {
		b, err := os.ReadFile("/proc/" + p + "/stat")
		if err != nil {
			return nil
		}
		s := string(b)
		return strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 (state) on
	}
	field := func(f []string, n int) int { v, _ := strconv.Atoi(f[n-3]); return v }
	if f := stat(pid); f != nil {
		ticks += field(f, 14) + field(f, 15) + field(f, 16) + field(f, 17)
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if f := stat(p.Name()); f != nil && f[1] == pid {
			ticks += field(f, 14) + field(f, 15)
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ 100
}

// pgStoreOn opens a trailpgx store in a fresh schema of c.
func pgStoreOn(t testing.TB, c *pgCluster) (*trailpgx.Store, *pgxpool.Pool, string) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), c.dsn())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
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

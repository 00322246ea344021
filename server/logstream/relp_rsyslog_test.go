package logstream

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/server/internal/vgwtest"
)

// startRsyslogRELP starts rsyslogd with imrelp (Debian's rsyslog-relp);
// without the module the test is Unavailable (a failure in CI).
func startRsyslogRELP(t testing.TB) *rsyslog {
	t.Helper()
	if _, err := exec.LookPath("rsyslogd"); err != nil {
		testenv.Unavailable(t, "rsyslogd (apt-get install rsyslog rsyslog-relp)", err)
		return nil
	}
	r := &rsyslog{t: t, dir: t.TempDir(), addr: vgwtest.FreeAddr(t), relp: true}
	// -N1 loads the modules and checks the configuration.
	if out, err := exec.Command("rsyslogd", "-N1", "-f", r.conf()).CombinedOutput(); err != nil {
		if strings.Contains(string(out), "imrelp") {
			testenv.Unavailable(t, "rsyslogd's imrelp module (apt-get install rsyslog-relp)", errors.New(strings.TrimSpace(string(out))))
			return nil
		}
		t.Fatalf("rsyslogd -N1: %v\n%s", err, out)
	}
	r.start()
	t.Cleanup(r.stop)
	return r
}

// background seals and delivers continuously (as the server's loops do)
// until the returned stop is called, so that a receiver can be stopped
// while a batch is in flight.
func (f *fixture) background(t *testing.T) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var errs []error
	wg.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond) // pacing, not synchronisation
		defer tick.Stop()
		for ctx.Err() == nil {
			if _, err := f.sealer.Step(ctx); err != nil && ctx.Err() == nil {
				errs = append(errs, err)
				return
			}
			if err := f.r.Step(ctx); err != nil && ctx.Err() == nil {
				errs = append(errs, err)
				return
			}
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			for _, err := range errs {
				t.Errorf("background delivery: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond (state: a receiver's file, a stream's health) while
// the background loop delivers; the bound only turns a hang into a failure.
func waitFor(t *testing.T, f *fixture, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			var last error
			select {
			case last = <-f.errs:
			default:
			}
			t.Fatalf("%s: not reached (last delivery error: %v)", what, last)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}

// TestSyslogRELPRsyslog is the acknowledged syslog transport against
// Debian's rsyslogd with imrelp: while events are ingested and batches are
// in flight, rsyslogd is stopped (SIGTERM), restarted, then killed
// (SIGKILL) and restarted. Every event arrives, in log order, with no gap;
// a sequence number that arrives twice (a batch re-sent because its answers
// were cut off) is the same event both times.
func TestSyslogRELPRsyslog(t *testing.T) {
	eachStore(t, func(t *testing.T, f *fixture) {
		rs := startRsyslogRELP(t)
		if rs == nil {
			return
		}
		f.step(t)
		s, err := f.m.Create(adminCtx(), Caller{All: true}, CreateRequest{Tenant: "acme", Name: "rsyslog relp",
			Destination: Destination{Type: TypeSyslog, Address: rs.addr, Transport: TransportRELP}, Batching: Batching{MaxEvents: 40, MaxWaitMS: 1}})
		if err != nil {
			t.Fatal(err)
		}
		if s.Destination.Transport != TransportRELP {
			t.Fatalf("transport %q", s.Destination.Transport)
		}
		f.start[s.ID] = f.size(t, "acme")
		rec := ids(f.record(t, "acme", 800))
		stop := f.background(t)
		count := func() int { return len(rs.delivered(t)) }
		outage := func(name string, down func(), at int) {
			// Down while the backlog is being delivered: batches in flight.
			waitFor(t, f, name+": "+strconv.Itoa(at)+" in rsyslog's file", func() bool { return count() >= at })
			down()
			if n := count(); n >= len(rec) {
				t.Fatalf("%s: the backlog was delivered before rsyslogd went down (%d)", name, n)
			}
			rec = append(rec, ids(f.record(t, "acme", 200))...)
			waitFor(t, f, name+": error while rsyslogd is down", func() bool { return f.health(t, s.ID).State == StateError })
			rec = append(rec, ids(f.record(t, "acme", 100))...)
			rs.start()
		}
		outage("SIGTERM", rs.stop, 200)
		rec = append(rec, ids(f.record(t, "acme", 800))...)
		outage("SIGKILL", rs.kill, count()+200)
		waitFor(t, f, "caught up after the restarts", func() bool { return count() >= len(rec) })
		waitFor(t, f, "healthy", func() bool { return f.health(t, s.ID).State == StateHealthy })
		stop()
		want := f.want(t, s, rec)
		got := rs.delivered(t) // fails on a gap, or a re-sent number with another event
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("rsyslog has %d events, want %d in log order", len(got), len(want))
		}
		seqs, _, err := rs.messages()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d events, %d messages in rsyslog's file (%d re-deliveries)", len(want), len(seqs), len(seqs)-1-len(want))
	})
}

package logstream

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/server/internal/vgwtest"
)

// rsyslog is Debian's rsyslogd run in the foreground for one test: imtcp
// (or imrelp) on a free loopback port, every message written raw
// (%rawmsg%) to out.log.
type rsyslog struct {
	t    testing.TB
	dir  string
	addr string
	relp bool
	// tls, with relp: imrelp over TLS with these PEM files.
	tls    *rsyslogTLS
	cmd    *exec.Cmd
	exited chan error
}

func startRsyslog(t testing.TB) *rsyslog {
	t.Helper()
	if _, err := exec.LookPath("rsyslogd"); err != nil {
		testenv.Unavailable(t, "rsyslogd (apt-get install rsyslog)", err)
		return nil
	}
	r := &rsyslog{t: t, dir: t.TempDir(), addr: vgwtest.FreeAddr(t)}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *rsyslog) conf() string {
	_, port, _ := strings.Cut(r.addr, ":")
	input := "imtcp"
	if r.relp {
		// A direct main queue: imrelp answers a message only after omfile
		// wrote it (with the default in-memory queue, "200 OK" means
		// queued, and a SIGKILL loses what the queue held).
		input = "imrelp"
	}
	conf := fmt.Sprintf(`global(workDirectory="%[1]s" maxMessageSize="64k")
module(load="%[3]s"%[5]s)
template(name="raw" type="string" string="%%rawmsg%%\n")
ruleset(name="r") { action(type="omfile" file="%[1]s/out.log" template="raw" flushOnTXEnd="on" asyncWriting="off") }
input(type="%[3]s" port="%[2]s" address="127.0.0.1" ruleset="r"%[4]s)
`, r.dir, port, input, r.tlsParams(), r.tlsLib())
	if r.relp {
		conf = `main_queue(queue.type="direct")` + "\n" + conf
	}
	cf := filepath.Join(r.dir, "rs.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		r.t.Fatal(err)
	}
	return cf
}

// rsyslogTLS is the certificate files of an imrelp input over TLS.
type rsyslogTLS struct{ ca, cert, key string }

func (r *rsyslog) tlsParams() string {
	if r.tls == nil {
		return ""
	}
	return fmt.Sprintf(` tls="on" tls.cacert="%s" tls.mycert="%s" tls.myprivkey="%s"`, r.tls.ca, r.tls.cert, r.tls.key)
}

// tlsLib picks OpenSSL for imrelp over TLS: librelp's GnuTLS driver
// (the default) asks the client for a certificate, which Trail does not
// present.
func (r *rsyslog) tlsLib() string {
	if r.tls == nil {
		return ""
	}
	return ` tls.tlslib="openssl"`
}

func (r *rsyslog) start() {
	cf := r.conf()
	r.cmd = exec.Command("rsyslogd", "-n", "-f", cf, "-i", filepath.Join(r.dir, "pid"))
	r.cmd.Stdout, r.cmd.Stderr = nil, nil
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	exited := make(chan error, 1)
	cmd := r.cmd
	go func() { exited <- cmd.Wait() }()
	r.exited = exited
	// Wait until it listens (or fails to start).
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", r.addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-exited:
			r.cmd = nil
			r.t.Fatalf("rsyslogd exited: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if i == 500 {
			r.t.Fatalf("rsyslogd does not listen on %s: %v", r.addr, err)
		}
	}
}

// stop stops rsyslogd (SIGTERM: it flushes its file) and waits for it.
func (r *rsyslog) stop() { r.signal(syscall.SIGTERM) }

// kill kills rsyslogd (SIGKILL: no goodbye to its clients) and waits for it.
func (r *rsyslog) kill() { r.signal(syscall.SIGKILL) }

func (r *rsyslog) signal(sig os.Signal) {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(sig)
	<-r.exited
	r.cmd = nil
}

var syslogLine = regexp.MustCompile(`^<(\d+)>1 (\S+) (\S+) trail - (\S+) \[trail@32473 stream="([^"]+)" seq="(\d+)"(?: tenant="([^"]*)")?\] (.*)$`)

// messages parses out.log: each line an RFC 5424 message as sent.
func (r *rsyslog) messages() (seqs []int64, recs []Envelope, err error) {
	data, err := os.ReadFile(filepath.Join(r.dir, "out.log"))
	if os.IsNotExist(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	// rsyslogd may be writing: a last line without its newline is not
	// complete yet (omfile can write a line in two writes).
	data = data[:bytes.LastIndexByte(data, '\n')+1]
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		m := syslogLine.FindStringSubmatch(sc.Text())
		if m == nil {
			return nil, nil, fmt.Errorf("not an RFC 5424 message of Trail: %q", sc.Text())
		}
		seq, _ := strconv.ParseInt(m[6], 10, 64)
		var e Envelope
		if err := json.Unmarshal([]byte(m[8]), &e); err != nil {
			return nil, nil, fmt.Errorf("MSG of seq %d: %w", seq, err)
		}
		if e.Seq != seq || (m[4] != e.Event.Action && !e.Test) {
			return nil, nil, fmt.Errorf("structured data %q and record disagree", sc.Text()[:80])
		}
		seqs, recs = append(seqs, seq), append(recs, e)
	}
	return seqs, recs, sc.Err()
}

// delivered is the events rsyslog wrote by sequence number, checking that
// each sequence number arrives in order; a re-sent one (after a
// reconnection) must be the same event.
func (r *rsyslog) delivered(t testing.TB) []string {
	t.Helper()
	seqs, recs, err := r.messages()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i, s := range seqs {
		switch {
		case recs[i].Test:
		case s == int64(len(out))+1:
			out = append(out, recs[i].Event.ID.String())
		case s <= int64(len(out)):
			if out[s-1] != recs[i].Event.ID.String() {
				t.Fatalf("seq %d re-sent with another event", s)
			}
		default:
			t.Fatalf("gap: seq %d after %d", s, len(out))
		}
	}
	return out
}

// TestSyslogRsyslog: a syslog stream to Debian's rsyslogd; rsyslogd is
// stopped during ingest and started again on the same port: every event
// is in its file, in order, with no gap.
func TestSyslogRsyslog(t *testing.T) {
	eachStore(t, func(t *testing.T, f *fixture) {
		rs := startRsyslog(t)
		f.step(t)
		s, err := f.m.Create(adminCtx(), Caller{All: true}, CreateRequest{Tenant: "acme", Name: "rsyslog",
			Destination: Destination{Type: TypeSyslog, Address: rs.addr}, Batching: Batching{MaxEvents: 40, MaxWaitMS: 1}})
		if err != nil {
			t.Fatal(err)
		}
		f.start[s.ID] = f.size(t, "acme")
		rec := ids(f.record(t, "acme", 150))
		f.until(t, "151 in rsyslog's file", func() bool { return len(rs.delivered(t)) >= 151 })

		rs.stop()
		rec = append(rec, ids(f.record(t, "acme", 120))...)
		f.until(t, "error while rsyslogd is down", func() bool { return f.health(t, s.ID).State == StateError })
		rec = append(rec, ids(f.record(t, "acme", 80))...)
		rs.start()
		f.until(t, "caught up after restart", func() bool { return len(rs.delivered(t)) >= 351 })
		want := f.want(t, s, rec)
		got := rs.delivered(t)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("rsyslog has %d events, want %d in log order", len(got), len(want))
		}
		if h := f.health(t, s.ID); h.State != StateHealthy {
			t.Fatalf("health %+v", h)
		}
	})
}

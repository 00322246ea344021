package logstream

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// tlsSyslog is a syslog-over-TLS receiver (RFC 5425 framing: octet
// counting) that keeps each message; its certificate is httptest's.
type tlsSyslog struct {
	ln   net.Listener
	pool *x509.CertPool
	mu   sync.Mutex
	msgs []string
	bad  []string
}

func newTLSSyslog(t *testing.T) *tlsSyslog {
	srv := httptest.NewUnstartedServer(nil) // only for its certificate
	srv.StartTLS()
	cert := srv.TLS.Certificates[0]
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	srv.Close()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	r := &tlsSyslog{ln: ln, pool: pool}
	acceptEach(t, ln, r.serve)
	return r
}

func (r *tlsSyslog) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		n, err := br.ReadString(' ')
		if err != nil {
			return
		}
		size, err := strconv.Atoi(strings.TrimSuffix(n, " "))
		if err != nil || size <= 0 || size > 1<<20 {
			r.mu.Lock()
			r.bad = append(r.bad, "bad frame length "+n)
			r.mu.Unlock()
			return
		}
		msg := make([]byte, size)
		if _, err := io.ReadFull(br, msg); err != nil {
			return
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, string(msg))
		r.mu.Unlock()
	}
}

// TestSyslogTLS: a syslog stream over TLS delivers every event framed by
// octet counting; a receiver whose certificate is not trusted is refused
// at creation with the reason.
func TestSyslogTLS(t *testing.T) {
	f := newFixture(t, onSQLite)
	r := newTLSSyslog(t)
	req := CreateRequest{Tenant: "acme", Destination: Destination{Type: TypeSyslog, Address: r.ln.Addr().String(), TLS: true},
		Batching: Batching{MaxEvents: 25, MaxWaitMS: 1}}
	_, err := f.m.Create(adminCtx(), Caller{All: true}, req)
	var de *DestinationError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: %v", err)
	}
	f.dialer.RootCAs = r.pool
	f.step(t)
	s, err := f.m.Create(adminCtx(), Caller{All: true}, req)
	if err != nil {
		t.Fatal(err)
	}
	f.start[s.ID] = f.size(t, "acme")
	want := f.want(t, &Created{Stream: s.Stream}, ids(f.record(t, "acme", 120)))
	f.until(t, "all over TLS", func() bool { r.mu.Lock(); defer r.mu.Unlock(); return len(r.msgs) >= len(want)+1 })
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bad) > 0 {
		t.Fatal(r.bad)
	}
	for i, id := range want {
		m := syslogLine.FindStringSubmatch(r.msgs[i+1]) // [0] is the test delivery
		if m == nil || m[6] != strconv.Itoa(i+1) || !strings.Contains(m[8], id) {
			t.Fatalf("message %d: %q", i+1, r.msgs[i+1][:min(200, len(r.msgs[i+1]))])
		}
	}
}

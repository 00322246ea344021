package logstream

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// webhookReceiver is an HTTPS receiver that does what a customer's would:
// it verifies every request's signature (any of the Trail-Signature values
// under one of the secrets it knows, over "<timestamp>.<body>", timestamp
// within 5 minutes), and checks the sequence numbers: each batch goes on
// from the last one accepted (a re-sent batch is a duplicate, which must
// carry the same events), so a gap is an error.
type webhookReceiver struct {
	t    testing.TB
	mu   sync.Mutex
	srv  *httptest.Server
	addr string

	secrets []string
	// fail, when > 0, answers that status to the next requests (count in
	// failN, -1 forever).
	failStatus int
	failN      int
	// maxBatch, when > 0, answers 413 to bigger batches.
	maxBatch int

	bySeq    map[int64]string // seq -> event ID
	last     int64
	dups     int
	badSigs  int
	gaps     []string
	requests int
	ndjson   bool
	tests    int
}

func newWebhookReceiver(t testing.TB, secret string) *webhookReceiver {
	w := &webhookReceiver{t: t, secrets: []string{secret}, bySeq: map[int64]string{}}
	w.start("127.0.0.1:0")
	return w
}

func (w *webhookReceiver) start(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		w.t.Fatal(err)
	}
	w.srv = httptest.NewUnstartedServer(http.HandlerFunc(w.serve))
	w.srv.Listener = ln
	w.srv.StartTLS()
	w.addr = ln.Addr().String()
	w.t.Cleanup(w.srv.Close)
}

// stop closes the receiver: connections are refused until restart.
func (w *webhookReceiver) stop() { w.srv.Close() }

// restart listens again on the same address.
func (w *webhookReceiver) restart() { w.start(w.addr) }

func (w *webhookReceiver) url() string { return "https://" + w.addr + "/hook" }

func (w *webhookReceiver) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(w.srv.Certificate())
	return p
}

func (w *webhookReceiver) setSecrets(s ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.secrets = s
}

func (w *webhookReceiver) failNext(status, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.failStatus, w.failN = status, n
}

func (w *webhookReceiver) count() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

func (w *webhookReceiver) serve(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.requests++
	if w.failN != 0 {
		if w.failN > 0 {
			w.failN--
		}
		http.Error(rw, "receiver failing on purpose", w.failStatus)
		return
	}
	if !w.verify(r.Header, body) {
		w.badSigs++
		http.Error(rw, "bad signature", http.StatusUnauthorized)
		return
	}
	var envs []Envelope
	if r.Header.Get("Content-Type") == "application/x-ndjson" {
		w.ndjson = true
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var e Envelope
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				http.Error(rw, err.Error(), 400)
				return
			}
			envs = append(envs, e)
		}
	} else if err := json.Unmarshal(body, &envs); err != nil {
		http.Error(rw, err.Error(), 400)
		return
	}
	if w.maxBatch > 0 && len(envs) > w.maxBatch {
		http.Error(rw, "too large", http.StatusRequestEntityTooLarge)
		return
	}
	if first, last := envs[0].Seq, envs[len(envs)-1].Seq; r.Header.Get(HeaderSequence) != fmt.Sprintf("%d-%d", first, last) {
		w.gaps = append(w.gaps, "Trail-Sequence header "+r.Header.Get(HeaderSequence)+" does not match the body")
	}
	for _, e := range envs {
		switch {
		case e.Test:
			w.tests++
		case e.Seq <= w.last:
			w.dups++
			if w.bySeq[e.Seq] != e.Event.ID.String() {
				w.gaps = append(w.gaps, fmt.Sprintf("seq %d re-sent with another event", e.Seq))
			}
		case e.Seq != w.last+1:
			w.gaps = append(w.gaps, fmt.Sprintf("gap: got %d after %d", e.Seq, w.last))
			w.last = e.Seq
			w.bySeq[e.Seq] = e.Event.ID.String()
		default:
			w.last = e.Seq
			w.bySeq[e.Seq] = e.Event.ID.String()
		}
	}
	rw.WriteHeader(http.StatusNoContent)
}

// verify is the recipe of docs/log-streams.md.
func (w *webhookReceiver) verify(h http.Header, body []byte) bool {
	ts, err := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > 5*time.Minute {
		return false
	}
	for _, sig := range strings.Split(h.Get(HeaderSignature), ",") {
		v, ok := strings.CutPrefix(strings.TrimSpace(sig), "v1=")
		if !ok {
			continue
		}
		for _, s := range w.secrets {
			if hmac.Equal([]byte(v), []byte(Sign(s, ts, body))) {
				return true
			}
		}
	}
	return false
}

// check fails t on any gap, bad signature, or an event delivered that is
// not want (in order).
func (w *webhookReceiver) check(t testing.TB, want []string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.gaps) > 0 {
		t.Errorf("receiver saw %d sequence problems: %v", len(w.gaps), w.gaps[:min(5, len(w.gaps))])
	}
	if w.badSigs > 0 {
		t.Errorf("%d requests with a bad signature", w.badSigs)
	}
	if int(w.last) != len(want) {
		t.Fatalf("receiver has %d events, want %d", w.last, len(want))
	}
	for i, id := range want {
		if got := w.bySeq[int64(i+1)]; got != id {
			t.Fatalf("seq %d is event %s, want %s (order)", i+1, got, id)
		}
	}
}

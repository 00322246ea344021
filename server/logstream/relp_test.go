package logstream

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

type relpGolden struct {
	Name         string `json:"name"`
	In           string `json:"in"`
	Short        bool   `json:"short"`
	Err          string `json:"err"`
	Txnr         int64  `json:"txnr"`
	Cmd          string `json:"cmd"`
	N            int    `json:"n"`
	Code         int    `json:"code"`
	Msg          string `json:"msg"`
	ResponseErr  string `json:"response_err"`
	OffersSyslog bool   `json:"offers_syslog"`
}

func readRELPGolden(t testing.TB) []relpGolden {
	b, err := os.ReadFile(filepath.Join("testdata", "relp", "frames.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []relpGolden
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	return cases
}

// TestRELPFrameGolden parses the frames of testdata/relp/frames.json: the
// answers rsyslogd's imrelp gave (captured from Debian's rsyslogd 8.2302,
// librelp 1.11.0), cut frames, and frames that are not RELP.
func TestRELPFrameGolden(t *testing.T) {
	for _, c := range readRELPGolden(t) {
		t.Run(c.Name, func(t *testing.T) {
			f, n, err := parseRELPFrame([]byte(c.In))
			switch {
			case c.Short:
				if !errors.Is(err, errRELPShort) {
					t.Fatalf("want a short frame, got %+v, %v", f, err)
				}
				return
			case c.Err != "":
				var re *RELPError
				if !errors.As(err, &re) || !strings.Contains(err.Error(), c.Err) {
					t.Fatalf("want an error with %q, got %+v, %v", c.Err, f, err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			want := c.N
			if want == 0 {
				want = len(c.In)
			}
			if f.txnr != c.Txnr || f.cmd != c.Cmd || n != want {
				t.Fatalf("got %d %q (%d bytes), want %d %q (%d bytes)", f.txnr, f.cmd, n, c.Txnr, c.Cmd, want)
			}
			if got := appendRELPFrame(nil, f); string(got) != c.In[:n] {
				t.Fatalf("re-encoded %q", got)
			}
			if f.cmd != "rsp" {
				return
			}
			rsp, err := parseRELPResponse(f.data)
			if c.ResponseErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.ResponseErr) {
					t.Fatalf("want a response error with %q, got %+v, %v", c.ResponseErr, rsp, err)
				}
				return
			}
			if err != nil || rsp.code != c.Code || rsp.msg != c.Msg || relpOffersSyslog(rsp.data) != c.OffersSyslog {
				t.Fatalf("response %+v, %v", rsp, err)
			}
		})
	}
}

// TestRELPOpenGolden: the open command Trail sends, byte for byte.
func TestRELPOpenGolden(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("testdata", "relp", "open.golden"))
	if err != nil {
		t.Fatal(err)
	}
	if got := appendRELPFrame(nil, relpFrame{txnr: 1, cmd: "open", data: []byte(relpOffers)}); !bytes.Equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

// FuzzRELPFrame: the parser of the receiver's frames never panics; a frame
// it accepts re-encodes to the bytes it took, every proper prefix of those
// is reported short (so the reader waits for more instead of misreading),
// and a response's data parses or is refused without panicking.
func FuzzRELPFrame(f *testing.F) {
	for _, c := range readRELPGolden(f) {
		f.Add([]byte(c.In))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		fr, n, err := parseRELPFrame(in)
		if err != nil {
			var re *RELPError
			if !errors.Is(err, errRELPShort) && !errors.As(err, &re) {
				t.Fatalf("error of another type: %v", err)
			}
			return
		}
		if n < 1 || n > len(in) {
			t.Fatalf("took %d of %d bytes", n, len(in))
		}
		if got := appendRELPFrame(nil, fr); !bytes.Equal(got, in[:n]) {
			t.Fatalf("re-encoded %q, took %q", got, in[:n])
		}
		for i := range n {
			if _, _, err := parseRELPFrame(in[:i]); !errors.Is(err, errRELPShort) {
				t.Fatalf("prefix %q of a frame: %v", in[:i], err)
			}
		}
		if rsp, err := parseRELPResponse(fr.data); err == nil && (rsp.code < 100 || rsp.code > 999) {
			t.Fatalf("response code %d", rsp.code)
		}
		relpOffersSyslog(fr.data)
	})
}

// TestSyslogTransportValidation: destination.transport is relp, relp+tls
// (stored as relp with tls on) or tcp, on syslog only; anything else is a
// ValidationError naming the field (a 400 problem in the API).
func TestSyslogTransportValidation(t *testing.T) {
	for _, c := range []struct {
		d         Destination
		field     string
		transport string
		tls       bool
	}{
		{d: Destination{Type: TypeSyslog, Address: "logs.example:2514", Transport: "relp"}, transport: "relp"},
		{d: Destination{Type: TypeSyslog, Address: "logs.example:2514", Transport: "relp+tls"}, transport: "relp", tls: true},
		{d: Destination{Type: TypeSyslog, Address: "logs.example:6514", Transport: "tcp", TLS: true}, transport: "tcp", tls: true},
		{d: Destination{Type: TypeSyslog, Address: "logs.example:514"}, transport: ""},
		{d: Destination{Type: TypeSyslog, Address: "logs.example:514", Transport: "udp"}, field: "destination.transport"},
		{d: Destination{Type: TypeSyslog, Address: "logs.example:514", Transport: "RELP"}, field: "destination.transport"},
		{d: Destination{Type: TypeWebhook, URL: "https://siem.example/x", Transport: "relp"}, field: "destination.transport"},
	} {
		d := c.d
		err := d.check("")
		var ve *ValidationError
		if c.field != "" {
			if !errors.As(err, &ve) || ve.Field != c.field {
				t.Errorf("%+v: want an error of %s, got %v", c.d, c.field, err)
			}
			continue
		}
		if err != nil || d.Transport != c.transport || d.TLS != c.tls {
			t.Errorf("%+v: got %+v, %v", c.d, d, err)
		}
	}
}

// relpRefuser is a RELP receiver written from the specification that
// answers 500 to every syslog message while refuse is set, and 200 after:
// the refusal path rsyslogd cannot be made to take on demand.
type relpRefuser struct {
	ln     net.Listener
	mu     sync.Mutex
	refuse bool
	msgs   []string // accepted, in order
}

func newRELPRefuser(t *testing.T) *relpRefuser {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relpRefuser{ln: ln, refuse: true}
	acceptEach(t, ln, r.serve)
	return r
}

// acceptEach serves every connection ln accepts with serve, each in a
// goroutine of its own, until the test ends (ln is closed then).
func acceptEach(t *testing.T, ln net.Listener, serve func(net.Conn)) {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
}

func (r *relpRefuser) serve(c net.Conn) {
	defer c.Close()
	rd := &relpReader{r: bufio.NewReader(c)}
	for {
		f, err := rd.next()
		if err != nil {
			return
		}
		var data string
		switch f.cmd {
		case "open":
			data = "200 OK\nrelp_version=0\nrelp_software=trail-test\ncommands=syslog"
		case "close":
			c.Write(appendRELPFrame(nil, relpFrame{txnr: f.txnr, cmd: "rsp"}))
			return
		case "syslog":
			r.mu.Lock()
			if r.refuse {
				data = "500 refused by the test receiver"
			} else {
				data = "200 OK"
				r.msgs = append(r.msgs, string(f.data))
			}
			r.mu.Unlock()
		default:
			c.Write(appendRELPFrame(nil, relpFrame{cmd: "serverclose"}))
			return
		}
		if _, err := c.Write(appendRELPFrame(nil, relpFrame{txnr: f.txnr, cmd: "rsp", data: []byte(data)})); err != nil {
			return
		}
	}
}

// TestSyslogRELPRefused: a receiver that answers 500 keeps the batch
// undelivered (the stream's position and delivered count do not move, its
// health is error with the receiver's reason); once it answers 200 every
// event arrives, numbered from 1, in order.
func TestSyslogRELPRefused(t *testing.T) {
	f := newFixture(t, onSQLite)
	r := newRELPRefuser(t)
	f.step(t)
	req := CreateRequest{Tenant: "acme", Destination: Destination{Type: TypeSyslog, Address: r.ln.Addr().String(), Transport: TransportRELP},
		Batching: Batching{MaxEvents: 25, MaxWaitMS: 1}}
	_, err := f.m.Create(adminCtx(), Caller{All: true}, req)
	var de *DestinationError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "500 refused by the test receiver") {
		t.Fatalf("refused test delivery: %v", err)
	}
	r.mu.Lock()
	r.refuse = false
	r.mu.Unlock()
	s, err := f.m.Create(adminCtx(), Caller{All: true}, req)
	if err != nil {
		t.Fatal(err)
	}
	// A syslog destination has no secret: a rotation says so, with or
	// without a new secret given.
	for _, rr := range []RotateRequest{{}, {Secret: "s3cret"}} {
		var ve *ValidationError
		if _, err := f.m.RotateSecret(adminCtx(), Caller{All: true}, s.ID, rr); !errors.As(err, &ve) || ve.Field != "secret" || !strings.Contains(ve.Reason, "has no secret") {
			t.Fatalf("rotating a syslog stream's secret %+v: %v", rr, err)
		}
	}
	r.mu.Lock()
	r.refuse = true
	r.mu.Unlock()
	f.start[s.ID] = f.size(t, "acme")
	rec := ids(f.record(t, "acme", 60))
	f.until(t, "error", func() bool { return f.health(t, s.ID).State == StateError })
	if h := f.health(t, s.ID); h.Delivered != 0 || !strings.Contains(h.LastError, "500 refused by the test receiver") {
		t.Fatalf("health while refused: %+v", h)
	}
	r.mu.Lock()
	r.refuse = false
	r.mu.Unlock()
	want := f.want(t, s, rec)
	f.until(t, "delivered", func() bool { return f.health(t, s.ID).Delivered == int64(len(want)) })
	r.mu.Lock()
	defer r.mu.Unlock()
	msgs := r.msgs[1:] // [0] is the test delivery
	if len(msgs) != len(want) {
		t.Fatalf("%d messages accepted, want %d", len(msgs), len(want))
	}
	for i, id := range want {
		m := syslogLine.FindStringSubmatch(msgs[i])
		if m == nil || m[6] != strconv.Itoa(i+1) || !strings.Contains(m[8], id) {
			t.Fatalf("message %d: %.200q", i+1, msgs[i])
		}
	}
}

package logstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
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

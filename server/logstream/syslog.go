package logstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/trailhq/trail"
)

// syslogSender writes RFC 5424 messages over TCP or TLS with octet-counting
// framing (RFC 6587 3.4.1, RFC 5425). The connection is kept; a failed
// write closes it and the batch is sent again on a new one.
type syslogSender struct {
	tls      *tls.Config
	timeout  time.Duration
	hostname string
	conn     net.Conn
}

func (s *syslogSender) close() {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

func (s *syslogSender) dial(ctx context.Context, d *Destination) error {
	if s.conn != nil && !s.peerClosed() {
		return nil
	}
	s.close()
	nd := &net.Dialer{Timeout: s.timeout}
	if d.TLS {
		host, _, _ := net.SplitHostPort(d.Address)
		c := s.tls.Clone()
		c.ServerName = host
		td := &tls.Dialer{NetDialer: nd, Config: c}
		conn, err := td.DialContext(ctx, "tcp", d.Address)
		if err != nil {
			return fmt.Errorf("syslog %s (TLS): %w", d.Address, err)
		}
		s.conn = conn
		return nil
	}
	conn, err := nd.DialContext(ctx, "tcp", d.Address)
	if err != nil {
		return fmt.Errorf("syslog %s: %w", d.Address, err)
	}
	s.conn = conn
	return nil
}

// peerClosed reports whether the receiver closed the kept connection (it
// restarted, or timed the connection out): syslog has no acknowledgement,
// and a batch written to a connection the peer already closed would be
// lost, so that connection is replaced first. A receiver never writes to
// us, so any read result but a timeout means the connection is gone.
func (s *syslogSender) peerClosed() bool {
	s.conn.SetReadDeadline(time.Now().Add(time.Millisecond))
	var b [1]byte
	_, err := s.conn.Read(b[:])
	s.conn.SetReadDeadline(time.Time{})
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

func (s *syslogSender) send(ctx context.Context, st *Stream, items []item) error {
	if err := s.dial(ctx, &st.Destination); err != nil {
		return err
	}
	var buf []byte
	for _, it := range items {
		m := SyslogMessage(it.ev, s.hostname, st.ID, it.seq, it.rec)
		buf = strconv.AppendInt(buf, int64(len(m)), 10)
		buf = append(buf, ' ')
		buf = append(buf, m...)
	}
	dl := time.Now().Add(s.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	s.conn.SetWriteDeadline(dl)
	if _, err := s.conn.Write(buf); err != nil {
		s.close()
		return fmt.Errorf("syslog %s: %w", st.Destination.Address, err)
	}
	return nil
}

// SyslogMessage is ev as an RFC 5424 message (without framing): facility
// log audit (13), severity informational (success) or warning (failure,
// denied); APP-NAME trail; MSGID the action (printable ASCII, at most 32);
// structured data [trail@32473 stream="…" seq="…" tenant="…"] (32473 is
// the enterprise number RFC 5612 reserves for documentation); MSG the
// record in the stream's format.
func SyslogMessage(ev *trail.Event, hostname, stream string, seq int64, rec []byte) []byte {
	sev := 6
	if ev.Outcome == trail.OutcomeFailure || ev.Outcome == trail.OutcomeDenied {
		sev = 4
	}
	var b []byte
	b = fmt.Appendf(b, "<%d>1 %s %s trail - %s [trail@32473 stream=\"%s\" seq=\"%d\"", 13*8+sev,
		ev.OccurredAt.UTC().Format("2006-01-02T15:04:05.000000Z"), printable(hostname, 255), printable(ev.Action, 32), sdEscape(stream), seq)
	if ev.Tenant != "" {
		b = fmt.Appendf(b, " tenant=\"%s\"", sdEscape(ev.Tenant))
	}
	b = append(b, "] "...)
	return append(b, rec...)
}

// printable keeps PRINTUSASCII (33-126), at most n bytes; "-" if empty.
func printable(s string, n int) string {
	out := strings.Map(func(r rune) rune {
		if r < 33 || r > 126 {
			return '_'
		}
		return r
	}, s)
	if len(out) > n {
		out = out[:n]
	}
	if out == "" {
		return "-"
	}
	return out
}

func sdEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`)
	return r.Replace(strings.ToValidUTF8(s, "?"))
}

package logstream

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Syslog transports (Destination.Transport).
const (
	// TransportTCP is RFC 5424 with octet-counting framing over TCP or TLS:
	// no acknowledgement, so what the receiver had not processed when it
	// stops may be lost.
	TransportTCP = "tcp"
	// TransportRELP is rsyslog's Reliable Event Logging Protocol: the
	// receiver answers every message, and a batch counts as delivered only
	// when every message of it was answered "200 OK".
	TransportRELP = "relp"
	// TransportRELPTLS is RELP over TLS, the same as TransportRELP with
	// tls on (normalized to that when a stream is created).
	TransportRELPTLS = "relp+tls"
)

// RELP limits. The transaction number wraps after relpMaxTxnr (the
// specification's nine digits) to 1; a response is small ("200 OK", or an
// error text), so a frame over relpMaxFrame from the receiver is an error.
const (
	relpMaxTxnr  = 999_999_999
	relpMaxFrame = 128 << 10
	// relpWindow is how many messages are sent before their answers are
	// awaited (librelp's default window).
	relpWindow = 128
)

// relpFrame is one RELP frame: TXNR SP COMMAND SP DATALEN [SP DATA] LF.
type relpFrame struct {
	txnr int64
	cmd  string
	data []byte
}

// errRELPShort means the bytes so far are a proper prefix of a frame.
var errRELPShort = errors.New("relp: incomplete frame")

// RELPError is a frame the receiver sent that is not RELP, or a response
// that refused a message.
type RELPError struct {
	Reason string
}

func (e *RELPError) Error() string { return "relp: " + e.Reason }

func relpErr(format string, a ...any) error {
	return &RELPError{Reason: fmt.Sprintf(format, a...)}
}

// appendRELPFrame appends f's encoding to b.
func appendRELPFrame(b []byte, f relpFrame) []byte {
	b = strconv.AppendInt(b, f.txnr, 10)
	b = append(b, ' ')
	b = append(b, f.cmd...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(f.data)), 10)
	if len(f.data) > 0 {
		b = append(b, ' ')
		b = append(b, f.data...)
	}
	return append(b, '\n')
}

// parseRELPFrame parses the frame at the start of b and returns it with the
// number of bytes it took: errRELPShort when b is a proper prefix of a
// frame (read more), a *RELPError when b cannot start a frame. The frame's
// data aliases b.
func parseRELPFrame(b []byte) (f relpFrame, n int, err error) {
	// TXNR: 1 to 9 digits, no leading zero except "0" itself.
	num := func(what string, max int) (int64, error) {
		i := n
		for n < len(b) && n-i <= max && b[n] >= '0' && b[n] <= '9' {
			n++
		}
		switch {
		case n-i > max:
			return 0, relpErr("%s longer than %d digits", what, max)
		case n == len(b):
			return 0, errRELPShort
		case n == i:
			return 0, relpErr("%s is not a number", what)
		case b[i] == '0' && n-i > 1:
			return 0, relpErr("%s has a leading zero", what)
		}
		v, _ := strconv.ParseInt(string(b[i:n]), 10, 64)
		return v, nil
	}
	sp := func(what string) error {
		if n == len(b) {
			return errRELPShort
		}
		if b[n] != ' ' {
			return relpErr("%s is not followed by a space", what)
		}
		n++
		return nil
	}
	if f.txnr, err = num("TXNR", 9); err != nil {
		return relpFrame{}, 0, err
	}
	if err = sp("TXNR"); err != nil {
		return relpFrame{}, 0, err
	}
	i := n
	for n < len(b) && n-i <= 32 && (b[n] >= 'a' && b[n] <= 'z' || b[n] >= 'A' && b[n] <= 'Z') {
		n++
	}
	switch {
	case n-i > 32:
		return relpFrame{}, 0, relpErr("command longer than 32 letters")
	case n == len(b):
		return relpFrame{}, 0, errRELPShort
	case n == i:
		return relpFrame{}, 0, relpErr("no command")
	}
	f.cmd = string(b[i:n])
	if err = sp("command"); err != nil {
		return relpFrame{}, 0, err
	}
	size, err := num("DATALEN", 9)
	if err != nil {
		return relpFrame{}, 0, err
	}
	if size > relpMaxFrame {
		return relpFrame{}, 0, relpErr("DATALEN %d over %d", size, relpMaxFrame)
	}
	if size > 0 {
		if err = sp("DATALEN"); err != nil {
			return relpFrame{}, 0, err
		}
		if int64(len(b)-n) < size {
			return relpFrame{}, 0, errRELPShort
		}
		f.data = b[n : n+int(size)]
		n += int(size)
	}
	if n == len(b) {
		return relpFrame{}, 0, errRELPShort
	}
	if b[n] != '\n' {
		return relpFrame{}, 0, relpErr("frame of %d bytes does not end in LF", size)
	}
	return f, n + 1, nil
}

// relpResponse is the data of an rsp frame: RSP-CODE [SP HUMANMSG] [LF
// CMDDATA].
type relpResponse struct {
	code int
	msg  string
	data []byte
}

func parseRELPResponse(b []byte) (relpResponse, error) {
	head, data, _ := bytes.Cut(b, []byte{'\n'})
	codeS, msg, _ := bytes.Cut(head, []byte{' '})
	if len(codeS) != 3 || codeS[0] < '1' || codeS[0] > '9' || codeS[1] < '0' || codeS[1] > '9' || codeS[2] < '0' || codeS[2] > '9' {
		return relpResponse{}, relpErr("response code %q is not three digits", clip(string(codeS)))
	}
	code, _ := strconv.Atoi(string(codeS))
	return relpResponse{code: code, msg: strings.ToValidUTF8(string(msg), "?"), data: data}, nil
}

// relpReader reads frames from a connection.
type relpReader struct {
	r   *bufio.Reader
	buf []byte
}

func (rr *relpReader) next() (relpFrame, error) {
	for {
		f, n, err := parseRELPFrame(rr.buf)
		if err == nil {
			f.data = bytes.Clone(f.data)
			rr.buf = append(rr.buf[:0], rr.buf[n:]...)
			return f, nil
		}
		if !errors.Is(err, errRELPShort) {
			return relpFrame{}, err
		}
		var chunk [4096]byte
		k, err := rr.r.Read(chunk[:])
		rr.buf = append(rr.buf, chunk[:k]...)
		if err != nil && k == 0 {
			return relpFrame{}, err
		}
	}
}

// relpOffers is what Trail offers when it opens a session.
const relpOffers = "relp_version=0\nrelp_software=trail,1,https://github.com/trailhq/trail\ncommands=syslog"

// relpSender sends RFC 5424 messages over RELP (plain or TLS). The session
// is kept between batches; any error closes it, and the batch is sent again
// whole on a new session (a message already answered arrives twice, with
// the same sequence number).
type relpSender struct {
	tls      *tls.Config
	timeout  time.Duration
	hostname string
	conn     net.Conn
	rd       *relpReader
	txnr     int64
}

func (s *relpSender) nextTxnr() int64 {
	s.txnr++
	if s.txnr > relpMaxTxnr {
		s.txnr = 1
	}
	return s.txnr
}

// close ends the session politely when it can (close, answered by rsp) and
// closes the connection.
func (s *relpSender) close() {
	if s.conn == nil {
		return
	}
	s.conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := s.conn.Write(appendRELPFrame(nil, relpFrame{txnr: s.nextTxnr(), cmd: "close"})); err == nil {
		s.rd.next() // its rsp; what it says no longer matters
	}
	s.drop()
}

func (s *relpSender) drop() {
	if s.conn != nil {
		s.conn.Close()
		s.conn, s.rd = nil, nil
	}
}

func (s *relpSender) deadline(ctx context.Context) time.Time {
	dl := time.Now().Add(s.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	return dl
}

// open connects and opens a session, unless the kept one is still open.
func (s *relpSender) open(ctx context.Context, d *Destination) error {
	if s.conn != nil && !s.peerSpoke() {
		return nil
	}
	s.drop()
	nd := &net.Dialer{Timeout: s.timeout}
	var conn net.Conn
	var err error
	if d.TLS {
		host, _, _ := net.SplitHostPort(d.Address)
		c := s.tls.Clone()
		c.ServerName = host
		conn, err = (&tls.Dialer{NetDialer: nd, Config: c}).DialContext(ctx, "tcp", d.Address)
	} else {
		conn, err = nd.DialContext(ctx, "tcp", d.Address)
	}
	if err != nil {
		return err
	}
	s.conn, s.rd, s.txnr = conn, &relpReader{r: bufio.NewReader(conn)}, 0
	conn.SetDeadline(s.deadline(ctx))
	defer conn.SetDeadline(time.Time{})
	txnr := s.nextTxnr()
	if _, err := conn.Write(appendRELPFrame(nil, relpFrame{txnr: txnr, cmd: "open", data: []byte(relpOffers)})); err != nil {
		s.drop()
		return fmt.Errorf("open: %w", err)
	}
	f, err := s.rd.next()
	if err == nil && (f.cmd != "rsp" || f.txnr != txnr) {
		err = relpErr("open answered by %q with TXNR %d", f.cmd, f.txnr)
	}
	var rsp relpResponse
	if err == nil {
		rsp, err = parseRELPResponse(f.data)
	}
	if err == nil && rsp.code != 200 {
		err = relpErr("open refused: %d %s", rsp.code, rsp.msg)
	}
	if err == nil && !relpOffersSyslog(rsp.data) {
		err = relpErr("the receiver does not offer the syslog command")
	}
	if err != nil {
		s.drop()
		return fmt.Errorf("open: %w", err)
	}
	return nil
}

// relpOffersSyslog reports whether an open response's offers include the
// syslog command.
func relpOffersSyslog(offers []byte) bool {
	for line := range strings.SplitSeq(string(offers), "\n") {
		if v, ok := strings.CutPrefix(line, "commands="); ok {
			for c := range strings.SplitSeq(v, ",") {
				if c == "syslog" {
					return true
				}
			}
		}
	}
	return false
}

// peerSpoke reports whether the receiver wrote to the idle session (a
// serverclose before it stopped) or closed it: either way the session is
// over and a new one is opened. A RELP server speaks only to answer.
func (s *relpSender) peerSpoke() bool {
	if len(s.rd.buf) > 0 || s.rd.r.Buffered() > 0 {
		return true
	}
	s.conn.SetReadDeadline(time.Now().Add(time.Millisecond))
	_, err := s.rd.r.Peek(1)
	s.conn.SetReadDeadline(time.Time{})
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

func (s *relpSender) send(ctx context.Context, st *Stream, items []item) error {
	if err := s.sendOnce(ctx, st, items); err != nil {
		s.drop()
		tr := "relp"
		if st.Destination.TLS {
			tr = "relp+tls"
		}
		return fmt.Errorf("%s %s: %w", tr, st.Destination.Address, err)
	}
	return nil
}

// sendOnce sends every message of items, up to relpWindow unanswered at
// once, and returns nil only when each was answered 200.
func (s *relpSender) sendOnce(ctx context.Context, st *Stream, items []item) error {
	if err := s.open(ctx, &st.Destination); err != nil {
		return err
	}
	s.conn.SetDeadline(s.deadline(ctx))
	defer func() {
		if s.conn != nil {
			s.conn.SetDeadline(time.Time{})
		}
	}()
	w := bufio.NewWriterSize(s.conn, 64<<10)
	pending := map[int64]int64{} // txnr -> sequence number
	await := func() error {
		f, err := s.rd.next()
		if err != nil {
			return fmt.Errorf("waiting for %d answers: %w", len(pending), err)
		}
		if f.cmd == "serverclose" {
			return relpErr("the receiver closed the session with %d messages unanswered", len(pending))
		}
		seq, ok := pending[f.txnr]
		if f.cmd != "rsp" || !ok {
			return relpErr("unexpected %q with TXNR %d", f.cmd, f.txnr)
		}
		delete(pending, f.txnr)
		rsp, err := parseRELPResponse(f.data)
		if err != nil {
			return err
		}
		if rsp.code != 200 {
			return relpErr("the receiver refused seq %d: %d %s", seq, rsp.code, clip(rsp.msg))
		}
		return nil
	}
	var frame []byte
	for _, it := range items {
		if len(pending) >= relpWindow {
			if err := w.Flush(); err != nil {
				return err
			}
			if err := await(); err != nil {
				return err
			}
		}
		txnr := s.nextTxnr()
		frame = appendRELPFrame(frame[:0], relpFrame{txnr: txnr, cmd: "syslog", data: SyslogMessage(it.ev, s.hostname, st.ID, it.seq, it.rec)})
		if _, err := w.Write(frame); err != nil {
			return err
		}
		pending[txnr] = it.seq
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for len(pending) > 0 {
		if err := await(); err != nil {
			return err
		}
	}
	return ctx.Err()
}

package trailserver

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Streaming responses — export, live tail, and the UI's export and live
// tail, which run the same handlers — hold a connection, a goroutine and
// their buffers for as long as they run, which may be hours. The server's
// WriteTimeout cannot bound them, so each stream has its own guards:
//
//   - A per-write deadline: every write and flush must reach the socket
//     within Config.StreamWriteTimeout. A client that stops reading fills
//     the socket buffers, the next write misses its deadline, and the stream
//     is closed and counted in trail_streams_closed_unread_total{kind}.
//   - A cap on the streams one key has open at once (Config.StreamsPerKey),
//     its UI sign-ins included (a UI session is its key): one more is
//     refused with 429 and counted in trail_streams_refused_total{kind}.
//
// net/http clears the write deadline once a response is done, so the one a
// stream leaves does not reach the next request on a kept-alive connection.

// Stream defaults.
const (
	DefaultStreamWriteTimeout = 30 * time.Second
	DefaultStreamsPerKey      = 4
)

// streamKind labels a stream in the metrics.
type streamKind int

const (
	kindExport streamKind = iota
	kindTail
	kindUIExport
	kindUITail
	numStreamKinds
)

var streamKindNames = [numStreamKinds]string{"export", "tail", "ui_export", "ui_tail"}

// streamMetrics are the trail_streams_* series, one per kind.
type streamMetrics struct {
	open    [numStreamKinds]atomic.Int64
	unread  [numStreamKinds]atomic.Uint64
	refused [numStreamKinds]atomic.Uint64
}

func (m *streamMetrics) write(w io.Writer) {
	fmt.Fprintln(w, "# HELP trail_streams_open Open streaming responses (export, live tail, and the UI's), by kind.")
	fmt.Fprintln(w, "# TYPE trail_streams_open gauge")
	for k, name := range streamKindNames {
		fmt.Fprintf(w, "trail_streams_open{kind=%q} %d\n", name, m.open[k].Load())
	}
	fmt.Fprintln(w, "# HELP trail_streams_closed_unread_total Streams closed because a write missed its deadline: the client stopped reading.")
	fmt.Fprintln(w, "# TYPE trail_streams_closed_unread_total counter")
	for k, name := range streamKindNames {
		fmt.Fprintf(w, "trail_streams_closed_unread_total{kind=%q} %d\n", name, m.unread[k].Load())
	}
	fmt.Fprintln(w, "# HELP trail_streams_refused_total Streams refused with 429: the key had its most streams open.")
	fmt.Fprintln(w, "# TYPE trail_streams_refused_total counter")
	for k, name := range streamKindNames {
		fmt.Fprintf(w, "trail_streams_refused_total{kind=%q} %d\n", name, m.refused[k].Load())
	}
}

// streamSlots counts each key's open streams. A nil *streamSlots has no cap.
type streamSlots struct {
	max  int
	mu   sync.Mutex
	open map[string]int
}

func newStreamSlots(max int) *streamSlots {
	if max < 0 {
		return nil
	}
	return &streamSlots{max: max, open: map[string]int{}}
}

// acquire takes one of key's slots, or reports that none is free.
func (l *streamSlots) acquire(key string) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key] >= l.max {
		return false
	}
	l.open[key]++
	return true
}

func (l *streamSlots) release(key string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key] <= 1 {
		delete(l.open, key) // the map holds only keys with open streams
		return
	}
	l.open[key]--
}

// stream is one streaming response: an io.Writer over the response that
// moves the write deadline before every write and flush.
type stream struct {
	s    *Server
	kind streamKind
	key  string
	w    http.ResponseWriter
	r    *http.Request
	rc   *http.ResponseController
	// deadline is the one the last write or flush was given; unread is set
	// when one missed it.
	deadline time.Time
	unread   bool
}

// openStream takes one of k's stream slots for a stream of kind, or answers
// 429 and returns nil. The caller defers close.
func (s *Server) openStream(w http.ResponseWriter, r *http.Request, k *Key, kind streamKind) *stream {
	if !s.streams.acquire(k.ID) {
		s.metrics.streams.refused[kind].Add(1)
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(s.cfg.StreamWriteTimeout.Seconds()))))
		writeProblem(w, r, problem(http.StatusTooManyRequests, ProblemRateLimited, "",
			fmt.Sprintf("this key has %d streams (exports and live tails, the UI's included) open, the most it may; close one or retry later", s.cfg.StreamsPerKey)))
		return nil
	}
	s.metrics.streams.open[kind].Add(1)
	return &stream{s: s, kind: kind, key: k.ID, w: w, r: r, rc: http.NewResponseController(w)}
}

// start lifts the server's read deadline before the stream's header is
// written: the connection's background read would end the stream at it.
func (st *stream) start() {
	_ = st.rc.SetReadDeadline(time.Time{})
}

func (st *stream) arm() {
	st.deadline = time.Now().Add(st.s.cfg.StreamWriteTimeout)
	_ = st.rc.SetWriteDeadline(st.deadline)
}

// failed notes whether err is a missed deadline. HTTP/1 reports
// os.ErrDeadlineExceeded; HTTP/2 resets the stream, so the clock decides.
func (st *stream) failed(err error) {
	if err != nil && (errors.Is(err, os.ErrDeadlineExceeded) || !time.Now().Before(st.deadline)) {
		st.unread = true
	}
}

func (st *stream) Write(p []byte) (int, error) {
	st.arm()
	n, err := st.w.Write(p)
	st.failed(err)
	return n, err
}

// flush sends what the response buffers hold to the client.
func (st *stream) flush() error {
	st.arm()
	err := st.rc.Flush()
	st.failed(err)
	return err
}

// close releases the slot and counts an unread stream. What net/http writes
// after the handler returns (the end of a chunked body) gets one more write
// deadline.
func (st *stream) close() {
	st.arm()
	st.s.streams.release(st.key)
	st.s.metrics.streams.open[st.kind].Add(-1)
	if st.unread {
		st.s.metrics.streams.unread[st.kind].Add(1)
		st.s.log.Info("trailserver: closed a stream its client did not read",
			"kind", streamKindNames[st.kind], "key", st.key, "remote", st.r.RemoteAddr, "write_timeout", st.s.cfg.StreamWriteTimeout)
	}
}

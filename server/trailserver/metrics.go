package trailserver

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// metrics is a small Prometheus registry written in the text exposition
// format (version 0.0.4) by hand: a handful of counters and one histogram do
// not justify client_golang's dependency tree in the binary.
type metrics struct {
	start time.Time

	mu       sync.Mutex
	requests map[reqKey]uint64     // trail_http_requests_total{route,code}
	duration map[string]*histogram // trail_http_request_duration_seconds{route}

	eventsCreated   atomic.Uint64
	eventsDuplicate atomic.Uint64
	eventsConflict  atomic.Uint64 // batches refused for an ID held by another event
	batches         atomic.Uint64
	auditReads      atomic.Uint64
	auditGroups     auditGroupMetrics // trail_audit_read_group* (auditgroup.go)
	rateLimited     atomic.Uint64
	authFailures    atomic.Uint64
	tailSubscribers atomic.Int64
	tailPolls       atomic.Uint64 // store feed (tail_store.go)
	tailPollErrors  atomic.Uint64
	tailStoreEvents atomic.Uint64
	tailResets      atomic.Uint64
	exportedEvents  atomic.Uint64
	streams         streamMetrics // trail_streams_* (stream.go)

	extra func(io.Writer) // more metrics, e.g. the sealer's (integrity.go)
}

type reqKey struct {
	route string
	code  int
}

var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

type histogram struct {
	counts []uint64 // per bucket, not cumulative
	sum    float64
	n      uint64
}

func newMetrics() *metrics {
	return &metrics{start: time.Now(), requests: map[reqKey]uint64{}, duration: map[string]*histogram{}}
}

func (m *metrics) observe(route string, code int, d time.Duration) {
	secs := d.Seconds()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[reqKey{route, code}]++
	h := m.duration[route]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(durationBuckets))}
		m.duration[route] = h
	}
	for i, b := range durationBuckets {
		if secs <= b {
			h.counts[i]++
			break
		}
	}
	h.sum += secs
	h.n++
}

func (m *metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	m.write(w)
}

func (m *metrics) write(w io.Writer) {
	m.mu.Lock()
	keys := make([]reqKey, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b reqKey) int {
		if a.route != b.route {
			if a.route < b.route {
				return -1
			}
			return 1
		}
		return a.code - b.code
	})
	fmt.Fprintln(w, "# HELP trail_http_requests_total HTTP requests by route pattern and status code.")
	fmt.Fprintln(w, "# TYPE trail_http_requests_total counter")
	for _, k := range keys {
		fmt.Fprintf(w, "trail_http_requests_total{route=%s,code=\"%d\"} %d\n", strconv.Quote(k.route), k.code, m.requests[k])
	}
	routes := make([]string, 0, len(m.duration))
	for r := range m.duration {
		routes = append(routes, r)
	}
	slices.Sort(routes)
	fmt.Fprintln(w, "# HELP trail_http_request_duration_seconds Time to the end of the handler, by route pattern.")
	fmt.Fprintln(w, "# TYPE trail_http_request_duration_seconds histogram")
	for _, route := range routes {
		h := m.duration[route]
		var cum uint64
		for i, b := range durationBuckets {
			cum += h.counts[i]
			fmt.Fprintf(w, "trail_http_request_duration_seconds_bucket{route=%s,le=\"%s\"} %d\n", strconv.Quote(route), formatFloat(b), cum)
		}
		fmt.Fprintf(w, "trail_http_request_duration_seconds_bucket{route=%s,le=\"+Inf\"} %d\n", strconv.Quote(route), h.n)
		fmt.Fprintf(w, "trail_http_request_duration_seconds_sum{route=%s} %s\n", strconv.Quote(route), formatFloat(h.sum))
		fmt.Fprintf(w, "trail_http_request_duration_seconds_count{route=%s} %d\n", strconv.Quote(route), h.n)
	}
	m.mu.Unlock()

	counter := func(name, help string, v uint64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
	}
	fmt.Fprintln(w, "# HELP trail_ingest_events_total Events received by POST /v1/events, by result.")
	fmt.Fprintln(w, "# TYPE trail_ingest_events_total counter")
	fmt.Fprintf(w, "trail_ingest_events_total{status=\"created\"} %d\n", m.eventsCreated.Load())
	fmt.Fprintf(w, "trail_ingest_events_total{status=\"duplicate\"} %d\n", m.eventsDuplicate.Load())
	fmt.Fprintf(w, "trail_ingest_events_total{status=\"conflict\"} %d\n", m.eventsConflict.Load())
	counter("trail_ingest_batches_total", "Committed ingest requests.", m.batches.Load())
	counter("trail_export_events_total", "Events written by GET /v1/export.", m.exportedEvents.Load())
	counter("trail_audit_reads_total", "audit.read events recorded for reads.", m.auditReads.Load())
	m.auditGroups.write(w)
	counter("trail_rate_limited_total", "Requests refused with 429.", m.rateLimited.Load())
	counter("trail_auth_failures_total", "Requests refused with 401.", m.authFailures.Load())
	fmt.Fprintf(w, "# HELP trail_tail_subscribers Open GET /v1/tail streams.\n# TYPE trail_tail_subscribers gauge\ntrail_tail_subscribers %d\n", m.tailSubscribers.Load())
	counter("trail_tail_polls_total", "Store reads of the live tail's feed.", m.tailPolls.Load())
	counter("trail_tail_poll_errors_total", "Store reads of the live tail's feed that failed (retried at the next poll).", m.tailPollErrors.Load())
	counter("trail_tail_store_events_total", "Events the live tail's feed read from the store before this server published them.", m.tailStoreEvents.Load())
	counter("trail_tail_resets_total", "Times the feed found the store's newest events removed and resumed from the new end.", m.tailResets.Load())
	m.streams.write(w)
	fmt.Fprintf(w, "# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines %d\n", runtime.NumGoroutine())
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(w, "# HELP go_memstats_heap_alloc_bytes Heap bytes in use.\n# TYPE go_memstats_heap_alloc_bytes gauge\ngo_memstats_heap_alloc_bytes %d\n", ms.HeapAlloc)
	if m.extra != nil {
		m.extra(w)
	}
	fmt.Fprintf(w, "# HELP process_start_time_seconds Start time of the server since the Unix epoch.\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %d\n", m.start.Unix())
}

func formatFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

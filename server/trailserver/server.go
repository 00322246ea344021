package trailserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

// Config configures a Server. Store and Keys are required; every other
// field has the default its comment gives.
type Config struct {
	// Store keeps the events.
	Store trail.Store
	// Keys keeps the API keys.
	Keys KeyStore
	// Logger receives errors the client is not told about. Default: slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// MaxBodyBytes bounds a request body. Default: 5 MiB.
	MaxBodyBytes int64
	// RateLimit is each key's sustained requests per second; RateBurst how
	// many it may make at once. Defaults: 50 and 100. A negative RateLimit
	// turns the limit off.
	RateLimit float64
	RateBurst int
	// Transform, when set, rewrites every ingested event after it is
	// normalized and before it is validated and stored (the privacy layer's
	// redaction). Default: none.
	Transform trail.Transformer
	// OwnTransform rewrites the events the server writes itself (audit.read,
	// api_key.*, privacy.*, which carry the calling key's IP) the same way.
	// Default: Transform. Set it apart when Transform is only meant for
	// ingest (e.g. a test transform that blocks ingest requests).
	OwnTransform trail.Transformer
	// Privacy, when set, serves the privacy layer's admin endpoints
	// POST /v1/hash and POST /v1/forget (privacy.go). Default: none (404).
	Privacy *PrivacyConfig
	// Reveal, when set, turns every stored event into its readable form
	// before it leaves the server (the privacy layer decrypts personal data,
	// or shows "[erased]"). An error is logged and the event is sent as far
	// as it was revealed: the stored form leaks nothing. Default: none.
	Reveal Revealer
	// TailBuffer is how many events a slow live-tail client may lag behind
	// before its stream is closed. Default: 1024.
	TailBuffer int
	// TailHeartbeat is the interval of SSE comments that keep idle tail
	// streams alive through proxies. Default: 15s.
	TailHeartbeat time.Duration
	// TailPoll is how often, while a tail stream is open, the server reads
	// the events other writers committed to the store (tail_store.go), for
	// stores implementing SeqTailer or RecordedTailer. Default:
	// DefaultTailPoll. Negative: no polling, the tail shows this server's
	// writes only.
	TailPoll time.Duration
	// TailLookback is how far back in recorded_at a RecordedTailer store
	// (PostgreSQL) is re-read on every poll: it must exceed the longest
	// audited transaction plus the writers' clock skew, or such events are
	// not shown live. Default: DefaultTailLookback.
	TailLookback time.Duration
	// StreamWriteTimeout bounds each write of a streaming response (export,
	// live tail, and the UI's): a client that reads nothing for that long
	// once the socket buffers are full has its stream closed, counted in
	// trail_streams_closed_unread_total (stream.go). It replaces the HTTP
	// server's WriteTimeout for streams, which may run for hours. Default:
	// DefaultStreamWriteTimeout (30s).
	StreamWriteTimeout time.Duration
	// StreamsPerKey is how many streams one API key may have open at once,
	// those of UI sessions signed in with it included; one more is refused
	// with 429 and Retry-After. Default: DefaultStreamsPerKey (4). Negative:
	// no cap.
	StreamsPerKey int
	// Integrity, when set, serves checkpoints, proofs, leaf indexes and the
	// sealing lag (integrity.go). Default: none (those endpoints answer 404).
	Integrity *Integrity
	// Retention, when set, serves the retention endpoints GET /v1/retention,
	// /v1/retention/plan, and the policy and hold changes (retention.go).
	// Default: none (they answer 404).
	Retention Retention
	// RetentionStats, when set, reports a retention scheduler's counters,
	// exported at /metrics as trail_retention_* (retention_metrics.go).
	// Default: none (those metrics are absent).
	RetentionStats func() RetentionStats
	// LogStreams, when set, serves /v1/log-streams (logstreams.go) and
	// adds the streams' health to /metrics. Default: none (404).
	LogStreams LogStreams
	// TLS, when set, makes Serve (and the http.Server of HTTPServer)
	// answer HTTPS with it, HTTP/2 included. Default: none, plain HTTP.
	TLS *tls.Config
	// SecureCookies marks the admin UI's cookies Secure on plain HTTP too,
	// for a server behind a TLS proxy (trail serve --public-url https://…).
	// Requests that arrive over TLS always get Secure cookies. Default:
	// false, so that a browser keeps them on http://127.0.0.1.
	SecureCookies bool
	// SessionSecret, when set, keys the UI's session cookies and the
	// viewer tokens (session.go, viewer.go) on every replica given the same
	// value. Default: a random secret kept in the key store when it is an
	// AuthStore (SQLKeyStore is), else one per process.
	SessionSecret []byte
	// AuditAppends is how many appends of audit.read events (each the group
	// of reads that queued meanwhile, auditgroup.go) may be in flight at
	// once. Default: what the store says (ConcurrentAppender: 1 on SQLite,
	// 2 on PostgreSQL), else 1.
	AuditAppends int
}

// Revealer turns a stored event into its readable form in place.
// trailprivacy's *Privacy implements it.
type Revealer interface {
	Reveal(ctx context.Context, ev *trail.Event) error
}

// Defaults.
const (
	DefaultMaxBodyBytes = 5 << 20
	DefaultRateLimit    = 50
	DefaultRateBurst    = 100
	// MaxBatch is the most events one POST /v1/events may carry.
	MaxBatch = 1000
)

// Server is the HTTP API v1 of Trail as an http.Handler. It is safe for
// concurrent use. Close ends the live-tail streams, so that
// http.Server.Shutdown does not wait on them.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	metrics *metrics
	limiter *limiter
	hub     *hub
	streams *streamSlots // open streams per key (stream.go)
	auth    *authState   // UI sessions and viewer tokens (session.go)
	pickers facetCache   // the UI's picker values, per scope (facets.go)
}

// New returns a server over cfg.Store and cfg.Keys.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("trailserver: Config.Store is nil")
	}
	if cfg.Keys == nil {
		return nil, errors.New("trailserver: Config.Keys is nil")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = DefaultRateLimit
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = max(DefaultRateBurst, int(math.Ceil(cfg.RateLimit)))
	}
	if cfg.OwnTransform == nil {
		cfg.OwnTransform = cfg.Transform
	}
	if cfg.TailBuffer <= 0 {
		cfg.TailBuffer = 1024
	}
	if cfg.TailHeartbeat <= 0 {
		cfg.TailHeartbeat = 15 * time.Second
	}
	if cfg.TailPoll == 0 {
		cfg.TailPoll = DefaultTailPoll
	}
	if cfg.TailLookback <= 0 {
		cfg.TailLookback = DefaultTailLookback
	}
	if cfg.StreamWriteTimeout <= 0 {
		cfg.StreamWriteTimeout = DefaultStreamWriteTimeout
	}
	if cfg.StreamsPerKey == 0 {
		cfg.StreamsPerKey = DefaultStreamsPerKey
	}
	m := newMetrics()
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		mux:     http.NewServeMux(),
		metrics: m,
		limiter: newLimiter(cfg.RateLimit, cfg.RateBurst),
		hub:     newHub(newFeed(cfg.Store, &cfg, m), cfg.TailPoll, cfg.Logger, m),
		streams: newStreamSlots(cfg.StreamsPerKey),
	}
	s.auth = newAuthState(s)
	s.metrics.extra = s.writeExtraMetrics // seal and retention metrics
	s.routes()
	return s, nil
}

// Close ends every live-tail stream and refuses new ones. Register it with
// http.Server.RegisterOnShutdown (HTTPServer does).
func (s *Server) Close() { s.hub.close() }

type access int

const (
	public access = iota
	canIngest
	canRead
	isAdmin
)

func (s *Server) routes() {
	s.handle("POST /v1/events", canIngest, s.ingest)
	s.handle("GET /v1/events", canRead, s.listEvents)
	s.handle("GET /v1/events/{id}", canRead, s.getEvent)
	s.handle("GET /v1/objects/{type}/{id}/history", canRead, s.history)
	s.handle("GET /v1/stats", canRead, s.stats)
	s.handle("GET /v1/facets", canRead, s.facets)
	s.handle("GET /v1/export", canRead, s.export)
	s.handle("GET /v1/tail", canRead, s.tail)
	s.integrityRoutes()
	s.handle("POST /v1/keys", isAdmin, s.createKey)
	s.handle("GET /v1/keys", isAdmin, s.listKeys)
	s.handle("DELETE /v1/keys/{id}", isAdmin, s.revokeKey)
	s.privacyRoutes()
	s.retentionRoutes()
	s.logStreamRoutes() // logstreams.go
	s.uiRoutes()        // the admin web UI at /ui/ (ui.go)
	s.handle("GET /healthz", public, func(w http.ResponseWriter, r *http.Request, _ *Key) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.handle("GET /readyz", public, s.ready)
	s.handle("GET /metrics", public, func(w http.ResponseWriter, r *http.Request, _ *Key) { s.metrics.ServeHTTP(w, r) })
	s.handle("GET /openapi.json", public, func(w http.ResponseWriter, r *http.Request, _ *Key) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(OpenAPI)
	})
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, k *Key)

// handle registers h behind authentication, rate limiting and the role
// check that acc names.
func (s *Server) handle(pattern string, acc access, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if acc == public {
			h(w, r, nil)
			return
		}
		k, p := s.authenticate(r)
		if p != nil {
			if p.Status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="trail"`)
			}
			writeProblem(w, r, p)
			return
		}
		if ok, wait := s.limiter.allow(k.ID, s.cfg.Now()); !ok {
			s.metrics.rateLimited.Add(1)
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			writeProblem(w, r, problem(http.StatusTooManyRequests, ProblemRateLimited, "", fmt.Sprintf("this key may make %g requests a second; retry later", s.cfg.RateLimit)))
			return
		}
		switch {
		case acc == canIngest && !k.Role.canIngest():
			writeProblem(w, r, forbidden("", fmt.Sprintf("a %s key cannot write events", k.Role)))
			return
		case acc == canRead && !k.Role.canRead():
			writeProblem(w, r, forbidden("", fmt.Sprintf("a %s key cannot read events", k.Role)))
			return
		case acc == isAdmin && k.Role != RoleAdmin:
			writeProblem(w, r, forbidden("", fmt.Sprintf("a %s key cannot manage keys", k.Role)))
			return
		}
		h(w, r, k)
	})
}

func (s *Server) authenticate(r *http.Request) (*Key, *Problem) {
	fail := func(detail string) (*Key, *Problem) {
		s.metrics.authFailures.Add(1)
		return nil, problem(http.StatusUnauthorized, ProblemUnauthorized, "Authorization", detail)
	}
	h := r.Header.Values("Authorization")
	if len(h) == 0 {
		return fail("send an API key: Authorization: Bearer trail_…")
	}
	if len(h) > 1 {
		return fail("more than one Authorization header")
	}
	scheme, secret, ok := strings.Cut(h[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return fail("use the Bearer scheme: Authorization: Bearer trail_…")
	}
	secret = strings.TrimSpace(secret)
	if !wellFormedKey(secret) {
		return fail("malformed API key")
	}
	k, err := s.cfg.Keys.Lookup(r.Context(), HashKey(secret))
	if errors.Is(err, ErrKeyNotFound) {
		return fail("unknown API key")
	}
	if err != nil {
		s.log.Error("trailserver: key lookup", "err", err)
		return nil, problem(http.StatusServiceUnavailable, ProblemUnavailable, "", "the key store is unavailable")
	}
	if !k.Active(s.cfg.Now()) {
		return fail("API key revoked or expired")
	}
	return &k, nil
}

// ServeHTTP implements http.Handler. Requests the mux has no route for get
// problem+json 404 and 405 answers instead of its plain text.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	h, pattern := s.mux.Handler(r)
	sw := &statusWriter{ResponseWriter: w}
	if pattern == "" {
		// Let the mux decide between 404, 405 and a redirect, but answer
		// 404 and 405 with a problem.
		probe := &probeWriter{header: http.Header{}}
		h.ServeHTTP(probe, r)
		switch probe.status {
		case http.StatusMethodNotAllowed:
			w.Header().Set("Allow", probe.header.Get("Allow"))
			writeProblem(sw, r, problem(http.StatusMethodNotAllowed, ProblemMethod, "", r.Method+" is not allowed here; allowed: "+probe.header.Get("Allow")))
		case http.StatusNotFound:
			writeProblem(sw, r, notFound("no such endpoint; see /openapi.json"))
		default:
			h.ServeHTTP(sw, r)
		}
		s.metrics.observe("unmatched", sw.code(), time.Since(start))
		return
	}
	s.mux.ServeHTTP(sw, r) // sets the path values, which Handler does not
	s.metrics.observe(pattern, sw.code(), time.Since(start))
}

// statusWriter remembers the status code for metrics. It passes Flush and
// the rest through http.ResponseController via Unwrap.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

type probeWriter struct {
	header http.Header
	status int
}

func (p *probeWriter) Header() http.Header { return p.header }
func (p *probeWriter) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}
func (p *probeWriter) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request, _ *Key) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.cfg.Store.Get(ctx, uuid.Nil); err != nil && !errors.Is(err, trail.ErrNotFound) {
		s.log.Error("trailserver: readiness", "err", err)
		writeProblem(w, r, problem(http.StatusServiceUnavailable, ProblemUnavailable, "", "the event store does not answer"))
		return
	}
	if _, err := s.cfg.Keys.Count(ctx); err != nil {
		s.log.Error("trailserver: readiness", "err", err)
		writeProblem(w, r, problem(http.StatusServiceUnavailable, ProblemUnavailable, "", "the key store does not answer"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// storeProblem answers a store error: bad input is the client's 400,
// anything else is logged and a 503 (the store is down or busy).
func (s *Server) storeProblem(w http.ResponseWriter, r *http.Request, op string, err error) {
	switch {
	case errors.Is(err, trail.ErrInvalidCursor), errors.Is(err, trail.ErrInvalidQuery):
		writeProblem(w, r, queryProblem(err))
	case errors.Is(err, trail.ErrInvalid):
		var ve *trail.ValidationError
		if errors.As(err, &ve) {
			writeProblem(w, r, badRequest(ve.Field, ve.Reason))
			return
		}
		writeProblem(w, r, badRequest("", err.Error()))
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		writeProblem(w, r, problem(http.StatusServiceUnavailable, ProblemUnavailable, "", "request cancelled"))
	default:
		s.log.Error("trailserver: store", "op", op, "err", err)
		w.Header().Set("Retry-After", "1") // a database or stream outage: the client retries
		writeProblem(w, r, problem(http.StatusServiceUnavailable, ProblemUnavailable, "", op+" failed; retry later"))
	}
}

// HTTPServer returns an http.Server for s with production timeouts: headers
// within 10 s, a whole request body within 60 s, responses within 60 s
// (streams — export and tail — replace it with a deadline on each write,
// Config.StreamWriteTimeout), idle
// keep-alive connections closed after 2 minutes. Shutdown also closes the
// tail streams.
func (s *Server) HTTPServer(addr string) *http.Server {
	hs := &http.Server{
		Addr:              addr,
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if s.cfg.TLS != nil {
		hs.TLSConfig = s.cfg.TLS.Clone()
	}
	hs.RegisterOnShutdown(s.Close)
	return hs
}

// Serve serves s on ln until ctx is done, then shuts down gracefully: the
// listener closes, tail streams end, and in-flight requests — ingest
// included, so every acknowledged event is committed — finish within
// grace before the remaining connections are closed. With Config.TLS it
// serves HTTPS on ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	hs := s.HTTPServer(ln.Addr().String())
	errc := make(chan error, 1)
	if hs.TLSConfig != nil {
		go func() { errc <- hs.ServeTLS(ln, "", "") }() // the certificates are in TLSConfig
	} else {
		go func() { errc <- hs.Serve(ln) }()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := hs.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		hs.Close()
		return fmt.Errorf("trailserver: shutdown: %w", err)
	}
	return nil
}

// reveal applies Config.Reveal to evs in place.
func (s *Server) reveal(ctx context.Context, evs []trail.Event) {
	if s.cfg.Reveal == nil {
		return
	}
	for i := range evs {
		if err := s.cfg.Reveal.Reveal(ctx, &evs[i]); err != nil {
			s.log.Warn("trailserver: reveal", "event", evs[i].ID, "err", err)
		}
	}
}

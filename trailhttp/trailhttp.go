package trailhttp

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/trailhq/trail"
)

// Config configures the middleware. A nil *Config means every default.
type Config struct {
	// Actor returns the authenticated caller, if any. It reads what the
	// service's authentication middleware left on the request (typically in
	// its context), so Middleware must run after that middleware. The request
	// it is given already carries trail.Request. Default: none, so events
	// must name their actor or fail validation.
	Actor func(r *http.Request) (trail.Actor, bool)
	// Tenant returns the caller's tenant, if any. Like Actor it reads what
	// authentication decided. Default: none.
	Tenant func(r *http.Request) (string, bool)
	// RequireActor makes the middleware answer a request itself, with a 500
	// problem (see Middleware), when Actor reports no caller (false, or a
	// zero trail.Actor). Set it on routes that always have an authenticated
	// caller: there, no actor means the middleware runs before
	// authentication, or authentication let the request through, and the
	// handler should not run. Requires Actor.
	RequireActor bool
	// RequireTenant is RequireActor for Tenant (false, or ""). Requires
	// Tenant.
	RequireTenant bool
	// Logger receives the misconfigurations RequireActor and RequireTenant
	// catch, at level Error. Default: slog.Default().
	Logger *slog.Logger
	// RequestIDHeader is read for an incoming request ID and set on the
	// response. Default: "X-Request-Id". A missing or malformed incoming ID is
	// replaced by a random one.
	RequestIDHeader string
	// TrustedProxies are the networks whose X-Forwarded-For header is
	// believed. Default: none, so the client IP is the connection's peer:
	// trusting the header from anyone would let any caller choose the IP
	// written into the audit log.
	TrustedProxies []netip.Prefix
	// Source is written into events as their source when set.
	Source string
}

// fix is the remedy the middleware names when a required actor or tenant is
// missing.
const fix = "put trailhttp.Middleware after your authentication middleware"

// Middleware returns middleware, in the standard shape, whose requests'
// contexts carry trail.Request (and the actor, tenant and source when
// known) by the time they reach the wrapped handler.
//
// It must run after the service's authentication middleware, because
// Config.Actor and Config.Tenant read the caller that authentication
// established. Outermost first:
//
//	handler := auth(trailhttp.Middleware(cfg)(app))
//
// or, with a router, r.Use(auth) before r.Use(trailhttp.Middleware(cfg)).
//
// When Config.RequireActor (or RequireTenant) is set and Config.Actor (or
// Tenant) reports none, the wrapped handler is not called: the middleware
// logs the request to Config.Logger and answers 500 with an RFC 9457
// problem (Content-Type application/problem+json) whose detail reads
// "trailhttp: no actor in the request: put trailhttp.Middleware after your
// authentication middleware". The response still carries the request ID
// header, for finding the log line.
//
// Middleware panics when RequireActor is set without Actor, or
// RequireTenant without Tenant: like an invalid http.ServeMux pattern, that
// is a programming error, and it is reported when the handler chain is
// built rather than on the first request.
func Middleware(cfg *Config) func(http.Handler) http.Handler {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.RequireActor && c.Actor == nil {
		panic("trailhttp: Config.RequireActor is set but Config.Actor is nil")
	}
	if c.RequireTenant && c.Tenant == nil {
		panic("trailhttp: Config.RequireTenant is set but Config.Tenant is nil")
	}
	if c.RequestIDHeader == "" {
		c.RequestIDHeader = "X-Request-Id"
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			id := r.Header.Get(c.RequestIDHeader)
			if !ValidRequestID(id) {
				id = NewRequestID()
			}
			w.Header().Set(c.RequestIDHeader, id)
			ctx = trail.WithRequest(ctx, trail.Request{
				ID:        id,
				TraceID:   TraceID(r.Header.Get("Traceparent")),
				IP:        clientIP(r, c.TrustedProxies),
				UserAgent: clipUA(r.UserAgent()),
			})
			if c.Source != "" {
				ctx = trail.WithSource(ctx, c.Source)
			}
			r = r.WithContext(ctx)
			if c.Actor != nil {
				a, ok := c.Actor(r)
				if c.RequireActor && (!ok || a.IsZero()) {
					c.misconfigured(w, r, id, "actor")
					return
				}
				if ok {
					ctx = trail.WithActor(ctx, a)
				}
			}
			if c.Tenant != nil {
				t, ok := c.Tenant(r)
				if c.RequireTenant && (!ok || t == "") {
					c.misconfigured(w, r, id, "tenant")
					return
				}
				if ok {
					ctx = trail.WithTenant(ctx, t)
				}
			}
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// problem is an RFC 9457 problem detail, shaped like trailserver's.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance,omitempty"`
}

// misconfigured answers a request that reached the middleware without the
// actor or tenant its configuration requires.
func (c *Config) misconfigured(w http.ResponseWriter, r *http.Request, requestID, what string) {
	detail := "trailhttp: no " + what + " in the request: " + fix
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	log.ErrorContext(r.Context(), detail, "method", r.Method, "path", r.URL.Path, "request_id", requestID)
	b, _ := json.Marshal(problem{
		Type:     "urn:trail:problem:internal",
		Title:    "Internal server error",
		Status:   http.StatusInternalServerError,
		Detail:   detail,
		Instance: r.URL.Path,
	})
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusInternalServerError)
	w.Write(append(b, '\n'))
}

// TraceID returns the trace ID of a W3C traceparent header
// ("00-<32 hex>-<16 hex>-<2 hex>"), or "" when the header is absent or
// malformed, including the all-zero ID the specification forbids.
func TraceID(traceparent string) string {
	parts := strings.Split(strings.TrimSpace(traceparent), "-")
	if len(parts) < 4 || len(parts[0]) != 2 || parts[0] == "ff" || len(parts[1]) != 32 || len(parts[2]) != 16 || len(parts[3]) != 2 {
		return ""
	}
	if parts[0] == "00" && len(parts) != 4 {
		return ""
	}
	for _, p := range parts[:4] {
		if !isLowerHex(p) {
			return ""
		}
	}
	if strings.Trim(parts[1], "0") == "" || strings.Trim(parts[2], "0") == "" {
		return ""
	}
	return parts[1]
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// ValidRequestID reports whether an incoming request ID is kept: 1-128
// printable ASCII characters without spaces, so that a caller cannot smuggle
// control characters or megabytes into the log. Other transports' middleware
// (trailgrpc) applies the same rule.
func ValidRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// NewRequestID returns a random request ID (32 hex digits), for a request
// that brought none or one ValidRequestID refuses.
func NewRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func clipUA(ua string) string {
	if len(ua) > trail.MaxUserAgentLen {
		ua = ua[:trail.MaxUserAgentLen]
	}
	return strings.ToValidUTF8(ua, "")
}

// clientIP is the connection's peer, or, when the peer is a trusted proxy,
// the right-most address of X-Forwarded-For that is not itself trusted.
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return ""
	}
	peer = peer.Unmap()
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer.String() // a garbled chain: believe only what we saw
		}
		a = a.Unmap()
		if !isTrusted(a, trusted) {
			return a.String()
		}
	}
	return peer.String()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

package trailhttp

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/trailhq/trail"
)

// Config configures the middleware. A nil *Config means every default.
type Config struct {
	// Actor returns the authenticated caller, if any. Default: none, so
	// events must name their actor or fail validation.
	Actor func(r *http.Request) (trail.Actor, bool)
	// Tenant returns the caller's tenant, if any. Default: none.
	Tenant func(r *http.Request) (string, bool)
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

// Middleware returns next wrapped so that its requests' contexts carry
// trail.Request (and the actor, tenant and source when known).
func Middleware(next http.Handler, cfg *Config) http.Handler {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.RequestIDHeader == "" {
		c.RequestIDHeader = "X-Request-Id"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		id := r.Header.Get(c.RequestIDHeader)
		if !validRequestID(id) {
			id = newRequestID()
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
			if a, ok := c.Actor(r); ok {
				ctx = trail.WithActor(ctx, a)
			}
		}
		if c.Tenant != nil {
			if t, ok := c.Tenant(r); ok {
				ctx = trail.WithTenant(ctx, t)
			}
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
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

// validRequestID accepts 1-128 printable ASCII characters without spaces, so
// that a caller cannot smuggle control characters or megabytes into the log.
func validRequestID(s string) bool {
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

func newRequestID() string {
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

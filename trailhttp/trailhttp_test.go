package trailhttp_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailhttp"
	"github.com/trailhq/trail/trailtest"
)

func TestMiddlewareFillsEvents(t *testing.T) {
	t.Parallel()
	rec := trailtest.NewRecorder(t)
	h := trailhttp.Middleware(&trailhttp.Config{
		Actor: func(r *http.Request) (trail.Actor, bool) {
			return trail.Actor{Type: trail.ActorUser, ID: r.Header.Get("X-User")}, true
		},
		Tenant: func(r *http.Request) (string, bool) { return r.Header.Get("X-Tenant"), true },
		Source: "billing",
	})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := rec.Record(r.Context(), trail.Event{Action: "user.delete", Target: trail.Target{Type: "user", ID: "17"}}); err != nil {
			t.Error(err)
		}
	}))
	req := httptest.NewRequest("DELETE", "/users/17", nil)
	req.RemoteAddr = "198.51.100.7:5555"
	req.Header.Set("X-User", "42")
	req.Header.Set("X-Tenant", "acme")
	req.Header.Set("X-Request-Id", "req-1")
	req.Header.Set("User-Agent", "curl/8")
	req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	ev := trailtest.RequireRecorded(t, rec, trailtest.Match{Action: "user.delete", Tenant: "acme", Actor: "user:42", Target: "user:17"})
	if ev.RequestID != "req-1" || ev.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || ev.Actor.IP != "198.51.100.7" ||
		ev.Actor.UserAgent != "curl/8" || ev.Source != "billing" {
		t.Fatalf("event not filled from the request: %+v", ev)
	}
	if got := w.Header().Get("X-Request-Id"); got != "req-1" {
		t.Fatalf("response request id %q", got)
	}
}

func TestMiddlewareRequestIDs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		keep     bool
	}{
		{"kept", "abc-123", true},
		{"missing", "", false},
		{"control characters", "a\nb", false},
		{"spaces", "a b", false},
		{"too long", strings.Repeat("x", 129), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got trail.Request
			h := trailhttp.Middleware(nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, _ = trail.RequestFrom(r.Context())
			}))
			req := httptest.NewRequest("GET", "/", nil)
			if tc.in != "" {
				req.Header["X-Request-Id"] = []string{tc.in}
			}
			h.ServeHTTP(httptest.NewRecorder(), req)
			if tc.keep && got.ID != tc.in {
				t.Fatalf("id %q, want %q", got.ID, tc.in)
			}
			if !tc.keep && (got.ID == tc.in || len(got.ID) != 32) {
				t.Fatalf("id %q should have been replaced by a random one", got.ID)
			}
		})
	}
}

func TestClientIPTrustsOnlyConfiguredProxies(t *testing.T) {
	t.Parallel()
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		name, peer, xff string
		trusted         []netip.Prefix
		want            string
	}{
		{"no proxies configured: header ignored", "203.0.113.9:1", "1.2.3.4", nil, "203.0.113.9"},
		{"untrusted peer: header ignored", "203.0.113.9:1", "1.2.3.4", proxies, "203.0.113.9"},
		{"trusted proxy: client from header", "10.0.0.2:1", "1.2.3.4", proxies, "1.2.3.4"},
		{"chain: right-most untrusted", "10.0.0.2:1", "6.6.6.6, 1.2.3.4, 10.0.0.3", proxies, "1.2.3.4"},
		{"garbled chain: the peer", "10.0.0.2:1", "1.2.3.4, nonsense", proxies, "10.0.0.2"},
		{"ipv6 peer", "[2001:db8::1]:1", "", nil, "2001:db8::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got trail.Request
			h := trailhttp.Middleware(&trailhttp.Config{TrustedProxies: tc.trusted})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, _ = trail.RequestFrom(r.Context())
			}))
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = tc.peer
			if tc.xff != "" {
				req.Header.Set("X-Forwarded-For", tc.xff)
			}
			h.ServeHTTP(httptest.NewRecorder(), req)
			if got.IP != tc.want {
				t.Fatalf("ip %q, want %q", got.IP, tc.want)
			}
		})
	}
}

func TestTraceID(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01":   "4bf92f3577b34da6a3ce929d0e0e4736",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01":   "",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01":   "",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01":   "",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01":   "",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x": "",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x": "4bf92f3577b34da6a3ce929d0e0e4736",
		"":        "",
		"garbage": "",
	} {
		if got := trailhttp.TraceID(in); got != want {
			t.Errorf("TraceID(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzTraceID(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id := trailhttp.TraceID(s)
		if id != "" && (len(id) != 32 || !strings.Contains(s, id)) {
			t.Fatalf("TraceID(%q) = %q", s, id)
		}
	})
}

// syncBuffer is a log sink the server's goroutines write while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type problemBody struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance"`
}

// serve runs h on a real server and sends one request to it.
func serve(t *testing.T, h http.Handler, token string) *http.Response {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	req, err := http.NewRequest("DELETE", srv.URL+"/users/17", nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	req.Header.Set("X-Request-Id", "req-7")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// seen is a handler that records the actor and tenant its context carries.
type seen struct {
	called atomic.Bool
	actor  trail.Actor
	tenant string
}

func (s *seen) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.actor, _ = trail.ActorFrom(r.Context())
	s.tenant, _ = trail.TenantFrom(r.Context())
	s.called.Store(true)
	w.WriteHeader(http.StatusNoContent)
}

func TestMiddlewareAfterAuthCarriesActorAndTenant(t *testing.T) {
	t.Parallel()
	var h seen
	resp := serve(t, auth(trailhttp.Middleware(authConfig())(&h)), "Bearer tok-42")
	if resp.StatusCode != http.StatusNoContent || !h.called.Load() {
		t.Fatalf("status %d, handler called %v", resp.StatusCode, h.called.Load())
	}
	if h.actor != (trail.Actor{Type: trail.ActorUser, ID: "42"}) || h.tenant != "acme" {
		t.Fatalf("context carries actor %+v, tenant %q", h.actor, h.tenant)
	}
	if got := resp.Header.Get("X-Request-Id"); got != "req-7" {
		t.Fatalf("request id %q", got)
	}

	// An unauthenticated request is auth's to reject; trailhttp never sees it.
	var h2 seen
	resp = serve(t, auth(trailhttp.Middleware(authConfig())(&h2)), "")
	if resp.StatusCode != http.StatusUnauthorized || h2.called.Load() {
		t.Fatalf("unauthenticated: status %d, handler called %v", resp.StatusCode, h2.called.Load())
	}
}

func TestMiddlewareWrongOrderAnswersProblem(t *testing.T) {
	t.Parallel()
	// cfg returns authConfig with only the named requirement and a captured log.
	cfg := func(log *syncBuffer, actor, tenant bool) *trailhttp.Config {
		c := authConfig()
		c.RequireActor, c.RequireTenant = actor, tenant
		c.Logger = slog.New(slog.NewTextHandler(log, nil))
		return c
	}
	for _, tc := range []struct {
		name    string
		cfg     func(*syncBuffer) *trailhttp.Config
		order   func(mw func(http.Handler) http.Handler, h http.Handler) http.Handler
		missing string
	}{
		{"before auth, actor required",
			func(b *syncBuffer) *trailhttp.Config { return cfg(b, true, false) },
			func(mw func(http.Handler) http.Handler, h http.Handler) http.Handler { return mw(auth(h)) },
			"actor"},
		{"before auth, tenant required",
			func(b *syncBuffer) *trailhttp.Config { return cfg(b, false, true) },
			func(mw func(http.Handler) http.Handler, h http.Handler) http.Handler { return mw(auth(h)) },
			"tenant"},
		{"after auth, but auth left the tenant empty",
			func(b *syncBuffer) *trailhttp.Config {
				c := cfg(b, true, true)
				c.Tenant = func(*http.Request) (string, bool) { return "", true }
				return c
			},
			func(mw func(http.Handler) http.Handler, h http.Handler) http.Handler { return auth(mw(h)) },
			"tenant"},
		{"after auth, but the actor func reports a zero actor",
			func(b *syncBuffer) *trailhttp.Config {
				c := cfg(b, true, false)
				c.Actor = func(*http.Request) (trail.Actor, bool) { return trail.Actor{}, true }
				return c
			},
			func(mw func(http.Handler) http.Handler, h http.Handler) http.Handler { return auth(mw(h)) },
			"actor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var log syncBuffer
			var h seen
			resp := serve(t, tc.order(trailhttp.Middleware(tc.cfg(&log)), &h), "Bearer tok-42")
			if h.called.Load() {
				t.Fatal("the handler ran without the required " + tc.missing)
			}
			if resp.StatusCode != http.StatusInternalServerError {
				t.Fatalf("status %d, want 500", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type %q", ct)
			}
			if got := resp.Header.Get("X-Request-Id"); got != "req-7" {
				t.Fatalf("request id %q", got)
			}
			var p problemBody
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
			want := "trailhttp: no " + tc.missing + " in the request: put trailhttp.Middleware after your authentication middleware"
			if p.Status != 500 || p.Type != "urn:trail:problem:internal" || p.Title == "" || p.Detail != want || p.Instance != "/users/17" {
				t.Fatalf("problem %+v; want detail %q", p, want)
			}
			if l := log.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, want) || !strings.Contains(l, "request_id=req-7") {
				t.Fatalf("log %q", l)
			}
		})
	}
}

// Without RequireActor the wrong order is not caught here: the handler runs
// with no actor, as before, and recording fails later.
func TestMiddlewareWithoutRequireLetsTheRequestThrough(t *testing.T) {
	t.Parallel()
	cfg := authConfig()
	cfg.RequireActor, cfg.RequireTenant = false, false
	var h seen
	resp := serve(t, trailhttp.Middleware(cfg)(auth(&h)), "Bearer tok-42")
	if resp.StatusCode != http.StatusNoContent || !h.called.Load() || !h.actor.IsZero() || h.tenant != "" {
		t.Fatalf("status %d, called %v, actor %+v, tenant %q", resp.StatusCode, h.called.Load(), h.actor, h.tenant)
	}
}

func TestMiddlewarePanicsOnRequireWithoutFunc(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  trailhttp.Config
		want string
	}{
		{trailhttp.Config{RequireActor: true}, "Config.RequireActor is set but Config.Actor is nil"},
		{trailhttp.Config{RequireTenant: true}, "Config.RequireTenant is set but Config.Tenant is nil"},
	} {
		func() {
			defer func() {
				if msg, _ := recover().(string); !strings.Contains(msg, tc.want) {
					t.Errorf("panic %q, want %q", msg, tc.want)
				}
			}()
			trailhttp.Middleware(&tc.cfg)
		}()
	}
}

// chain composes standard middleware the way routers' Use does: the first is
// the outermost.
func chain(h http.Handler, mws ...func(http.Handler) http.Handler) http.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

func TestMiddlewareComposesAsStandardMiddleware(t *testing.T) {
	t.Parallel()
	var mw func(http.Handler) http.Handler = trailhttp.Middleware(authConfig())
	var right, wrong seen
	if resp := serve(t, chain(&right, auth, mw), "Bearer tok-42"); resp.StatusCode != http.StatusNoContent || right.actor.ID != "42" {
		t.Fatalf("auth then trailhttp: status %d, actor %+v", resp.StatusCode, right.actor)
	}
	cfg := authConfig()
	cfg.Logger = slog.New(slog.DiscardHandler)
	if resp := serve(t, chain(&wrong, trailhttp.Middleware(cfg), auth), "Bearer tok-42"); resp.StatusCode != http.StatusInternalServerError || wrong.called.Load() {
		t.Fatalf("trailhttp then auth: status %d, handler called %v", resp.StatusCode, wrong.called.Load())
	}
}

package trailhttp_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailhttp"
	"github.com/trailhq/trail/trailtest"
)

func TestMiddlewareFillsEvents(t *testing.T) {
	t.Parallel()
	rec := trailtest.NewRecorder(t)
	h := trailhttp.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := rec.Record(r.Context(), trail.Event{Action: "user.delete", Target: trail.Target{Type: "user", ID: "17"}}); err != nil {
			t.Error(err)
		}
	}), &trailhttp.Config{
		Actor: func(r *http.Request) (trail.Actor, bool) {
			return trail.Actor{Type: trail.ActorUser, ID: r.Header.Get("X-User")}, true
		},
		Tenant: func(r *http.Request) (string, bool) { return r.Header.Get("X-Tenant"), true },
		Source: "billing",
	})
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
			h := trailhttp.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, _ = trail.RequestFrom(r.Context())
			}), nil)
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
			h := trailhttp.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, _ = trail.RequestFrom(r.Context())
			}), &trailhttp.Config{TrustedProxies: tc.trusted})
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

func ExampleMiddleware() {
	mux := http.NewServeMux()
	mux.HandleFunc("DELETE /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		// client.RecordTx(r.Context(), tx, trail.Event{Action: "user.delete", ...})
		// carries the actor, tenant, request ID and client IP from here on.
		_ = r.Context()
	})
	handler := trailhttp.Middleware(mux, &trailhttp.Config{
		Actor: func(r *http.Request) (trail.Actor, bool) {
			// Whatever your authentication decided, e.g. from a verified session.
			return trail.Actor{Type: trail.ActorUser, ID: "42"}, true
		},
		Tenant: func(r *http.Request) (string, bool) { return "acme", true },
	})
	_ = http.ListenAndServe // serve handler as usual
	_ = handler
}

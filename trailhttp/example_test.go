package trailhttp_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailhttp"
)

// caller is what the example's authentication establishes.
type caller struct{ UserID, Tenant string }

type callerKey struct{}

// auth stands in for a service's authentication middleware: it rejects a
// request without a known token and puts the caller into the context of
// the others.
func auth(next http.Handler) http.Handler {
	tokens := map[string]caller{"Bearer tok-42": {UserID: "42", Tenant: "acme"}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := tokens[r.Header.Get("Authorization")]
		if !ok {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

// authConfig reads the caller auth established, and requires one.
func authConfig() *trailhttp.Config {
	return &trailhttp.Config{
		Actor: func(r *http.Request) (trail.Actor, bool) {
			c, ok := r.Context().Value(callerKey{}).(caller)
			return trail.Actor{Type: trail.ActorUser, ID: c.UserID}, ok
		},
		Tenant: func(r *http.Request) (string, bool) {
			c, ok := r.Context().Value(callerKey{}).(caller)
			return c.Tenant, ok
		},
		RequireActor:  true,
		RequireTenant: true,
	}
}

// app is the service's handler; events it records with r.Context() carry
// the actor and tenant.
var app = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	a, _ := trail.ActorFrom(r.Context())
	t, _ := trail.TenantFrom(r.Context())
	fmt.Fprintf(w, "actor %s, tenant %s", a, t)
})

func ExampleMiddleware() {
	// Authentication first (outermost), then trailhttp, then the service.
	handler := auth(trailhttp.Middleware(authConfig())(app))

	req := httptest.NewRequest("DELETE", "/users/17", nil)
	req.Header.Set("Authorization", "Bearer tok-42")
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, req)
	fmt.Println(w.Code, w.Body)
	// Output: 200 actor user:42, tenant acme
}

func ExampleMiddleware_wrongOrder() {
	cfg := authConfig()
	cfg.Logger = slog.New(slog.DiscardHandler) // the example prints only the response
	// Wrong: trailhttp outside authentication sees no caller yet. With
	// RequireActor the request stops here instead of failing when an event is
	// recorded.
	handler := trailhttp.Middleware(cfg)(auth(app))

	req := httptest.NewRequest("DELETE", "/users/17", nil)
	req.Header.Set("Authorization", "Bearer tok-42")
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, req)
	fmt.Println(w.Code, w.Header().Get("Content-Type"))
	fmt.Print(w.Body)
	// Output:
	// 500 application/problem+json
	// {"type":"urn:trail:problem:internal","title":"Internal server error","status":500,"detail":"trailhttp: no actor in the request: put trailhttp.Middleware after your authentication middleware","instance":"/users/17"}
}

package routers_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/labstack/echo/v4"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailhttp"
	"github.com/trailhq/trail/trailtest"
)

type userKey struct{}

// auth is the service's authentication, in the standard middleware shape:
// it leaves the user in the request's context.
func auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer nina" {
			r = r.WithContext(context.WithValue(r.Context(), userKey{}, "u_nina"))
		}
		next.ServeHTTP(w, r)
	})
}

var cfg = &trailhttp.Config{
	Actor: func(r *http.Request) (trail.Actor, bool) {
		u, ok := r.Context().Value(userKey{}).(string)
		return trail.Actor{Type: trail.ActorUser, ID: u}, ok
	},
	Tenant: func(r *http.Request) (string, bool) {
		return "acme", r.Context().Value(userKey{}) != nil
	},
	RequireActor: true,
}

func call(t *testing.T, h http.Handler, token string) int {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/subscriptions/sub_1/cancel", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func check(t *testing.T, rec *trailtest.Recorder, h http.Handler) {
	t.Helper()
	if code := call(t, h, "nina"); code != http.StatusNoContent {
		t.Fatalf("signed-in call: %d", code)
	}
	if n := len(rec.Filter(trailtest.Match{Tenant: "acme", Actor: "user:u_nina", Action: "subscription.cancel", Target: "subscription:sub_1"})); n != 1 {
		t.Fatalf("events %+v: want one by u_nina in acme", rec.Events())
	}
	if code := call(t, h, ""); code != http.StatusInternalServerError {
		t.Errorf("a call with no actor under RequireActor: %d, want 500", code)
	}
	if n := len(rec.Events()); n != 1 {
		t.Errorf("the handler ran without an actor: %d events", n)
	}
}

func cancel(rec trail.Recorder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if id == "" {
			id = chi.URLParam(r, "id")
		}
		if _, err := rec.Record(r.Context(), trail.Event{Action: "subscription.cancel", Target: trail.Target{Type: "subscription", ID: id}}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func TestChi(t *testing.T) {
	rec := trailtest.NewRecorder(t)
	r := chi.NewRouter()
	r.Use(auth, trailhttp.Middleware(cfg))
	r.Post("/subscriptions/{id}/cancel", cancel(rec))
	check(t, rec, r)
}

func TestEcho(t *testing.T) {
	rec := trailtest.NewRecorder(t)
	e := echo.New()
	e.Use(echo.WrapMiddleware(auth), echo.WrapMiddleware(trailhttp.Middleware(cfg)))
	e.POST("/subscriptions/:id/cancel", func(c echo.Context) error {
		r := c.Request()
		if _, err := rec.Record(r.Context(), trail.Event{Action: "subscription.cancel", Target: trail.Target{Type: "subscription", ID: c.Param("id")}}); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	})
	check(t, rec, e)
}

func TestServeMux(t *testing.T) {
	rec := trailtest.NewRecorder(t)
	mux := http.NewServeMux()
	mux.Handle("POST /subscriptions/{id}/cancel", cancel(rec))
	check(t, rec, auth(trailhttp.Middleware(cfg)(mux)))
}

package trailgin_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/contrib/trailgin"
	"github.com/trailhq/trail/trailhttp"
	"github.com/trailhq/trail/trailtest"
)

func TestGin(t *testing.T) {
	gin.SetMode(gin.TestMode)
	rec := trailtest.NewRecorder(t)
	r := gin.New()
	auth := func(c *gin.Context) {
		if c.GetHeader("Authorization") == "Bearer nina" {
			c.Set("user", "u_nina")
		}
		c.Next()
	}
	r.Use(auth, trailgin.Middleware(&trailhttp.Config{
		Actor: func(r *http.Request) (trail.Actor, bool) {
			u, ok := trailgin.Context(r).Get("user")
			if !ok {
				return trail.Actor{}, false
			}
			return trail.Actor{Type: trail.ActorUser, ID: u.(string)}, true
		},
		Tenant:       func(r *http.Request) (string, bool) { return r.Header.Get("X-Tenant"), r.Header.Get("X-Tenant") != "" },
		RequireActor: true,
	}))
	handled := 0
	r.POST("/subscriptions/:id/cancel", func(c *gin.Context) {
		handled++
		if _, err := rec.Record(c.Request.Context(), trail.Event{Action: "subscription.cancel", Target: trail.Target{Type: "subscription", ID: c.Param("id")}}); err != nil {
			c.String(http.StatusInternalServerError, err.Error())
			return
		}
		c.Status(http.StatusNoContent)
	})

	srv := httptest.NewServer(r)
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/subscriptions/sub_1/cancel", nil)
	req.Header.Set("Authorization", "Bearer nina")
	req.Header.Set("X-Tenant", "acme")
	req.Header.Set("X-Request-Id", "req-9")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("X-Request-Id") != "req-9" {
		t.Fatalf("status %d, request ID %q", resp.StatusCode, resp.Header.Get("X-Request-Id"))
	}
	evs := rec.Filter(trailtest.Match{Tenant: "acme", Actor: "user:u_nina", Action: "subscription.cancel", Target: "subscription:sub_1"})
	if len(evs) != 1 || evs[0].RequestID != "req-9" {
		t.Fatalf("events %+v: want one by u_nina in acme with request req-9", rec.Events())
	}

	// No actor: trailhttp answers 500 and gin's chain stops there.
	req, _ = http.NewRequest("POST", srv.URL+"/subscriptions/sub_1/cancel", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || handled != 1 {
		t.Errorf("without an actor: status %d, handler ran %d times; want 500 and 1", resp.StatusCode, handled)
	}
}

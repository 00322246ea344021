// Package trailgin runs trailhttp's middleware in a gin engine: gin's
// handlers take a *gin.Context, not the standard func(http.Handler)
// http.Handler shape that chi, echo (echo.WrapMiddleware) and net/http use
// directly.
//
//	r := gin.New()
//	r.Use(auth, trailgin.Middleware(&trailhttp.Config{
//		Actor: func(r *http.Request) (trail.Actor, bool) {
//			u, ok := trailgin.Context(r).Get("user") // what auth stored
//			…
//		},
//	}))
//
// Handlers then record with c.Request.Context(), which carries the actor,
// tenant and request.
package trailgin

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/trailhq/trail/trailhttp"
)

type ginKey struct{}

// Context returns the gin context of a request passed through Middleware,
// for trailhttp.Config's callbacks to read what gin's authentication
// middleware stored with c.Set. It is nil for other requests.
func Context(r *http.Request) *gin.Context {
	c, _ := r.Context().Value(ginKey{}).(*gin.Context)
	return c
}

// Middleware returns gin middleware running trailhttp.Middleware(cfg). When
// trailhttp answers a request itself (Config.RequireActor with no actor),
// the chain is aborted.
func Middleware(cfg *trailhttp.Config) gin.HandlerFunc {
	mw := trailhttp.Middleware(cfg)
	return func(c *gin.Context) {
		called := false
		next := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			called = true
			c.Request = r
			c.Next()
		})
		r := c.Request.WithContext(context.WithValue(c.Request.Context(), ginKey{}, c))
		mw(next).ServeHTTP(c.Writer, r)
		if !called {
			c.Abort()
		}
	}
}

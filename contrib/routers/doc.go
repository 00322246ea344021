// Package routers shows trailhttp.Middleware in the routers Go services use
// most; it has no code, only tests that run each router for real.
//
//   - net/http and chi take the middleware as it is: r.Use(trailhttp.Middleware(cfg)).
//   - echo wraps it in one line: e.Use(echo.WrapMiddleware(trailhttp.Middleware(cfg))).
//   - gin needs an adapter (its handlers take a *gin.Context): trailgin.Middleware(cfg).
//
// In each, the service's authentication middleware runs first, and
// trailhttp.Config's Actor and Tenant callbacks read what it decided.
package routers

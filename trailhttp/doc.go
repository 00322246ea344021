// Package trailhttp is net/http middleware that puts who is calling and which
// request this is into the request's context, so that every event a handler
// records with trail.Client carries the actor, tenant, request ID, trace ID,
// client IP and user agent without the handler passing them along.
//
// Middleware has the standard shape func(http.Handler) http.Handler, so it
// goes wherever a router takes middleware (chi's Use, alice, or plain
// wrapping).
//
// The middleware does not authenticate: the service tells it, through
// Config.Actor and Config.Tenant, what its own authentication decided. It
// must therefore run after the authentication middleware, that is, inside
// it, so that the request it sees already carries the authenticated caller:
//
//	handler := auth(trailhttp.Middleware(cfg)(app)) // outermost first
//
// With the order reversed, Config.Actor finds no caller and events fail
// validation only when they are recorded. Config.RequireActor and
// Config.RequireTenant turn that mistake into an immediate 500 answer that
// names the fix.
package trailhttp

// Package trailhttp is net/http middleware that puts who is calling and which
// request this is into the request's context, so that every event a handler
// records with trail.Client carries the actor, tenant, request ID, trace ID,
// client IP and user agent without the handler passing them along.
//
// The middleware does not authenticate: the service tells it, through
// Config.Actor and Config.Tenant, what its own authentication decided.
package trailhttp

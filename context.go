package trail

import (
	"context"
	"errors"
	"fmt"
)

// Context keys are unexported types so that no other package can collide.
type (
	actorKey    struct{}
	tenantKey   struct{}
	requestKey  struct{}
	sourceKey   struct{}
	platformKey struct{}
)

// Request describes the request that caused an event. Middleware such as
// trailhttp sets it once per request; every event recorded with that context
// carries it.
type Request struct {
	ID        string // request ID, e.g. the X-Request-Id header
	TraceID   string // W3C trace ID, when tracing is on
	SpanID    string // W3C span ID of the span handling the request, when known
	IP        string // client address, copied to the actor when the actor has none
	UserAgent string // client user agent, likewise
}

// WithActor returns a context that records a as the actor of events that do
// not name their own.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor set by WithActor.
func ActorFrom(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	return a, ok
}

// WithTenant returns a context whose events belong to tenant.
func WithTenant(ctx context.Context, tenant string) context.Context {
	return context.WithValue(ctx, tenantKey{}, tenant)
}

// TenantFrom returns the tenant set by WithTenant.
func TenantFrom(ctx context.Context) (string, bool) {
	t, ok := ctx.Value(tenantKey{}).(string)
	return t, ok
}

// WithPlatform returns a context whose events may have no tenant: they are
// platform events, about the deployment itself (an operator's command, a
// sign-in to the platform's own console), visible only to all-tenant readers.
// Without it, a Client refuses an event that names no tenant (ErrNoTenant),
// so that a request handled without its tenant never files its events where
// the tenant cannot see them. An event that names a tenant keeps it.
func WithPlatform(ctx context.Context) context.Context {
	return context.WithValue(ctx, platformKey{}, true)
}

// IsPlatform reports whether ctx was marked by WithPlatform.
func IsPlatform(ctx context.Context) bool {
	p, _ := ctx.Value(platformKey{}).(bool)
	return p
}

// WithRequest returns a context carrying the request's IDs and client.
func WithRequest(ctx context.Context, r Request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// RequestFrom returns the request set by WithRequest.
func RequestFrom(ctx context.Context) (Request, bool) {
	r, ok := ctx.Value(requestKey{}).(Request)
	return r, ok
}

// WithSource returns a context whose events name source as their writer,
// e.g. the service's name.
func WithSource(ctx context.Context, source string) context.Context {
	return context.WithValue(ctx, sourceKey{}, source)
}

// SourceFrom returns the source set by WithSource.
func SourceFrom(ctx context.Context) (string, bool) {
	s, ok := ctx.Value(sourceKey{}).(string)
	return s, ok
}

// Errors of Fill, for callers that branch on them.
var (
	// ErrNoTenant: the event names no tenant, and neither does its context.
	ErrNoTenant = errors.New("trail: event has no tenant: set it with trail.WithTenant(ctx, tenant) (or Event.Tenant), or mark a platform event with trail.WithPlatform(ctx)")
	// ErrTenantMismatch: the event names a tenant other than its context's.
	ErrTenantMismatch = errors.New("trail: event tenant differs from the context's tenant")
)

// Fill is FromContext with the tenant guards every Recorder applies: an
// event must end up with a tenant unless ctx is marked WithPlatform
// (ErrNoTenant), and an event that names a tenant other than the context's
// is refused (ErrTenantMismatch) rather than filed under either. Both errors
// also match ErrInvalid.
func (ev *Event) Fill(ctx context.Context) error {
	if t, ok := TenantFrom(ctx); ok && t != "" && ev.Tenant != "" && ev.Tenant != t {
		return &tenantError{err: ErrTenantMismatch, detail: fmt.Sprintf("event names %q, the context %q", clip(ev.Tenant), clip(t))}
	}
	ev.FromContext(ctx)
	if ev.Tenant == "" && !IsPlatform(ctx) {
		return &tenantError{err: ErrNoTenant}
	}
	return nil
}

// tenantError is a ValidationError of the field "tenant" that also matches
// its sentinel.
type tenantError struct {
	err    error
	detail string
}

func (e *tenantError) Error() string {
	if e.detail != "" {
		return e.err.Error() + ": " + e.detail
	}
	return e.err.Error()
}

func (e *tenantError) Is(target error) bool { return target == ErrInvalid }
func (e *tenantError) Unwrap() error        { return e.err }

// FromContext fills the fields of ev that are empty from what ctx carries:
// tenant, actor (and the actor's IP and user agent from the request), request
// and trace IDs, and source. Fields the caller set are never overwritten.
func (ev *Event) FromContext(ctx context.Context) {
	if ev.Tenant == "" {
		if t, ok := TenantFrom(ctx); ok {
			ev.Tenant = t
		}
	}
	if ev.Actor.IsZero() {
		if a, ok := ActorFrom(ctx); ok {
			ev.Actor = a
		}
	}
	if r, ok := RequestFrom(ctx); ok {
		if ev.RequestID == "" {
			ev.RequestID = r.ID
		}
		if ev.TraceID == "" {
			ev.TraceID, ev.SpanID = r.TraceID, r.SpanID
		}
		if ev.Actor.IP == "" {
			ev.Actor.IP = r.IP
		}
		if ev.Actor.UserAgent == "" {
			ev.Actor.UserAgent = r.UserAgent
		}
	}
	if ev.Source == "" {
		if s, ok := SourceFrom(ctx); ok {
			ev.Source = s
		}
	}
}

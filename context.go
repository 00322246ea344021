package trail

import "context"

// Context keys are unexported types so that no other package can collide.
type (
	actorKey   struct{}
	tenantKey  struct{}
	requestKey struct{}
	sourceKey  struct{}
)

// Request describes the request that caused an event. Middleware such as
// trailhttp sets it once per request; every event recorded with that context
// carries it.
type Request struct {
	ID        string // request ID, e.g. the X-Request-Id header
	TraceID   string // W3C trace ID, when tracing is on
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
			ev.TraceID = r.TraceID
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

// Package trailgrpc carries Trail's actor, tenant and request into the
// contexts of gRPC handlers, as trailhttp does for net/http, and can record
// one access event per call.
//
//	srv := grpc.NewServer(
//		grpc.ChainUnaryInterceptor(auth, trailgrpc.UnaryServerInterceptor(cfg)),
//		grpc.ChainStreamInterceptor(authStream, trailgrpc.StreamServerInterceptor(cfg)),
//	)
//
// The interceptors run after the service's authentication interceptor: the
// Config.Actor and Config.Tenant callbacks read what it left in the context
// (or the metadata). Events the handlers record with that context name the
// caller, the tenant, the request ID (metadata "x-request-id", or a random
// one), the W3C trace ID ("traceparent") and the peer's address.
package trailgrpc

import (
	"context"
	"log/slog"
	"net"
	"strings"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Config configures the interceptors. A nil *Config means every default.
type Config struct {
	// Actor returns the authenticated caller, if any, from the context the
	// authentication interceptor produced (it already carries the incoming
	// metadata and trail.Request). Default: none.
	Actor func(ctx context.Context) (trail.Actor, bool)
	// Tenant returns the caller's tenant, if any. Default: none.
	Tenant func(ctx context.Context) (string, bool)
	// RequireActor makes a call with no actor fail with codes.Internal
	// instead of reaching the handler: on methods that always have an
	// authenticated caller, no actor means the interceptor runs before
	// authentication. Requires Actor.
	RequireActor bool
	// RequireTenant is RequireActor for Tenant. Requires Tenant.
	RequireTenant bool
	// RequestIDKey is the metadata key read for an incoming request ID and
	// sent back in the response header. Default: "x-request-id".
	RequestIDKey string
	// Source is written into events as their source when set.
	Source string
	// Access, when set, records one event per call through it, after the
	// handler returns: the action is Action(method), the outcome failure
	// when the handler returned an error (denied for PermissionDenied and
	// Unauthenticated; its gRPC code in the metadata).
	// Default: none, no access events.
	Access trail.Recorder
	// Action names a method's access event. Default: "grpc." followed by
	// the full method's service and method names, lower-cased and dotted:
	// "/shop.v1.Orders/Cancel" → "grpc.shop.v1.orders.cancel".
	Action func(fullMethod string) string
	// Logger receives access events that could not be recorded, and the
	// misconfigurations RequireActor and RequireTenant catch. Default:
	// slog.Default().
	Logger *slog.Logger
}

func (c *Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// ActionName is the default Config.Action.
func ActionName(fullMethod string) string {
	m := strings.ToLower(strings.TrimPrefix(fullMethod, "/"))
	m = strings.ReplaceAll(m, "/", ".")
	var b strings.Builder
	b.WriteString("grpc.")
	for _, r := range m {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

func newConfig(cfg *Config) Config {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.RequireActor && c.Actor == nil {
		panic("trailgrpc: Config.RequireActor is set but Config.Actor is nil")
	}
	if c.RequireTenant && c.Tenant == nil {
		panic("trailgrpc: Config.RequireTenant is set but Config.Tenant is nil")
	}
	if c.RequestIDKey == "" {
		c.RequestIDKey = "x-request-id"
	}
	c.RequestIDKey = strings.ToLower(c.RequestIDKey)
	if c.Action == nil {
		c.Action = ActionName
	}
	return c
}

// UnaryServerInterceptor returns the unary interceptor.
func UnaryServerInterceptor(cfg *Config) grpc.UnaryServerInterceptor {
	c := newConfig(cfg)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := c.enter(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		resp, err := handler(ctx, req)
		c.access(ctx, info.FullMethod, err)
		return resp, err
	}
}

// StreamServerInterceptor returns the stream interceptor: the handler's
// stream returns the enriched context from Context.
func StreamServerInterceptor(cfg *Config) grpc.StreamServerInterceptor {
	c := newConfig(cfg)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := c.enter(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		err = handler(srv, &stream{ServerStream: ss, ctx: ctx})
		c.access(ctx, info.FullMethod, err)
		return err
	}
}

type stream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stream) Context() context.Context { return s.ctx }

// enter builds the handler's context.
func (c *Config) enter(ctx context.Context, method string) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	id := first(md, c.RequestIDKey)
	if !trailhttp.ValidRequestID(id) {
		id = trailhttp.NewRequestID()
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs(c.RequestIDKey, id))
	req := trail.Request{
		ID:        id,
		TraceID:   trailhttp.TraceID(first(md, "traceparent")),
		UserAgent: clip(first(md, "user-agent"), 512),
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		host := p.Addr.String()
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if net.ParseIP(host) != nil {
			req.IP = host
		}
	}
	ctx = trail.WithRequest(ctx, req)
	if c.Source != "" {
		ctx = trail.WithSource(ctx, c.Source)
	}
	if c.Actor != nil {
		a, ok := c.Actor(ctx)
		if c.RequireActor && (!ok || a.IsZero()) {
			return nil, c.misconfigured(ctx, method, id, "actor")
		}
		if ok {
			ctx = trail.WithActor(ctx, a)
		}
	}
	if c.Tenant != nil {
		t, ok := c.Tenant(ctx)
		if c.RequireTenant && (!ok || t == "") {
			return nil, c.misconfigured(ctx, method, id, "tenant")
		}
		if ok {
			ctx = trail.WithTenant(ctx, t)
		}
	}
	return ctx, nil
}

func (c *Config) misconfigured(ctx context.Context, method, id, what string) error {
	detail := "trailgrpc: no " + what + " in the call: put trailgrpc's interceptor after your authentication interceptor"
	c.logger().ErrorContext(ctx, detail, "method", method, "request_id", id)
	return status.Error(codes.Internal, detail)
}

// access records the call's access event, when configured. A failure to
// record is logged: the call itself has already been answered.
func (c *Config) access(ctx context.Context, method string, err error) {
	if c.Access == nil {
		return
	}
	ev := trail.Event{Action: c.Action(method), Metadata: map[string]any{"grpc_method": method}}
	if err != nil {
		ev.Outcome = trail.OutcomeFailure
		code := status.Code(err)
		if code == codes.PermissionDenied || code == codes.Unauthenticated {
			ev.Outcome = trail.OutcomeDenied
		}
		ev.Metadata["grpc_code"] = code.String()
	}
	if _, rerr := c.Access.Record(context.WithoutCancel(ctx), ev); rerr != nil {
		c.logger().ErrorContext(ctx, "trailgrpc: access event not recorded", "method", method, "err", rerr)
	}
}

func first(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func clip(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "")
}

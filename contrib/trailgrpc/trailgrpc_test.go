package trailgrpc_test

import (
	"context"
	"net"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/contrib/trailgrpc"
	"github.com/trailhq/trail/trailtest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

type userKey struct{}

// auth is the service's own authentication: a token in the metadata names
// the user and tenant.
func auth(ctx context.Context) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	switch v := md.Get("authorization"); {
	case len(v) == 1 && v[0] == "Bearer nina":
		return context.WithValue(ctx, userKey{}, [2]string{"u_nina", "acme"}), nil
	case len(v) == 1 && v[0] == "Bearer broken":
		return ctx, nil // authenticated nobody, yet let through: the misconfiguration RequireActor catches
	}
	return nil, status.Error(codes.Unauthenticated, "no token")
}

// health records one business event per call, with the handler's context.
type health struct {
	grpc_health_v1.UnimplementedHealthServer
	rec trail.Recorder
}

func (h *health) Check(ctx context.Context, req *grpc_health_v1.HealthCheckRequest) (*grpc_health_v1.HealthCheckResponse, error) {
	if req.Service == "deny" {
		return nil, status.Error(codes.PermissionDenied, "no")
	}
	if _, err := h.rec.Record(ctx, trail.Event{Action: "subscription.update", Target: trail.Target{Type: "subscription", ID: "sub_1"}}); err != nil {
		return nil, err
	}
	return &grpc_health_v1.HealthCheckResponse{Status: grpc_health_v1.HealthCheckResponse_SERVING}, nil
}

func (h *health) Watch(req *grpc_health_v1.HealthCheckRequest, ss grpc.ServerStreamingServer[grpc_health_v1.HealthCheckResponse]) error {
	if _, err := h.rec.Record(ss.Context(), trail.Event{Action: "subscription.watch", Target: trail.Target{Type: "subscription", ID: "sub_1"}}); err != nil {
		return err
	}
	return ss.Send(&grpc_health_v1.HealthCheckResponse{Status: grpc_health_v1.HealthCheckResponse_SERVING})
}

func start(t *testing.T, rec trail.Recorder, cfg *trailgrpc.Config) grpc_health_v1.HealthClient {
	t.Helper()
	unaryAuth := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		ctx, err := auth(ctx)
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
	streamAuth := func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, next grpc.StreamHandler) error {
		ctx, err := auth(ss.Context())
		if err != nil {
			return err
		}
		return next(srv, &wrapped{ss, ctx})
	}
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(unaryAuth, trailgrpc.UnaryServerInterceptor(cfg)),
		grpc.ChainStreamInterceptor(streamAuth, trailgrpc.StreamServerInterceptor(cfg)),
	)
	grpc_health_v1.RegisterHealthServer(srv, &health{rec: rec})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return grpc_health_v1.NewHealthClient(conn)
}

type wrapped struct {
	grpc.ServerStream
	ctx context.Context
}

func (w *wrapped) Context() context.Context { return w.ctx }

func config(access trail.Recorder) *trailgrpc.Config {
	return &trailgrpc.Config{
		Actor: func(ctx context.Context) (trail.Actor, bool) {
			u, ok := ctx.Value(userKey{}).([2]string)
			return trail.Actor{Type: trail.ActorUser, ID: u[0]}, ok
		},
		Tenant: func(ctx context.Context) (string, bool) {
			u, ok := ctx.Value(userKey{}).([2]string)
			return u[1], ok
		},
		RequireActor: true,
		Source:       "orders-grpc",
		Access:       access,
	}
}

func TestInterceptors(t *testing.T) {
	rec := trailtest.NewRecorder(t)
	client := start(t, rec, config(rec))
	traceparent := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx := metadata.AppendToOutgoingContext(context.Background(),
		"authorization", "Bearer nina", "x-request-id", "req-42", "traceparent", traceparent)

	var header metadata.MD
	if _, err := client.Check(ctx, &grpc_health_v1.HealthCheckRequest{}, grpc.Header(&header)); err != nil {
		t.Fatal(err)
	}
	if got := header.Get("x-request-id"); len(got) != 1 || got[0] != "req-42" {
		t.Errorf("response header x-request-id = %v, want [req-42]", got)
	}
	evs := rec.Filter(trailtest.Match{Action: "subscription.update"})
	if len(evs) != 1 {
		t.Fatalf("handler events: %d, want 1", len(evs))
	}
	ev := evs[0]
	if ev.Tenant != "acme" || ev.Actor.ID != "u_nina" || ev.RequestID != "req-42" || ev.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || ev.Source != "orders-grpc" || ev.Actor.IP != "127.0.0.1" {
		t.Errorf("handler event %+v: want tenant acme, actor u_nina, request req-42, the traceparent's trace ID, source orders-grpc, IP 127.0.0.1", ev)
	}
	access := rec.Filter(trailtest.Match{Action: "grpc.grpc.health.v1.health.check"})
	if len(access) != 1 || access[0].Outcome != trail.OutcomeSuccess || access[0].Tenant != "acme" {
		t.Errorf("access events %+v: want one success in acme", access)
	}

	// A denied call: its access event says so.
	if _, err := client.Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: "deny"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("deny: %v", err)
	}
	access = rec.Filter(trailtest.Match{Action: "grpc.grpc.health.v1.health.check", Outcome: trail.OutcomeDenied})
	if len(access) != 1 || access[0].Metadata["grpc_code"] != "PermissionDenied" {
		t.Errorf("denied access events %+v: want one, with grpc_code PermissionDenied", access)
	}

	// The stream interceptor: the handler's stream context carries the same.
	ws, err := client.Watch(ctx, &grpc_health_v1.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Recv(); err != nil {
		t.Fatal(err)
	}
	// The access event is recorded when the handler returns: wait for the
	// end of the stream, which comes after it.
	for {
		if _, err := ws.Recv(); err != nil {
			break
		}
	}
	w := rec.Filter(trailtest.Match{Action: "subscription.watch"})
	if len(w) != 1 || w[0].Tenant != "acme" || w[0].Actor.ID != "u_nina" || w[0].RequestID != "req-42" {
		t.Errorf("stream handler events %+v: want one in acme by u_nina with request req-42", w)
	}
	if n := len(rec.Filter(trailtest.Match{Action: "grpc.grpc.health.v1.health.watch"})); n != 1 {
		t.Errorf("stream access events: %d, want 1", n)
	}

	// No request ID from the client: one is made up and sent back.
	header = nil
	plain := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer nina")
	if _, err := client.Check(plain, &grpc_health_v1.HealthCheckRequest{}, grpc.Header(&header)); err != nil {
		t.Fatal(err)
	}
	if got := header.Get("x-request-id"); len(got) != 1 || len(got[0]) != 32 {
		t.Errorf("generated request ID %v: want 32 hex digits", got)
	}
}

func TestRequireActor(t *testing.T) {
	rec := trailtest.NewRecorder(t)
	client := start(t, rec, config(nil))
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer broken")
	_, err := client.Check(ctx, &grpc_health_v1.HealthCheckRequest{})
	if status.Code(err) != codes.Internal {
		t.Fatalf("a call with no actor under RequireActor: %v, want Internal", err)
	}
	if len(rec.Events()) != 0 {
		t.Errorf("the handler ran: %d events", len(rec.Events()))
	}
}

func TestActionName(t *testing.T) {
	for in, want := range map[string]string{
		"/shop.v1.Orders/Cancel":       "grpc.shop.v1.orders.cancel",
		"/grpc.health.v1.Health/Check": "grpc.grpc.health.v1.health.check",
		"/Weird$Service/Do Thing":      "grpc.weird_service.do_thing",
	} {
		got := trailgrpc.ActionName(in)
		if got != want || !trail.ValidAction(got) {
			t.Errorf("ActionName(%q) = %q (valid %v), want %q", in, got, trail.ValidAction(got), want)
		}
	}
}

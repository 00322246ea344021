package trailotel_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/contrib/trailotel"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailprivacy"
	"github.com/trailhq/trail/trailtest"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func tracer(t *testing.T) (*tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return sr, tp
}

// TestSpanOnStoredEvent records through the embedded store's one-call
// setup with Trace, inside a span: the stored event names the span, is
// schema version 2, and the span links back to it.
func TestSpanOnStoredEvent(t *testing.T) {
	sr, tp := tracer(t)
	ctx := trail.WithTenant(context.Background(), "acme")
	ctx = trail.WithActor(ctx, trail.Actor{Type: trail.ActorUser, ID: "u_nina"})
	// The request's traceparent named the caller's span; ours is a child.
	ctx = trail.WithRequest(ctx, trail.Request{ID: "req-1", TraceID: "0af7651916cd43dd8448eb211c80319c"})

	client, err := trailsqlite.NewClient(ctx, filepath.Join(t.TempDir(), "trail.db"), &trailsqlite.ClientConfig{
		Privacy: trailprivacy.Setup{Plaintext: true},
		Trace:   trailotel.Trace,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	sctx, span := tp.Tracer("test").Start(ctx, "CancelSubscription")
	res, err := client.Record(sctx, trail.Event{Action: "subscription.cancel", Target: trail.Target{Type: "subscription", ID: "sub_1"}})
	if err != nil {
		t.Fatal(err)
	}
	trailotel.Link(sctx, res)
	span.End()

	got, err := client.Get(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	sc := span.SpanContext()
	if got.TraceID != sc.TraceID().String() || got.SpanID != sc.SpanID().String() || got.SchemaVersion != 2 || got.RequestID != "req-1" {
		t.Errorf("stored event trace %q span %q version %d request %q; want the span's %s/%s, version 2, req-1",
			got.TraceID, got.SpanID, got.SchemaVersion, got.RequestID, sc.TraceID(), sc.SpanID())
	}
	ended := sr.Ended()
	if len(ended) != 1 || len(ended[0].Events()) != 1 || ended[0].Events()[0].Name != "trail.event" {
		t.Fatalf("span events: %+v", ended)
	}
	attrs := ended[0].Events()[0].Attributes
	if len(attrs) != 1 || attrs[0].Key != "trail.event_id" || attrs[0].Value.AsString() != res.ID.String() {
		t.Errorf("span event attributes %v, want trail.event_id=%s", attrs, res.ID)
	}

	// Outside any span: the request's trace, no span, version 1.
	res, err = client.Record(ctx, trail.Event{Action: "subscription.view", Target: trail.Target{Type: "subscription", ID: "sub_1"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err = client.Get(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.TraceID != "0af7651916cd43dd8448eb211c80319c" || got.SpanID != "" || got.SchemaVersion != 1 {
		t.Errorf("event outside a span: trace %q span %q version %d; want the request's trace, no span, version 1", got.TraceID, got.SpanID, got.SchemaVersion)
	}
}

// TestWithSpan covers recorders without a Trace hook.
func TestWithSpan(t *testing.T) {
	_, tp := tracer(t)
	rec := trailtest.NewRecorder(t)
	ctx := trail.WithTenant(context.Background(), "acme")
	ctx = trail.WithRequest(ctx, trail.Request{ID: "req-2"})
	if trailotel.WithSpan(ctx) != ctx {
		t.Error("WithSpan without a span changed the context")
	}
	sctx, span := tp.Tracer("test").Start(ctx, "job")
	defer span.End()
	if _, err := rec.Record(trailotel.WithSpan(sctx), trail.Event{Action: "job.run", Actor: trail.Actor{Type: trail.ActorSystem, ID: "worker"}}); err != nil {
		t.Fatal(err)
	}
	ev := rec.Events()[0]
	if ev.SpanID != span.SpanContext().SpanID().String() || ev.TraceID != span.SpanContext().TraceID().String() || ev.RequestID != "req-2" {
		t.Errorf("event %+v: want the span's IDs and request req-2", ev)
	}
}

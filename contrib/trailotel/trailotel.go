// Package trailotel ties Trail's audit events to OpenTelemetry traces: an
// event takes the trace and span IDs of the span active when it is
// recorded, and the span can point back at the event.
//
//	client, err := trailpgx.NewClient(ctx, pool, &trailpgx.ClientConfig{Trace: trailotel.Trace})
//	…
//	ctx, span := tracer.Start(ctx, "CancelSubscription")
//	defer span.End()
//	res, err := client.RecordTx(ctx, tx, ev) // ev.TraceID, ev.SpanID: span's
//	trailotel.Link(ctx, res)                 // span event "trail.event" with the event's ID
//
// The span is the one the service started, not the incoming request's
// parent: trailhttp alone reads only the traceparent header, which names
// the caller's span. Recorders without a Trace hook (trailclient, say) get
// the same with WithSpan(ctx) at the call.
package trailotel

import (
	"context"

	"github.com/trailhq/trail"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Trace returns the trace and span IDs of the span active in ctx, or ""
// and "" when there is none (or it is not sampled-valid). It is the shape of
// trail.Config.Trace and the one-call setups' ClientConfig.Trace.
func Trace(ctx context.Context) (traceID, spanID string) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return "", ""
	}
	return sc.TraceID().String(), sc.SpanID().String()
}

// WithSpan returns ctx whose trail.Request carries the active span's trace
// and span IDs (its other fields kept), for recorders configured without
// Trace. Without an active span it returns ctx unchanged.
func WithSpan(ctx context.Context) context.Context {
	t, s := Trace(ctx)
	if t == "" {
		return ctx
	}
	r, _ := trail.RequestFrom(ctx)
	r.TraceID, r.SpanID = t, s
	return trail.WithRequest(ctx, r)
}

// Link adds the span event "trail.event" to the span active in ctx, with
// the attribute trail.event_id (and trail.duplicate when the event was
// already stored), so that a trace viewer leads to the audit event.
func Link(ctx context.Context, res trail.Result) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	attrs := []attribute.KeyValue{attribute.String("trail.event_id", res.ID.String())}
	if res.Duplicate {
		attrs = append(attrs, attribute.Bool("trail.duplicate", true))
	}
	span.AddEvent("trail.event", trace.WithAttributes(attrs...))
}

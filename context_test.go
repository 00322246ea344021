package trail

import (
	"context"
	"reflect"
	"testing"
)

func fullContext() context.Context {
	ctx := context.Background()
	ctx = WithTenant(ctx, "ctx-tenant")
	ctx = WithActor(ctx, Actor{Type: ActorUser, ID: "ctx-user", OnBehalfOf: &Actor{Type: ActorUser, ID: "ctx-victim"}})
	ctx = WithRequest(ctx, Request{ID: "ctx-req", TraceID: "ctx-trace", IP: "192.0.2.1", UserAgent: "ctx-agent"})
	ctx = WithSource(ctx, "ctx-source")
	return ctx
}

func TestContextAccessors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if _, ok := TenantFrom(ctx); ok {
		t.Error("TenantFrom on an empty context")
	}
	if _, ok := ActorFrom(ctx); ok {
		t.Error("ActorFrom on an empty context")
	}
	if _, ok := RequestFrom(ctx); ok {
		t.Error("RequestFrom on an empty context")
	}
	if _, ok := SourceFrom(ctx); ok {
		t.Error("SourceFrom on an empty context")
	}
	ctx = fullContext()
	if v, ok := TenantFrom(ctx); !ok || v != "ctx-tenant" {
		t.Errorf("TenantFrom = %q %v", v, ok)
	}
	if v, ok := ActorFrom(ctx); !ok || v.ID != "ctx-user" {
		t.Errorf("ActorFrom = %+v %v", v, ok)
	}
	if v, ok := RequestFrom(ctx); !ok || v.ID != "ctx-req" {
		t.Errorf("RequestFrom = %+v %v", v, ok)
	}
	if v, ok := SourceFrom(ctx); !ok || v != "ctx-source" {
		t.Errorf("SourceFrom = %q %v", v, ok)
	}
	// The innermost value wins.
	if v, _ := TenantFrom(WithTenant(ctx, "inner")); v != "inner" {
		t.Errorf("inner tenant = %q", v)
	}
}

func TestFromContextFillsEmptyFields(t *testing.T) {
	t.Parallel()
	var ev Event
	ev.FromContext(fullContext())
	want := Event{
		Tenant: "ctx-tenant",
		Actor: Actor{Type: ActorUser, ID: "ctx-user", IP: "192.0.2.1", UserAgent: "ctx-agent",
			OnBehalfOf: &Actor{Type: ActorUser, ID: "ctx-victim"}},
		RequestID: "ctx-req",
		TraceID:   "ctx-trace",
		Source:    "ctx-source",
	}
	if !reflect.DeepEqual(ev, want) {
		t.Errorf("got  %+v\nwant %+v", ev, want)
	}
	// Filling the event's actor does not write through to the context's.
	a, _ := ActorFrom(fullContext())
	if a.IP != "" {
		t.Errorf("context actor changed: %+v", a)
	}
}

func TestFromContextNeverOverwrites(t *testing.T) {
	t.Parallel()
	tests := map[string]Event{
		"everything set": {
			Tenant:    "mine",
			Actor:     Actor{Type: ActorService, ID: "svc", IP: "198.51.100.9", UserAgent: "mine-agent"},
			RequestID: "my-req", TraceID: "my-trace", Source: "mine",
		},
		// A caller's actor without IP gets the request's client, but its
		// identity is never replaced by the context's actor.
		"actor without client": {Actor: Actor{Type: ActorSystem}},
		"only request id":      {RequestID: "my-req"},
		"only tenant":          {Tenant: "mine"},
		"impersonation":        {Actor: Actor{Type: ActorUser, ID: "agent", OnBehalfOf: &Actor{Type: ActorUser, ID: "cust"}}},
	}
	for name, ev := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			orig := ev
			origActor := ev.Actor
			ev.FromContext(fullContext())
			check := func(field, got, before, fromCtx string) {
				if before != "" && got != before {
					t.Errorf("%s: caller set %q, FromContext wrote %q", field, before, got)
				}
				if before == "" && got != fromCtx {
					t.Errorf("%s: empty, FromContext wrote %q, want %q", field, got, fromCtx)
				}
			}
			check("tenant", ev.Tenant, orig.Tenant, "ctx-tenant")
			check("request_id", ev.RequestID, orig.RequestID, "ctx-req")
			check("trace_id", ev.TraceID, orig.TraceID, "ctx-trace")
			check("source", ev.Source, orig.Source, "ctx-source")
			check("actor.ip", ev.Actor.IP, origActor.IP, "192.0.2.1")
			check("actor.user_agent", ev.Actor.UserAgent, origActor.UserAgent, "ctx-agent")
			if !origActor.IsZero() {
				if ev.Actor.Type != origActor.Type || ev.Actor.ID != origActor.ID || ev.Actor.OnBehalfOf != origActor.OnBehalfOf {
					t.Errorf("actor replaced: %+v -> %+v", origActor, ev.Actor)
				}
			}
		})
	}
}

func TestFromContextEmptyContext(t *testing.T) {
	t.Parallel()
	ev := Event{Action: "user.delete"}
	ev.FromContext(context.Background())
	if !reflect.DeepEqual(ev, Event{Action: "user.delete"}) {
		t.Errorf("empty context changed the event: %+v", ev)
	}
}

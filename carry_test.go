package trail_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/trailhq/trail"
)

func TestCarryKeepsIdentifiersOnly(t *testing.T) {
	ctx := trail.WithTenant(context.Background(), "acme")
	ctx = trail.WithActor(ctx, trail.Actor{Type: trail.ActorUser, ID: "u_nina", Name: "Nina Silva", Email: "nina@acme.test", IP: "203.0.113.9", UserAgent: "Firefox"})
	ctx = trail.WithRequest(ctx, trail.Request{ID: "req-1", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", IP: "203.0.113.9", UserAgent: "Firefox"})
	ctx = trail.WithSource(ctx, "billing")

	b, err := json.Marshal(trail.Carry(ctx))
	if err != nil {
		t.Fatal(err)
	}
	for _, personal := range []string{"Nina", "nina@", "203.0.113.9", "Firefox"} {
		if strings.Contains(string(b), personal) {
			t.Errorf("carried JSON %s holds %q", b, personal)
		}
	}
	if want := `{"tenant":"acme","actor_type":"user","actor_id":"u_nina","request_id":"req-1","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","source":"billing"}`; string(b) != want {
		t.Errorf("carried JSON\n%s\nwant\n%s", b, want)
	}

	// In the worker: a fresh context, restored from the job's arguments.
	var c trail.Carried
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	ev := trail.Event{Action: "subscription.cancel"}
	if err := ev.Fill(c.Restore(context.Background())); err != nil {
		t.Fatal(err)
	}
	if ev.Tenant != "acme" || ev.Actor.Type != trail.ActorUser || ev.Actor.ID != "u_nina" || ev.Actor.Name != "" ||
		ev.RequestID != "req-1" || ev.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || ev.Source != "billing" {
		t.Errorf("restored event %+v", ev)
	}
}

func TestCarryPlatformAndEmpty(t *testing.T) {
	if c := trail.Carry(context.Background()); !c.IsZero() {
		t.Errorf("Carry of an empty context = %+v", c)
	}
	ev := trail.Event{Action: "system.cleanup", Actor: trail.Actor{Type: trail.ActorSystem, ID: "cron"}}
	if err := ev.Fill(trail.Carried{}.Restore(context.Background())); err == nil {
		t.Error("an event restored from nothing has no tenant, yet Fill accepted it")
	}
	c := trail.Carry(trail.WithPlatform(context.Background()))
	if err := ev.Fill(c.Restore(context.Background())); err != nil {
		t.Errorf("a platform job's event: %v", err)
	}
}

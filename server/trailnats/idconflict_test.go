package trailnats_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailnats"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/trailclient"
)

// TestEdgeRefusesIDReuse is issue 13's first finding at the JetStream
// edge: an event ID reused for another event — another tenant's or the
// same tenant's — is refused with the direct store's 409 (same problem,
// naming nothing of the event holding the ID) while JetStream has the ID
// in its duplicate window, instead of 201 and a sink setting it aside
// later. A true retry is a duplicate; trailclient counts a reuse as failed,
// not delivered; the sink stores the first event only and sets nothing
// aside.
func TestEdgeRefusesIDReuse(t *testing.T) {
	natsTargets(t, func(t *testing.T, url string, replicas int) {
		ctx := context.Background()
		st, ks, secret := edgeStore(t)
		_, js := connect(t, url)
		stream, subject := uniqueStream()
		cfg := trailnats.Config{Stream: stream, Subject: subject, Partitions: 4, Replicas: replicas}
		setup(t, js, cfg)
		t.Cleanup(func() { js.DeleteStream(context.Background(), stream) })
		srv, err := trailserver.New(trailserver.Config{Store: &trailnats.Store{Publisher: trailnats.NewPublisher(js, cfg), Read: st},
			Keys: ks, RateLimit: -1, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv)
		t.Cleanup(ts.Close)
		post := func(body any) (int, []byte, trailserver.Problem) {
			t.Helper()
			b, _ := json.Marshal(body)
			req, _ := http.NewRequest("POST", ts.URL+"/v1/events", strings.NewReader(string(b)))
			req.Header.Set("Authorization", "Bearer "+secret)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var raw json.RawMessage
			json.NewDecoder(resp.Body).Decode(&raw)
			var p trailserver.Problem
			if resp.StatusCode >= 400 {
				if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
					t.Fatalf("%d with Content-Type %q: %s", resp.StatusCode, ct, raw)
				}
				json.Unmarshal(raw, &p)
			}
			return resp.StatusCode, raw, p
		}
		event := func(tenant, action string) map[string]any {
			return map[string]any{"id": uuid.NewString(), "tenant": tenant, "action": action,
				"actor": map[string]any{"type": "user", "id": "u_" + tenant}, "target": map[string]any{"type": "subscription", "id": "sub_" + tenant}}
		}

		acme := event("acme", "subscription.update")
		if code, body, _ := post(acme); code != http.StatusCreated {
			t.Fatalf("ingest: %d %s", code, body)
		}
		// globex posts its own event with acme's ID.
		theirs := event("globex", "user.update")
		theirs["id"] = acme["id"]
		code, body, p := post(theirs)
		if code != http.StatusConflict || p.Field != "id" {
			t.Fatalf("another tenant's ID: %d %s, want 409 on id", code, body)
		}
		for _, leak := range []string{"acme", "subscription", "sub_acme"} {
			if strings.Contains(string(body), leak) {
				t.Errorf("the answer names %q of the event holding the ID: %s", leak, body)
			}
		}
		// The same ID reused in acme for another event: the same answer.
		mine := event("acme", "user.delete")
		mine["id"] = acme["id"]
		if code, body, p2 := post(mine); code != http.StatusConflict || p2.Detail != p.Detail || p2.Type != p.Type {
			t.Errorf("reuse in the own tenant: %d %s; want the same 409 as across tenants", code, body)
		}
		// In a batch: the reused ID is named by index.
		if code, body, p := post(map[string]any{"events": []any{theirs, event("globex", "user.update")}}); code != http.StatusConflict || p.Field != "events[0].id" {
			t.Errorf("batch: %d %s, want 409 naming events[0].id", code, body)
		}
		// Behind a new event, the reuse is found only once the new one is on
		// the stream (the request went one event at a time): 409 naming the
		// reuse, and a re-send without it reports the new one as a duplicate.
		fresh := event("globex", "user.update")
		if code, body, p := post(map[string]any{"events": []any{fresh, theirs}}); code != http.StatusConflict || p.Field != "events[1].id" {
			t.Errorf("batch: %d %s, want 409 naming events[1].id", code, body)
		}
		if code, body, _ := post(map[string]any{"events": []any{fresh}}); code != http.StatusOK || !strings.Contains(string(body), `"duplicate"`) {
			t.Errorf("re-send without the reuse: %d %s, want 200 duplicate", code, body)
		}
		// A true retry is a duplicate.
		if code, body, _ := post(acme); code != http.StatusOK || !strings.Contains(string(body), `"duplicate"`) {
			t.Errorf("retry: %d %s, want 200 duplicate", code, body)
		}
		// trailclient: a reuse is an error, not a delivery.
		c, err := trailclient.New(trailclient.Config{BaseURL: ts.URL, Key: secret})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		cctx := trail.WithActor(trail.WithTenant(ctx, "globex"), trail.Actor{Type: trail.ActorUser, ID: "g1"})
		_, err = c.Record(cctx, trail.Event{ID: uuid.MustParse(acme["id"].(string)), Action: "user.update", Target: trail.Target{Type: "user", ID: "g2"}})
		var ae *trailclient.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusConflict {
			t.Fatalf("trailclient Record with acme's ID from globex = %v, want a 409 APIError", err)
		}

		// A sink stores acme's event as it was, and has nothing to set aside.
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		sink := trailnats.NewSink(js, st, trailnats.SinkConfig{Config: cfg, MaxWait: 50 * time.Millisecond})
		done := make(chan struct{})
		go func() { sink.Run(sctx); close(done) }()
		id := uuid.MustParse(acme["id"].(string))
		var got trail.Event
		waitFor(t, "acme's event stored", time.Minute, func() bool { got, err = st.Get(ctx, id); return err == nil })
		stop()
		<-done
		if got.Tenant != "acme" || got.Action != "subscription.update" {
			t.Errorf("stored under the ID: %+v, want acme's subscription.update", got)
		}
		if s := sink.Stats(); s.Conflicts != 0 {
			t.Errorf("the sink set %d events aside: the edge let a reuse through", s.Conflicts)
		}
	})
}

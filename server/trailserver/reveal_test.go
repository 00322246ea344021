package trailserver_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailserver"
)

// marker is a Revealer that marks what it revealed, standing in for the
// privacy layer's decryption.
type marker struct{}

func (marker) Reveal(ctx context.Context, ev *trail.Event) error {
	ev.Description = "revealed:" + ev.Description
	return nil
}

// TestRevealOnEveryRead checks that every endpoint that returns events
// passes them through Config.Reveal, and that the store keeps the stored form.
func TestRevealOnEveryRead(t *testing.T) {
	f := newFixture(t, backends[0], func(c *trailserver.Config) { c.Reveal = marker{} })
	for _, path := range []string{
		"/v1/events?tenant=acme&action=subscription.*",
		"/v1/events/" + f.acmeEvent.String(),
		"/v1/objects/subscription/sub_acme/history",
		"/v1/export?format=jsonl&action=subscription.update",
		"/v1/export?format=csv&action=subscription.update",
	} {
		r := f.do("GET", path, "readerA", nil)
		if r.status != 200 || !strings.Contains(string(r.body), "revealed:Changed subscription plan to pro") {
			t.Errorf("%s: %d %s", path, r.status, clip(r.body))
		}
		if strings.Count(string(r.body), "revealed:revealed:") > 0 {
			t.Errorf("%s: revealed twice", path)
		}
	}
	// The tail's backlog and live events too.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.ts.URL+"/v1/tail?action=subscription.*&backlog=1", nil)
	req.Header.Set("Authorization", "Bearer "+f.secret["readerA"])
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var data []string
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			data = append(data, d)
			if len(data) == 2 {
				break
			}
		}
		if sc.Text() == ": streaming" {
			live := newEvent("acme")
			live["action"] = "subscription.cancel"
			live["description"] = "Cancelled"
			f.json("POST", "/v1/events", "ingestA", live)
		}
	}
	if len(data) != 2 || !strings.Contains(data[0], `"revealed:Changed subscription plan to pro"`) || !strings.Contains(data[1], `"revealed:Cancelled"`) {
		t.Fatalf("tail: %q", data)
	}
	ev, err := f.store.Get(context.Background(), f.acmeEvent)
	if err != nil || ev.Description != "Changed subscription plan to pro" {
		t.Fatalf("the store changed: %q %v", ev.Description, err)
	}
}

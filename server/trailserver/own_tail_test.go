package trailserver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailserver"
)

// TestOwnEventsReachTail: the events the server records about its own
// administration — viewer settings, viewer tokens, API keys — reach a live
// tail like ingested ones, from this server (the store feed is off here, so
// nothing arrives unless the server publishes it).
func TestOwnEventsReachTail(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b, func(c *trailserver.Config) { c.TailPoll = -1 })
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		want := []string{"viewer_settings.update", "viewer_token.create", "api_key.create", "api_key.revoke"}
		req, _ := http.NewRequestWithContext(ctx, "GET", f.ts.URL+"/v1/tail?tenant=acme&action="+strings.Join(want, ","), nil)
		req.Header.Set("Authorization", "Bearer "+f.secret["adminA"])
		resp, err := f.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("tail: %d", resp.StatusCode)
		}
		sc := bufio.NewScanner(resp.Body)
		var got []string
		for len(got) < len(want) && sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ev trail.Event
				if err := json.Unmarshal([]byte(d), &ev); err != nil {
					t.Fatalf("tail event %q: %v", d, err)
				}
				got = append(got, ev.Action)
			}
			if sc.Text() != ": streaming" {
				continue
			}
			if r := f.json("PUT", "/v1/viewer-settings/acme", "adminA", map[string]any{"frame_origins": []string{"https://app.example.com"}}); r.status != http.StatusOK {
				t.Fatalf("viewer settings: %d %s", r.status, r.body)
			}
			f.viewerToken("adminA", map[string]any{"tenant": "acme"})
			r := f.json("POST", "/v1/keys", "adminA", map[string]any{"tenant": "acme", "role": "reader", "name": "tail test"})
			var k struct{ ID string }
			if r.status != http.StatusCreated || json.Unmarshal(r.body, &k) != nil {
				t.Fatalf("create key: %d %s", r.status, r.body)
			}
			if r := f.do("DELETE", "/v1/keys/"+k.ID, "adminA", nil); r.status != http.StatusNoContent {
				t.Fatalf("revoke key: %d %s", r.status, r.body)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("the tail got %q (%v), want %q", got, sc.Err(), want)
		}
	})
}

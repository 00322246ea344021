package trailserver_test

import (
	"bufio"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/trailhq/trail/server/trailserver"
)

// TestTailEndsWithItsKey: a live tail whose key is revoked ends at the next
// keep-alive with an "ended" event, while another key's tail goes on.
func TestTailEndsWithItsKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b, func(c *trailserver.Config) { c.TailHeartbeat = 20 * time.Millisecond })
		open := func(key string) *bufio.Scanner {
			t.Helper()
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			req, _ := http.NewRequestWithContext(ctx, "GET", f.ts.URL+"/v1/tail?tenant=acme", nil)
			req.Header.Set("Authorization", "Bearer "+f.secret[key])
			resp, err := f.ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { resp.Body.Close() })
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("tail as %s: %d", key, resp.StatusCode)
			}
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() && sc.Text() != ": streaming" {
			}
			return sc
		}
		revoked, other := open("readerA"), open("readerAll")
		if err := f.keys.Revoke(context.Background(), f.key["readerA"].ID, time.Now()); err != nil {
			t.Fatal(err)
		}
		var lines []string
		for revoked.Scan() {
			lines = append(lines, revoked.Text())
		}
		if len(lines) < 3 || lines[len(lines)-3] != "event: ended" {
			t.Fatalf("the revoked key's tail ended with %q", lines[max(0, len(lines)-4):])
		}
		// The other key's tail still gets keep-alives after that.
		for i := 0; i < 2; {
			if !other.Scan() {
				t.Fatal("another key's tail ended too")
			}
			if other.Text() == ": keep-alive" {
				i++
			}
		}
	})
}

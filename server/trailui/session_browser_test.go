package trailui_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/trailhq/trail/server/trailserver"
)

// TestBrowserSessions: a restart keeps the browser signed in (the cookie is
// signed with a key kept in the store, docs/ui.md), and the live tail of a
// session that has ended offers to sign in again instead of retrying.
func TestBrowserSessions(t *testing.T) {
	ctx, _ := browser(t)
	clk := &clockAt{t: time.Now()}
	s := newSite(t, clk.now)

	t.Run("a restart keeps the user signed in", func(t *testing.T) {
		signIn(t, ctx, s, "acme")
		// A new server process on the same store, on another port of the
		// same host (cookies do not depend on the port); the first one is
		// gone.
		srv, err := trailserver.New(trailserver.Config{Store: s.store, Keys: s.keys, RateLimit: -1, Now: clk.now})
		if err != nil {
			t.Fatal(err)
		}
		restarted := httptest.NewServer(srv)
		t.Cleanup(func() { srv.Close(); restarted.Close() })
		do(t, ctx, chromedp.Navigate(restarted.URL+"/ui/"))
		waitFor(t, ctx, `location.pathname === "/ui/" && !!document.getElementById("filters") && document.getElementById("viewer-tenant").textContent.includes("acme")`)
	})

	t.Run("the live tail asks to sign in again when the session ends", func(t *testing.T) {
		// Still signed in from the first subtest: the cookie is good on
		// the first server too.
		do(t, ctx, chromedp.Navigate(s.url("/ui/tail")))
		waitFor(t, ctx, `document.getElementById("tail-status").textContent === "Following."`)
		clk.add(9 * time.Hour) // past the 8 h session
		s.srv.Close()          // the stream breaks (a restart, a proxy)
		waitFor(t, ctx, `!!document.getElementById("tail-signin") && document.getElementById("tail-status").textContent.startsWith("Your session has ended.")`)
		href := run(t, ctx, chromedp.Evaluate[string](`document.getElementById("tail-signin").getAttribute("href")`))
		if href != "/ui/login?next=%2Fui%2Ftail" {
			t.Fatalf("sign-in link %q", href)
		}
	})
}

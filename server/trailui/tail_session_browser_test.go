package trailui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/server/trailui"
)

// TestBrowserTailSessionEnds: an open live tail notices, while the server
// runs on, that its key was revoked, that its session expired, or that it
// was signed out elsewhere: the server ends the stream at a keep-alive
// and the page offers to sign in again instead of following on.
func TestBrowserTailSessionEnds(t *testing.T) {
	ctx, _ := browser(t)
	clk := &clockAt{t: time.Now()}
	s := newSite(t, clk.now)
	// A replica on the same store whose keep-alives (the checks) come every
	// 50 ms instead of 15 s.
	srv, err := trailserver.New(trailserver.Config{Store: s.store, Keys: s.keys, RateLimit: -1, Now: clk.now, TailHeartbeat: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { srv.Close(); ts.Close() })

	const following = `document.getElementById("tail-status").textContent === "Following."`
	const ended = `!!document.getElementById("tail-signin") && document.getElementById("tail-status").textContent.startsWith("Your session has ended.")`
	follow := func(key string) {
		t.Helper()
		signIn(t, ctx, s, key) // the cookie is good on every replica of the host
		do(t, ctx, chromedp.Navigate(ts.URL+"/ui/tail"))
		waitFor(t, ctx, following)
	}

	t.Run("the key is revoked", func(t *testing.T) {
		follow("acme")
		k, err := s.keys.Lookup(context.Background(), trailserver.HashKey(s.secret["acme"]))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.keys.Revoke(context.Background(), k.ID, clk.now()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ctx, ended)
		if href := run(t, ctx, chromedp.Evaluate[string](`document.getElementById("tail-signin").getAttribute("href")`)); href != "/ui/login?next=%2Fui%2Ftail" {
			t.Fatalf("sign-in link %q", href)
		}
	})

	t.Run("the session expires", func(t *testing.T) {
		follow("globex")
		clk.add(9 * time.Hour) // past the 8 h session; the key lives on
		waitFor(t, ctx, ended)
	})

	t.Run("signed out elsewhere", func(t *testing.T) {
		follow("reader")
		// Another tab or device with the same session signs out: a client
		// given the browser's cookie, with the page's CSRF token.
		var cookies []*network.Cookie
		do(t, ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{s.url("/ui/")}})
			if err == nil {
				cookies = res.Cookies
			}
			return err
		}))
		other := s.client()
		for _, ck := range cookies {
			if ck.Name == trailui.SessionCookie {
				other.c.Jar.SetCookies(mustURL(t, s.url("/ui/")), []*http.Cookie{{Name: ck.Name, Value: ck.Value, Path: "/ui/"}})
			}
		}
		if code, _, _ := other.get("/ui/"); code != http.StatusOK || other.csrf == "" {
			t.Fatalf("the browser's session elsewhere: %d", code)
		}
		if code, _, h := other.post("/ui/logout", url.Values{"csrf": {other.csrf}}); code != http.StatusSeeOther || h.Get("Location") != "/ui/login" {
			t.Fatalf("sign-out: %d %s", code, h.Get("Location"))
		}
		waitFor(t, ctx, ended)
	})
}

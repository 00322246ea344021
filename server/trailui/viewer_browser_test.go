package trailui_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// api calls the site's API with the named key.
func (s *site) api(method, path, key string, body any) (int, []byte) {
	s.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, s.url(path), bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+s.secret[key])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	out.ReadFrom(resp.Body)
	return resp.StatusCode, out.Bytes()
}

func (s *site) viewerURL(req map[string]any) (viewerURL, token string) {
	s.t.Helper()
	code, b := s.api("POST", "/v1/viewer-tokens", "admin", req)
	if code != http.StatusCreated {
		s.t.Fatalf("viewer token: %d %s", code, b)
	}
	var vt struct{ Token, URL string }
	json.Unmarshal(b, &vt)
	return s.url(vt.URL), vt.Token
}

// saasPage is a page of "the SaaS" on its own loopback origin that embeds
// the viewer with embed.js, as docs/ui.md shows.
func saasPage(t *testing.T, trailURL, viewerURL string) *httptest.Server {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>SaaS settings</title>
<script src="%s/viewer/static/embed.js" defer></script></head>
<body><h1>Your organization's audit log</h1>
<trail-viewer id="audit" src="%s"></trail-viewer></body></html>`, html.EscapeString(trailURL), html.EscapeString(viewerURL))
	}))
	t.Cleanup(ts.Close)
	return ts
}

// childFrame returns the URL (or, for an error page, the unreachable URL)
// of the page's first child frame once it has one.
func childFrame(t *testing.T, ctx context.Context) (url, unreachable string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		var tree *page.FrameTree
		err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			res, err := cdp.Call(ctx, tg, page.GetFrameTree, cdp.Empty{})
			tree = res.FrameTree
			return err
		}))
		if err == nil && tree != nil && len(tree.ChildFrames) > 0 {
			f := tree.ChildFrames[0].Frame
			if f.URL != "" && f.URL != "about:blank" {
				return f.URL, f.UnreachableURL
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no child frame")
	return "", ""
}

// TestBrowserViewer: a SaaS page on another origin embeds the tenant-facing
// viewer for one tenant; an origin not configured for that tenant is
// refused by Chromium (CSP frame-ancestors); the token shows one tenant
// only, and fails when changed to another tenant or once expired.
func TestBrowserViewer(t *testing.T) {
	ctx, dialogs := browser(t)
	clk := &clockAt{t: time.Now()}
	s := newSite(t, clk.now)

	vURL, token := s.viewerURL(map[string]any{"tenant": "acme", "viewer": map[string]any{"id": "cust_1", "name": "Cora"}})
	allowedPage, otherPage := saasPage(t, s.ts.URL, vURL), saasPage(t, s.ts.URL, vURL)
	// Settings are read on every request: they apply to the token issued.
	if code, b := s.api("PUT", "/v1/viewer-settings/acme", "admin", map[string]any{
		"frame_origins": []string{allowedPage.URL}, "name": "Acme Cloud", "accent": "#7a1fa2",
	}); code != http.StatusOK {
		t.Fatalf("settings: %d %s", code, b)
	}

	t.Run("the configured origin embeds the viewer, sized to it", func(t *testing.T) {
		do(t, ctx, chromedp.Navigate(allowedPage.URL+"/settings/audit"))
		waitFor(t, ctx, `document.getElementById("audit").dataset.state === "ready" && parseInt(document.querySelector("#audit iframe").style.height) > 400`)
		frames := run(t, ctx, chromedp.Nodes(chromedp.CSS("#audit iframe")))
		rows := run(t, ctx, chromedp.Nodes(chromedp.CSSAll("#events tbody tr"), chromedp.FromNode(frames[0])))
		if len(rows) < 10 {
			t.Fatalf("%d rows in the embedded viewer", len(rows))
		}
		for _, r := range rows {
			if tn := r.AttributeValue("data-tenant"); tn != "acme" {
				t.Fatalf("embedded viewer of acme shows a %q row", tn)
			}
		}
		brand := run(t, ctx, chromedp.Text(chromedp.ID("viewer-brand"), chromedp.FromNode(frames[0])))
		if strings.TrimSpace(brand) != "Acme Cloud" {
			t.Fatalf("brand %q", brand)
		}
		furl, unreachable := childFrame(t, ctx)
		if unreachable != "" || !strings.HasPrefix(furl, s.ts.URL+"/viewer/") {
			t.Fatalf("frame %q (unreachable %q)", furl, unreachable)
		}
		shot(t, ctx, "ui-viewer.png")
	})

	t.Run("no serious accessibility violation, light and dark", func(t *testing.T) {
		for _, scheme := range []string{"light", "dark"} {
			colorScheme(t, ctx, scheme)
			do(t, ctx, chromedp.Navigate(vURL))
			waitFor(t, ctx, `document.querySelectorAll("#events tbody tr").length > 0`)
			axeCheck(t, ctx, "viewer ("+scheme+")")
			do(t, ctx, chromedp.Navigate(s.url("/viewer/?token=nope")))
			waitFor(t, ctx, `!!document.getElementById("viewer-error")`)
			axeCheck(t, ctx, "viewer error ("+scheme+")")
		}
		colorScheme(t, ctx, "light")
	})

	t.Run("another origin is refused by the browser", func(t *testing.T) {
		do(t, ctx, chromedp.Navigate(otherPage.URL+"/settings/audit"))
		furl, unreachable := childFrame(t, ctx)
		if !strings.HasPrefix(furl, "chrome-error://") || !strings.HasPrefix(unreachable, s.ts.URL+"/viewer/") {
			t.Fatalf("frame from a disallowed origin: %q (unreachable %q)", furl, unreachable)
		}
		if st := run(t, ctx, chromedp.Evaluate[string](`document.getElementById("audit").dataset.state || ""`)); st != "" {
			t.Fatalf("embed state %q from a disallowed origin", st)
		}
	})

	t.Run("the token fails for another tenant and after it expires", func(t *testing.T) {
		parts := strings.Split(token, ".")
		claims := mustB64(t, parts[1])
		forged := "v1." + b64(strings.Replace(claims, `"ten":"acme"`, `"ten":"globex"`, 1)) + "." + parts[2]
		do(t, ctx, chromedp.Navigate(s.url("/viewer/?token="+url.QueryEscape(forged))))
		waitFor(t, ctx, `!!document.getElementById("viewer-error") && !document.getElementById("events")`)
		clk.add(16 * time.Minute)
		do(t, ctx, chromedp.Navigate(vURL))
		waitFor(t, ctx, `!!document.getElementById("viewer-error") && document.getElementById("viewer-error").textContent.includes("expired")`)
	})
	if n := dialogs.Load(); n != 0 {
		t.Fatalf("%d JavaScript dialogs", n)
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func mustB64(t testing.TB, s string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

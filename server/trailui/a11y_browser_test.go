package trailui_test

import (
	"context"
	_ "embed"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// axeJS is axe-core, vendored with its license (testdata/axe/README.md).
//
//go:embed testdata/axe/axe.min.js
var axeJS string

type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target []any `json:"target"`
	} `json:"nodes"`
}

// axeCheck runs axe-core on the current page and fails t on every serious
// or critical violation, naming the rule and the elements.
func axeCheck(t *testing.T, ctx context.Context, page string) int {
	t.Helper()
	waitFor(t, ctx, `document.readyState === "complete" && !!document.querySelector("main")`)
	if !run(t, ctx, chromedp.Evaluate[bool](`typeof axe === "object"`)) {
		run(t, ctx, chromedp.Evaluate[bool](axeJS+";true"))
	}
	out := run(t, ctx, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify(r.violations))`, chromedp.EvalAwaitPromise))
	var vs []axeViolation
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		t.Fatalf("%s: axe result: %v", page, err)
	}
	n := 0
	for _, v := range vs {
		switch v.Impact {
		case "serious", "critical":
			n++
			var where []string
			for _, nd := range v.Nodes {
				b, _ := json.Marshal(nd.Target)
				where = append(where, string(b))
			}
			t.Errorf("%s: axe %s (%s): %s — %d elements: %s", page, v.ID, v.Impact, v.Help, len(v.Nodes), strings.Join(where[:min(len(where), 5)], " "))
		default:
			t.Logf("%s: axe %s (%s): %s", page, v.ID, v.Impact, v.Help)
		}
	}
	return n
}

// TestBrowserAccessibility: axe-core finds no serious or critical
// violation on any page, in light and dark mode (issue 15 item 5); the skip
// link and "/" lead to the content and the search; at 390 px the list
// scrolls only downwards.
func TestBrowserAccessibility(t *testing.T) {
	ctx, _ := browser(t)
	s := newSite(t, nil)
	do(t, ctx, chromedp.Navigate(s.url("/ui/")))
	waitFor(t, ctx, settled+` && !!document.getElementById("key")`)
	axeCheck(t, ctx, "sign-in")
	signIn(t, ctx, s, "admin")
	sub := s.acmeSub.String()
	pages := []struct{ name, path string }{
		{"list", "/ui/"},
		{"list filtered", "/ui/?tenant=acme&action=subscription.*&range=7d"},
		{"list empty", "/ui/?tenant=acme&action=nothing.here"},
		{"bad filter", "/ui/?action=Bad"},
		{"access log", "/ui/access"},
		{"detail", "/ui/events/" + sub},
		{"history", "/ui/objects/subscription/sub_acme?tenant=acme"},
		{"actor", "/ui/actors/user%3Au_1?tenant=acme"},
		{"tail", "/ui/tail?tenant=acme"},
		{"not found", "/ui/nope"},
	}
	for _, dark := range []bool{false, true} {
		scheme := "light"
		if dark {
			scheme = "dark"
		}
		colorScheme(t, ctx, scheme)
		for _, p := range pages {
			do(t, ctx, chromedp.Navigate(s.url(p.path)))
			axeCheck(t, ctx, p.name+" ("+scheme+")")
		}
		if dark {
			bg := run(t, ctx, chromedp.Evaluate[string](`getComputedStyle(document.body).backgroundColor`))
			if bg != "rgb(13, 17, 23)" {
				t.Fatalf("dark mode background %q", bg)
			}
		}
	}
	colorScheme(t, ctx, "light")

	// Keyboard: the first Tab reaches the skip link, which leads to main;
	// "/" focuses the search field.
	do(t, ctx, chromedp.Navigate(s.url("/ui/?tenant=acme")))
	waitFor(t, ctx, settled+` && !!document.getElementById("events")`)
	do(t, ctx, chromedp.KeyEvent("\t"))
	waitFor(t, ctx, `document.activeElement && document.activeElement.classList.contains("skip")`)
	do(t, ctx, chromedp.KeyEvent("\r"))
	waitFor(t, ctx, `location.hash === "#main" && document.activeElement.id === "main"`)
	do(t, ctx, chromedp.KeyEvent("/"))
	waitFor(t, ctx, `document.activeElement && document.activeElement.id === "f-text" && document.activeElement.value === ""`)

	// 390 px: nothing wider than the screen, every event a card.
	cdpCall(t, ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: 390, Height: 844, DeviceScaleFactor: 2, Mobile: true})
	do(t, ctx, chromedp.Navigate(s.url("/ui/?tenant=acme")))
	waitFor(t, ctx, settled+` && !!document.getElementById("events")`)
	if w := run(t, ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > 390 {
		t.Errorf("at 390 px the list is %d px wide", w)
	}
	if disp := run(t, ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("#events tbody tr")).display`)); disp != "block" {
		t.Errorf("at 390 px a row is display %q, want a card (block)", disp)
	}
	axeCheck(t, ctx, "list at 390 px")
	if *screenshots != "" {
		png := run(t, ctx, chromedp.CaptureScreenshot()) // the first screen, as a phone shows it
		if err := os.WriteFile(filepath.Join(*screenshots, "ui-mobile.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cdpCall(t, ctx, emulation.ClearDeviceMetricsOverride, cdp.Empty{})
}

// cdpCall sends one DevTools command to the page.
func cdpCall[P any](t *testing.T, ctx context.Context, cmd cdp.Command[P, cdp.Empty], params P) {
	t.Helper()
	do(t, ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, cmd, params)
		return err
	}))
}

func colorScheme(t *testing.T, ctx context.Context, scheme string) {
	t.Helper()
	cdpCall(t, ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
}

package trailui_test

import (
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// TestBrowserPhone: at 390 px the filter form folds behind a "Filters"
// summary that counts and names what is applied, so that the first screen
// shows events, as cards, with nothing wider than the screen; the summary
// opens the form, a filter applied there folds it again, and "/" opens it
// to the search field. Wider, the form shows without the summary.
func TestBrowserPhone(t *testing.T) {
	ctx, _ := browser(t)
	s := newSite(t, nil)
	signIn(t, ctx, s, "admin")
	const filtered = "/ui/?tenant=acme&action=*.update&range=30d"

	// At desktop width the form shows, folded or not, and the summary hides.
	do(t, ctx, chromedp.Navigate(s.url(filtered)))
	waitFor(t, ctx, settled+` && !!document.getElementById("events")`)
	if !run(t, ctx, chromedp.Evaluate[bool](`!document.getElementById("filter-box").open && document.getElementById("f-actor").checkVisibility() && !document.getElementById("filter-summary").checkVisibility()`)) {
		t.Fatal("at 1360 px the filter form is hidden or its summary shown")
	}

	cdpCall(t, ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: 390, Height: 844, DeviceScaleFactor: 2, Mobile: true})
	defer cdpCall(t, ctx, emulation.ClearDeviceMetricsOverride, cdp.Empty{})
	do(t, ctx, chromedp.Navigate(s.url(filtered)))
	waitFor(t, ctx, settled+` && !!document.getElementById("events") && innerWidth === 390`)
	if run(t, ctx, chromedp.Evaluate[bool](`document.getElementById("filter-box").open || document.getElementById("f-actor").checkVisibility() || document.getElementById("f-since").checkVisibility()`)) {
		t.Fatal("at 390 px the filter form is unfolded")
	}
	if got := textOf(t, ctx, "#filter-count"); got != "3 active" {
		t.Fatalf("summary count %q, want 3 active", got)
	}
	if got := textOf(t, ctx, "#filter-summary .filter-applied"); got != " action=*.update since=30d tenant=acme" {
		t.Fatalf("summary names %q", got)
	}
	// The first screen holds the summary and whole event cards.
	cards := run(t, ctx, chromedp.Evaluate[int](`[...document.querySelectorAll("#events tbody tr")].filter(tr => tr.getBoundingClientRect().bottom <= innerHeight).length`))
	if cards < 1 {
		t.Fatalf("no whole event on the first screen (first card at %v px)", run(t, ctx, chromedp.Evaluate[float64](`document.querySelector("#events tbody tr").getBoundingClientRect().top`)))
	}
	if disp := run(t, ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("#events tbody tr")).display`)); disp != "block" {
		t.Errorf("a row is display %q, want a card (block)", disp)
	}
	if w := run(t, ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > 390 {
		t.Errorf("the page is %d px wide", w)
	}

	// The summary opens the form; a filter applied there folds it again.
	click(t, ctx, "#filter-summary")
	waitFor(t, ctx, `document.getElementById("filter-box").open && document.getElementById("f-actor").checkVisibility()`)
	if w := run(t, ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > 390 {
		t.Errorf("the open form is %d px wide", w)
	}
	setValue(t, ctx, "f-target", "subscription:sub_acme")
	click(t, ctx, "#apply")
	waitFor(t, ctx, `location.search.includes("target=") && !!document.getElementById("filter-count") && document.getElementById("filter-count").textContent === "4 active" && !document.getElementById("filter-box").open`)

	// "/" unfolds the form to the search field.
	do(t, ctx, chromedp.KeyEvent("/"))
	waitFor(t, ctx, `document.getElementById("filter-box").open && document.activeElement && document.activeElement.id === "f-text" && document.activeElement.checkVisibility()`)

	// The live tail's form folds the same way.
	do(t, ctx, chromedp.Navigate(s.url("/ui/tail?tenant=acme")))
	waitFor(t, ctx, `document.getElementById("tail-status").textContent === "Following." && !!document.getElementById("filter-count")`)
	if run(t, ctx, chromedp.Evaluate[bool](`document.querySelector("#filter-box form").checkVisibility() || document.getElementById("tail").getBoundingClientRect().top >= innerHeight`)) {
		t.Fatal("the tail's form is unfolded or its events below the first screen")
	}
}

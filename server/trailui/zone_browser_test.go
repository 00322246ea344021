package trailui_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/trailhq/trail"
)

// TestBrowserZoneSwitch: switching between the browser's zone (Los
// Angeles) and UTC shows the same events, their times and the filter's
// inputs now in the other zone, and the URL says the same instants in it;
// the switch reads the page's URL when used, not the one the header was
// drawn for (htmx replaces the page under it). It used to reload the page
// with since/until read in the new zone: the range moved by 8 hours.
func TestBrowserZoneSwitch(t *testing.T) {
	ctx, _ := browser(t)
	s := newSite(t, nil)
	la, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Fatal(err)
	}
	cdpCall(t, ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "America/Los_Angeles"})
	signIn(t, ctx, s, "admin")

	// Until is one minute after an acme event, in Los Angeles: read in UTC
	// instead, the bound would fall 7 or 8 hours before it.
	var ev trail.Event
	for i := len(s.data.Events) - 1; i >= 0; i-- {
		if e := s.data.Events[i]; e.Tenant == "acme" && e.OccurredAt.Before(s.now.Add(-48*time.Hour)) {
			ev = e
			break
		}
	}
	until := ev.OccurredAt.In(la).Truncate(time.Minute).Add(time.Minute)
	since := until.AddDate(0, 0, -10)
	page, err := s.store.Query(context.Background(), trail.Query{Tenant: "acme", Since: since, Until: until, Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	want := ids(page.Events)
	if !slices.Contains(want, ev.ID.String()) {
		t.Fatalf("the range lacks %s", ev.ID)
	}
	const wall = "2006-01-02T15:04"
	// state is the list's rows, zone, inputs and URL bounds as one string.
	state := func() (rows []string, zone, inputs, bounds string) {
		rows = run(t, ctx, chromedp.Evaluate[[]string](rowIDs))
		zone = textOf(t, ctx, "#zone-name")
		inputs = run(t, ctx, chromedp.Evaluate[string](`document.getElementById("f-since").value + " " + document.getElementById("f-until").value`))
		q := mustURL(t, run(t, ctx, chromedp.Location())).Query()
		return rows, zone, inputs, q.Get("since") + " " + q.Get("until")
	}

	// The filter typed and applied in Los Angeles (an htmx swap: the
	// header and its switch stay from the page before).
	do(t, ctx, chromedp.Navigate(s.url("/ui/?tenant=acme")))
	waitFor(t, ctx, settled+` && !!document.getElementById("events")`)
	setValue(t, ctx, "f-since", since.Format(wall))
	setValue(t, ctx, "f-until", until.Format(wall))
	click(t, ctx, "#apply")
	waitFor(t, ctx, `location.search.includes("until=") && !!document.getElementById("events")`)
	rows, zone, inputs, bounds := state()
	if !slices.Equal(rows, want) || !strings.HasPrefix(zone, "America/Los_Angeles") {
		t.Fatalf("in Los Angeles (%s): rows %v\nwant %v", zone, rows, want)
	}
	laWall := since.Format(wall) + " " + until.Format(wall)
	if inputs != laWall || bounds != laWall {
		t.Fatalf("inputs %q, URL %q; want %q", inputs, bounds, laWall)
	}

	click(t, ctx, "#zone-switch")
	waitFor(t, ctx, `document.readyState === "complete" && !!document.getElementById("zone-name") && document.getElementById("zone-name").textContent === "UTC" && !!document.getElementById("events")`)
	rows, _, inputs, bounds = state()
	utcWall := since.UTC().Format(wall) + " " + until.UTC().Format(wall)
	if !slices.Equal(rows, want) {
		t.Fatalf("after the switch to UTC: rows %v\nwant %v", rows, want)
	}
	if inputs != utcWall || bounds != utcWall {
		t.Fatalf("in UTC: inputs %q, URL %q; want %q", inputs, bounds, utcWall)
	}
	times := run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#events time")].map(t => t.textContent)`))
	for _, tm := range times {
		if !strings.HasSuffix(tm, " UTC") {
			t.Fatalf("in UTC, a time shows %q", tm)
		}
	}
	if b := textOf(t, ctx, "#zone-switch"); b != "Show my time zone" {
		t.Fatalf("the switch says %q", b)
	}

	// And back, after paging through htmx once more.
	do(t, ctx, chromedp.Navigate(s.url("/ui/?tenant=acme")))
	waitFor(t, ctx, `document.readyState === "complete" && !!document.getElementById("events") && document.getElementById("zone-name").textContent === "UTC"`)
	setValue(t, ctx, "f-since", since.UTC().Format(wall))
	setValue(t, ctx, "f-until", until.UTC().Format(wall))
	click(t, ctx, "#apply")
	waitFor(t, ctx, `location.search.includes("until=") && !!document.getElementById("events")`)
	click(t, ctx, "#zone-switch")
	waitFor(t, ctx, `document.readyState === "complete" && !!document.getElementById("zone-name") && document.getElementById("zone-name").textContent.startsWith("America/Los_Angeles") && !!document.getElementById("events")`)
	rows, _, inputs, bounds = state()
	if !slices.Equal(rows, want) || inputs != laWall || bounds != laWall {
		t.Fatalf("back in Los Angeles: inputs %q, URL %q (want %q); rows %v\nwant %v", inputs, bounds, laWall, rows, want)
	}
	if u := mustURL(t, run(t, ctx, chromedp.Location())); u.Query().Get("tenant") != "acme" || u.Path != "/ui/" {
		t.Fatalf("the switch lost the page: %s", u)
	}
}

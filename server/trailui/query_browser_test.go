package trailui_test

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/trailhq/trail"
)

// rowIDs is the event IDs of the list's rows, top to bottom.
const rowIDs = `[...document.querySelectorAll("#events tbody tr")].map(tr => tr.dataset.id)`

func ids(evs []trail.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID.String()
	}
	return out
}

// TestBrowserQueries is issue 15's "done when" in Chromium: a user in Los
// Angeles finds everything one user did on one local day; *.delete in one
// tenant over the last 7 days is one query (a quick range that keeps the
// values typed); the default list after 30 page views shows none of the
// viewer's own reads, which the Access log shows; the zone switch persists.
func TestBrowserQueries(t *testing.T) {
	ctx, _ := browser(t)
	s := newSite(t, nil)
	la, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Fatal(err)
	}
	cdpCall(t, ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "America/Los_Angeles"})
	signIn(t, ctx, s, "admin")

	t.Run("a user in Los Angeles finds one local day", func(t *testing.T) {
		// The acme user and Los Angeles day with the most events, among
		// those that include an evening event (a UTC date after the local
		// one): read in UTC, the day would lose it.
		type key struct{ actor, day string }
		n, evening := map[key]int{}, map[key]bool{}
		for _, ev := range s.data.Events {
			if ev.Tenant != "acme" || ev.Actor.Type != trail.ActorUser {
				continue
			}
			k := key{ev.Actor.String(), ev.OccurredAt.In(la).Format("2006-01-02")}
			n[k]++
			if ev.OccurredAt.UTC().Format("2006-01-02") != k.day {
				evening[k] = true
			}
		}
		var best key
		for k, c := range n {
			if evening[k] && c <= 50 && (c > n[best] || c == n[best] && k.day+k.actor > best.day+best.actor) {
				best = k
			}
		}
		if n[best] < 2 {
			t.Fatal("the demo data has no acme user with an evening event in Los Angeles")
		}
		from, _ := time.ParseInLocation("2006-01-02", best.day, la)
		typ, id, _ := strings.Cut(best.actor, ":")
		page, err := s.store.Query(context.Background(), trail.Query{Tenant: "acme", ActorType: trail.ActorType(typ), ActorID: id,
			Since: from, Until: from.AddDate(0, 0, 1), Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		want := ids(page.Events)

		do(t, ctx, chromedp.Navigate(s.url("/ui/")))
		waitFor(t, ctx, settled+` && !!document.getElementById("filters")`)
		if z := textOf(t, ctx, "#zone-name"); !strings.HasPrefix(z, "America/Los_Angeles (P") {
			t.Fatalf("zone shown %q", z)
		}
		setValue(t, ctx, "f-tenant", "acme")
		setValue(t, ctx, "f-actor", best.actor)
		setValue(t, ctx, "f-since", best.day+"T00:00")
		setValue(t, ctx, "f-until", from.AddDate(0, 0, 1).Format("2006-01-02")+"T00:00")
		click(t, ctx, "#apply")
		waitFor(t, ctx, `location.search.includes("until=") && !!document.getElementById("events")`)
		if got := run(t, ctx, chromedp.Evaluate[[]string](rowIDs)); !slices.Equal(got, want) {
			t.Fatalf("%s on %s (Los Angeles): rows %v\nwant %v", best.actor, best.day, got, want)
		}
		// Every time shown is on that local day and names its zone.
		times := run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#events time")].map(t => t.textContent)`))
		for _, tm := range times {
			if !strings.HasPrefix(tm, best.day+" ") || !(strings.HasSuffix(tm, " PST") || strings.HasSuffix(tm, " PDT")) {
				t.Fatalf("time %q is not shown on %s in Los Angeles", tm, best.day)
			}
		}
		// The inputs show what was typed, in the zone shown.
		if v := run(t, ctx, chromedp.Evaluate[string](`document.getElementById("f-since").value`)); v != best.day+"T00:00" {
			t.Fatalf("since input %q", v)
		}

		// The switch to UTC is kept (a cookie) and changes every time shown
		// (TestBrowserZoneSwitch checks the rest). It is a form whose answer
		// leads back to the page: the test waits for that page's state.
		click(t, ctx, "#zone-switch")
		waitFor(t, ctx, `document.readyState === "complete" && document.cookie.split("; ").includes("trail_tz=utc") && !!document.getElementById("zone-name") && document.getElementById("zone-name").textContent === "UTC" && !!document.getElementById("events")`)
		tm := textOf(t, ctx, "#events time")
		if !strings.HasSuffix(tm, " UTC") {
			t.Fatalf("after the switch, time %q", tm)
		}
		do(t, ctx, chromedp.Navigate(s.url("/ui/?tenant=acme")))
		waitFor(t, ctx, `document.readyState === "complete" && !!document.getElementById("zone-name")`)
		if z := textOf(t, ctx, "#zone-name"); z != "UTC" {
			t.Fatalf("the UTC choice was not kept: %q", z)
		}
		click(t, ctx, "#zone-switch")
		waitFor(t, ctx, `document.readyState === "complete" && document.cookie.split("; ").includes("trail_tz=local") && !!document.getElementById("zone-name") && document.getElementById("zone-name").textContent.startsWith("America/Los_Angeles")`)
	})

	t.Run("*.delete in one tenant this week is one query", func(t *testing.T) {
		do(t, ctx, chromedp.Navigate(s.url("/ui/")))
		waitFor(t, ctx, settled+` && !!document.getElementById("filters")`)
		// Typed, not applied: the quick range keeps them.
		setValue(t, ctx, "f-tenant", "acme")
		setValue(t, ctx, "f-action", "*.delete")
		click(t, ctx, `button[name="range"][value="7d"]`)
		waitFor(t, ctx, `location.search.includes("range=7d") && (!!document.getElementById("events") || !!document.getElementById("no-events"))`)
		now := time.Now()
		page, err := s.store.Query(context.Background(), trail.Query{Tenant: "acme", Action: "*.delete", Since: now.Add(-7 * 24 * time.Hour), Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) < 2 {
			t.Fatalf("the demo has %d acme deletions this week", len(page.Events))
		}
		got := run(t, ctx, chromedp.Evaluate[[]string](rowIDs))
		if !slices.Equal(got, ids(page.Events)) {
			t.Fatalf("rows %v\nwant %v", got, ids(page.Events))
		}
		actions := run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#events tbody tr td:nth-child(4)")].map(td => td.textContent.trim())`))
		for _, a := range actions {
			if !strings.HasSuffix(a, ".delete") {
				t.Fatalf("action %q under *.delete", a)
			}
		}
		// The count and the histogram cover the whole result, not the page.
		cs, err := s.store.Counts(context.Background(), trail.CountQuery{Tenant: "acme", Action: "*.delete", Since: now.Add(-7 * 24 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		for _, c := range cs {
			total += c.N
		}
		if got := textOf(t, ctx, "#total"); got != strconv.FormatInt(total, 10) {
			t.Fatalf("count %q, want %d", got, total)
		}
		bars := run(t, ctx, chromedp.Evaluate[[]int](`[...document.querySelectorAll("#histogram rect")].map(r => +r.dataset.n)`))
		var sum int64
		for _, n := range bars {
			sum += int64(n)
		}
		if len(bars) != 8 || sum != total {
			t.Fatalf("histogram: %d bars summing to %d, want 8 days and %d", len(bars), sum, total)
		}
		// The bars are Los Angeles days, the page's zone, as the store
		// counts them in that zone.
		la, err := time.LoadLocation("America/Los_Angeles")
		if err != nil {
			t.Fatal(err)
		}
		csLA, err := s.store.Counts(context.Background(), trail.CountQuery{Tenant: "acme", Action: "*.delete", Since: now.Add(-7 * 24 * time.Hour), Zone: la})
		if err != nil {
			t.Fatal(err)
		}
		wantDay := map[string]int{}
		for _, c := range csLA {
			wantDay[c.Day.In(la).Format(time.DateOnly)] += int(c.N)
		}
		gotDay := run(t, ctx, chromedp.Evaluate[map[string]int](`Object.fromEntries([...document.querySelectorAll("#histogram rect")].filter(r => +r.dataset.n > 0).map(r => [r.dataset.day, +r.dataset.n]))`))
		if !maps.Equal(gotDay, wantDay) {
			t.Fatalf("histogram days %v, want Los Angeles days %v", gotDay, wantDay)
		}
		shot(t, ctx, "ui-query.png")
		if on := textOf(t, ctx, `button.chip.on`); on != "Last 7 days" {
			t.Fatalf("active chip %q", on)
		}
		if v := run(t, ctx, chromedp.Evaluate[string](`document.getElementById("f-tenant").value + " " + document.getElementById("f-action").value`)); v != "acme *.delete" {
			t.Fatalf("the form lost the typed values: %q", v)
		}
		// Metadata search: a support ticket's number, typed in lower case.
		var ticket string
		for _, ev := range s.data.Events {
			if tk, ok := ev.Metadata["ticket"].(string); ok && ev.Tenant == "acme" {
				ticket = tk
			}
		}
		if ticket == "" {
			t.Fatal("no acme event with a ticket in the demo data")
		}
		mp, err := s.store.Query(context.Background(), trail.Query{Tenant: "acme", Metadata: ticket, Limit: 50})
		if err != nil || len(mp.Events) == 0 {
			t.Fatalf("store: %d events, %v", len(mp.Events), err)
		}
		do(t, ctx, chromedp.Navigate(s.url("/ui/?tenant=acme")))
		waitFor(t, ctx, settled+` && !!document.getElementById("f-meta")`)
		setValue(t, ctx, "f-meta", strings.ToLower(ticket))
		click(t, ctx, "#apply")
		waitFor(t, ctx, `location.search.includes("metadata=") && !!document.getElementById("events")`)
		if got := run(t, ctx, chromedp.Evaluate[[]string](rowIDs)); !slices.Equal(got, ids(mp.Events)) {
			t.Fatalf("metadata %s: rows %v, want %v", ticket, got, ids(mp.Events))
		}
		// Negation: everything but the deletions and updates.
		do(t, ctx, chromedp.Navigate(s.url("/ui/?tenant=acme&action=!*.delete,!*.update")))
		waitFor(t, ctx, `!!document.getElementById("events")`)
		actions = run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#events tbody tr td:nth-child(4)")].map(td => td.textContent.trim())`))
		for _, a := range actions {
			if strings.HasSuffix(a, ".delete") || strings.HasSuffix(a, ".update") {
				t.Fatalf("action %q under !*.delete,!*.update", a)
			}
		}
	})

	t.Run("30 page views leave the default list as it was", func(t *testing.T) {
		reads := func() int64 {
			cs, err := s.store.Counts(context.Background(), trail.CountQuery{AllTenants: true, Action: "audit.read"})
			if err != nil {
				t.Fatal(err)
			}
			var n int64
			for _, c := range cs {
				n += c.N
			}
			return n
		}
		do(t, ctx, chromedp.Navigate(s.url("/ui/?tenant=acme")))
		waitFor(t, ctx, `!!document.getElementById("events")`)
		before := run(t, ctx, chromedp.Evaluate[[]string](rowIDs))
		views := []string{"/ui/?tenant=acme", "/ui/events/" + s.acmeSub.String(), "/ui/objects/subscription/sub_acme?tenant=acme", "/ui/?tenant=acme&action=user.*", "/ui/"}
		for i := range 30 {
			n0 := reads()
			do(t, ctx, chromedp.Navigate(s.url(views[i%len(views)])))
			waitFor(t, ctx, `document.readyState === "complete" && !!document.querySelector("main h1")`)
			if d := reads() - n0; d != 1 {
				t.Fatalf("view %d (%s) recorded %d access events, want 1", i, views[i%len(views)], d)
			}
		}
		do(t, ctx, chromedp.Navigate(s.url("/ui/?tenant=acme")))
		waitFor(t, ctx, `!!document.getElementById("events")`)
		after := run(t, ctx, chromedp.Evaluate[[]string](rowIDs))
		if !slices.Equal(after, before) {
			t.Fatalf("the default list changed after 30 views:\n%v\nwas\n%v", after, before)
		}
		if run(t, ctx, chromedp.Evaluate[bool](`[...document.querySelectorAll("#events tbody tr")].some(tr => tr.textContent.includes("audit."))`)) {
			t.Fatal("the default list shows access events")
		}
		// The Access log has them, newest first: these very page views.
		click(t, ctx, "#nav-access")
		waitFor(t, ctx, `location.pathname === "/ui/access" && !!document.getElementById("events")`)
		acts := run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#events tbody tr td:nth-child(4)")].map(td => td.textContent.trim())`))
		if len(acts) < 30 || slices.ContainsFunc(acts, func(a string) bool { return a != "audit.read" }) {
			t.Fatalf("access log: %d rows %v", len(acts), acts)
		}
		shot(t, ctx, "ui-access.png")
		// Its export holds them too, and the default export none.
		csv := run(t, ctx, chromedp.Evaluate[string](`fetch(document.getElementById("export-csv").href).then(r => r.text())`, chromedp.EvalAwaitPromise))
		if !strings.Contains(csv, "audit.read") {
			t.Fatal("the access log's export has no audit.read")
		}
		do(t, ctx, chromedp.Navigate(s.url("/ui/?tenant=acme")))
		waitFor(t, ctx, `!!document.getElementById("export-csv")`)
		csv = run(t, ctx, chromedp.Evaluate[string](`fetch(document.getElementById("export-csv").href).then(r => r.text())`, chromedp.EvalAwaitPromise))
		if strings.Contains(csv, "audit.read") || strings.Count(csv, "\n") < 10 {
			t.Fatalf("the default export: %d lines, audit.read %v", strings.Count(csv, "\n"), strings.Contains(csv, "audit.read"))
		}
	})
}

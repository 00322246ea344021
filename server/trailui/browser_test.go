package trailui_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
)

var screenshots = flag.String("screenshots", "", "write PNG screenshots of the main pages into this directory (e.g. ../../docs)")

// chromiumPath finds Debian's chromium (or TRAIL_CHROMIUM).
func chromiumPath() (string, error) {
	if p := os.Getenv("TRAIL_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium on PATH (apt-get install -y chromium)")
}

// browser starts headless Chromium for t; it skips loudly on a laptop
// without it and fails in CI (TRAIL_REQUIRE_SERVICES=1).
func browser(t *testing.T) (context.Context, *atomic.Int32) {
	t.Helper()
	path, err := chromiumPath()
	if err != nil {
		testenv.Unavailable(t, "headless Chromium", err)
		return nil, nil
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1360, 900),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(acancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		testenv.Unavailable(t, "headless Chromium", err)
		return nil, nil
	}
	// Every JavaScript dialog (an XSS's alert) is counted and dismissed.
	dialogs := &atomic.Int32{}
	if err := chromedp.Listen(ctx, func(ev any) {
		switch ev.(type) {
		case *page.EventJavascriptDialogOpening, page.EventJavascriptDialogOpening:
			dialogs.Add(1)
			go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}); err != nil {
		t.Fatal(err)
	}
	// Show times in a zone that is not UTC, to see app.js localize them.
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Tokyo"})
		return err
	})); err != nil {
		t.Fatal(err)
	}
	return ctx, dialogs
}

func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls a JavaScript condition in the page, across navigations
// (an evaluation cut by one is retried).
func waitFor(t *testing.T, ctx context.Context, cond string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ok, err := chromedp.Run(tctx, chromedp.Evaluate[bool](cond))
		cancel()
		if err == nil && ok {
			return
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	t.Fatalf("waiting for %s at %s: %v", cond, loc, last)
}

func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if *screenshots == "" {
		return
	}
	png := run(t, ctx, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(*screenshots, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", name, len(png))
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// textOf waits for an element of the current page and returns its text,
// read by JavaScript: no DOM node ID is held across a navigation or an htmx
// swap that may replace the node ("No node with given id found").
func textOf(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	waitFor(t, ctx, `!!document.querySelector(`+js(css)+`)`)
	return run(t, ctx, chromedp.Evaluate[string](`(document.querySelector(`+js(css)+`) || {textContent: ""}).textContent`))
}

// setValue waits for a form field and sets its value, checking that the
// field took it (a datetime-local input refuses a value in another form).
func setValue(t *testing.T, ctx context.Context, id, v string) {
	t.Helper()
	waitFor(t, ctx, `(e => !!e && (e.value = `+js(v)+`, e.value === `+js(v)+`))(document.getElementById(`+js(id)+`))`)
}

// click waits for an element and clicks it once. The click is scheduled
// to run after the evaluation returns: a click that navigates must not cut
// its own evaluation short, which a retry would take for a failure and
// click again (run 9 of 30 switched the zone twice that way).
func click(t *testing.T, ctx context.Context, css string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		waitFor(t, ctx, `!!document.querySelector(`+js(css)+`)`)
		tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ok, err := chromedp.Run(tctx, chromedp.Evaluate[bool](`(e => !!e && (setTimeout(() => e.click(), 0), true))(document.querySelector(`+js(css)+`))`))
		cancel()
		if err == nil && ok {
			return
		}
		// The element went with a navigation before the click was
		// scheduled: nothing was clicked, look for it again.
	}
	t.Fatalf("could not click %s", css)
}

// settled is true once a page is loaded and rendered for the browser's
// zone: app.js reloads a page rendered for another zone (the first visit),
// and nothing should be typed into a page about to go.
const settled = `document.readyState === "complete" && document.body.dataset.tz === Intl.DateTimeFormat().resolvedOptions().timeZone`

func signIn(t *testing.T, ctx context.Context, s *site, key string) {
	t.Helper()
	do(t, ctx, chromedp.Navigate(s.url("/ui/")))
	waitFor(t, ctx, settled+` && !!document.getElementById("key")`)
	setValue(t, ctx, "key", s.secret[key])
	click(t, ctx, "#signin")
	waitFor(t, ctx, `location.pathname === "/ui/" && !!document.getElementById("filters") && document.readyState === "complete"`)
}

func TestBrowser(t *testing.T) {
	ctx, dialogs := browser(t)
	s := newSite(t, nil)

	// The newest acme event by a person, and its day: filter on both.
	var want trail.Event
	for i := len(s.data.Events) - 1; i >= 0; i-- {
		if ev := s.data.Events[i]; ev.Tenant == "acme" && ev.Actor.Type == trail.ActorUser {
			want = ev
			break
		}
	}
	actor := want.Actor.String()
	// The browser is in Tokyo (browser): the date typed is a Tokyo date.
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	day := want.OccurredAt.In(tokyo).AddDate(0, 0, -20).Format("2006-01-02")
	var wantIDs []string
	for i := len(s.data.Events) - 1; i >= 0 && len(wantIDs) < 50; i-- {
		ev := s.data.Events[i]
		if ev.Tenant == "acme" && ev.Actor.String() == actor && ev.OccurredAt.In(tokyo).Format("2006-01-02") >= day {
			wantIDs = append(wantIDs, ev.ID.String())
		}
	}

	t.Run("sign in and filter by tenant, user and date", func(t *testing.T) {
		signIn(t, ctx, s, "admin")
		// htmx is a deferred script: wait for the page to finish loading
		// (run 7 of 30 read it before it ran), then check its settings.
		waitFor(t, ctx, `document.readyState === "complete"`)
		if ok := run(t, ctx, chromedp.Evaluate[bool](`typeof htmx === "object" && htmx.config.allowEval === false && htmx.config.includeIndicatorStyles === false`)); !ok {
			t.Fatal("htmx is not loaded with allowEval=false under the CSP")
		}
		setValue(t, ctx, "f-tenant", "acme")
		setValue(t, ctx, "f-actor", actor)
		setValue(t, ctx, "f-since", day+"T00:00")
		click(t, ctx, "#apply")
		waitFor(t, ctx, `location.search.includes("actor=") && document.querySelectorAll("#events tbody tr").length > 0`)
		ids := run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#events tbody tr")].map(tr => tr.dataset.id)`))
		if !slices.Equal(ids, wantIDs) {
			t.Fatalf("rows %v\nwant %v", ids, wantIDs)
		}
		tenants := run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#events tbody tr td:nth-child(2)")].map(td => td.textContent.trim())`))
		for _, tn := range tenants {
			if tn != "acme" {
				t.Fatalf("a %q row under tenant=acme", tn)
			}
		}
		loc := run(t, ctx, chromedp.Location())
		u, _ := url.Parse(loc)
		if q := u.Query(); q.Get("tenant") != "acme" || q.Get("actor") != actor || q.Get("since") != day+"T00:00" {
			t.Fatalf("the URL does not carry the filter: %s", loc)
		}
		// Times are shown in the viewer's zone, named, and the header says
		// which zone that is.
		txt := textOf(t, ctx, "#events time")
		if !strings.HasSuffix(txt, " JST") {
			t.Fatalf("time not shown in Asia/Tokyo: %q", txt)
		}
		if z := textOf(t, ctx, "#zone-name"); z != "Asia/Tokyo (JST)" {
			t.Fatalf("zone shown: %q", z)
		}
		// The shared link works on its own, with no JavaScript involved.
		do(t, ctx, chromedp.Navigate(loc))
		waitFor(t, ctx, settled+` && !!document.getElementById("events")`)
		ids2 := run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#events tbody tr")].map(tr => tr.dataset.id)`))
		if !slices.Equal(ids2, wantIDs) {
			t.Fatalf("the shared link shows %v", ids2)
		}
		// A bad filter comes back as the form with its message.
		setValue(t, ctx, "f-action", "Bad.Action")
		click(t, ctx, "#apply")
		waitFor(t, ctx, `!!document.getElementById("filter-error") && document.getElementById("filter-error").textContent.includes("action")`)
	})

	t.Run("open a detail and see the diff, follow the history", func(t *testing.T) {
		sub, err := s.store.Get(context.Background(), s.acmeSub)
		if err != nil {
			t.Fatal(err)
		}
		do(t, ctx, chromedp.Navigate(s.url("/ui/?tenant=acme&action=subscription.*")))
		waitFor(t, ctx, settled+` && !!document.getElementById("events")`)
		shot(t, ctx, "ui-list.png")
		click(t, ctx, `#events tbody tr[data-id="`+sub.ID.String()+`"] td:last-child a`)
		waitFor(t, ctx, `!!document.getElementById("changes")`)
		diff := textOf(t, ctx, "#changes table.diff")
		for _, c := range sub.Changes {
			if !strings.Contains(diff, c.Field) || !strings.Contains(diff, strings.Trim(string(c.New), `"`)) || !strings.Contains(diff, strings.Trim(string(c.Old), `"`)) {
				t.Fatalf("diff %q lacks %s: %s → %s", diff, c.Field, c.Old, c.New)
			}
		}
		integrity := textOf(t, ctx, "#integrity")
		if !strings.Contains(integrity, "pending") {
			t.Fatalf("integrity: %q", integrity)
		}
		shot(t, ctx, "ui-detail.png")
		click(t, ctx, "#history-link")
		waitFor(t, ctx, `!!document.getElementById("timeline")`)
		n := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("#timeline > li").length`))
		first := run(t, ctx, chromedp.Evaluate[string](`document.querySelector("#timeline > li").dataset.id`))
		if n < 2 || first != sub.ID.String() {
			t.Fatalf("timeline: %d entries, newest %s, want %s first", n, first, sub.ID)
		}
		state := textOf(t, ctx, "#state-table")
		if !strings.Contains(state, strings.Trim(string(sub.Changes[0].New), `"`)) {
			t.Fatalf("state %q lacks the current %s", state, sub.Changes[0].Field)
		}
		shot(t, ctx, "ui-history.png")
		// As of a time before the change, the field shows the old value.
		// The as-of time is typed in the zone shown (Tokyo).
		// A datetime-local input drops ":00" seconds from its value (run 6
		// of 30 met an event at :01).
		at := sub.OccurredAt.Add(-time.Second).In(tokyo)
		atValue := at.Format("2006-01-02T15:04:05")
		if at.Second() == 0 {
			atValue = at.Format("2006-01-02T15:04")
		}
		setValue(t, ctx, "f-at", atValue)
		click(t, ctx, "#apply-at")
		waitFor(t, ctx, `location.search.includes("at=") && !!document.getElementById("state-table")`)
		state = textOf(t, ctx, "#state-table")
		if !strings.Contains(state, strings.Trim(string(sub.Changes[0].Old), `"`)) {
			t.Fatalf("state before the change %q lacks the old %s", state, sub.Changes[0].Field)
		}
		// The detail's actor link asks for the actor in the event's tenant.
		do(t, ctx, chromedp.Navigate(s.url("/ui/events/"+sub.ID.String())))
		click(t, ctx, "#actor-link")
		waitFor(t, ctx, `location.pathname.startsWith("/ui/actors/") && document.querySelectorAll("#events tbody tr").length > 0`)
		loc := run(t, ctx, chromedp.Evaluate[string](`location.pathname + location.search`))
		if want := "/ui/actors/" + url.PathEscape(sub.Actor.String()) + "?tenant=acme"; loc != want {
			t.Fatalf("actor link leads to %s, want %s", loc, want)
		}
		rows := run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#events tbody tr")].map(tr => tr.dataset.id + " " + tr.children[1].textContent)`))
		if !slices.Contains(rows, sub.ID.String()+" acme") {
			t.Fatalf("the actor page lacks the event: %v", rows)
		}
		for _, r := range rows {
			if !strings.HasSuffix(r, " acme") {
				t.Fatalf("the actor page in acme shows %s", r)
			}
		}
	})

	t.Run("live tail", func(t *testing.T) {
		do(t, ctx, chromedp.Navigate(s.url("/ui/tail?tenant=acme")))
		waitFor(t, ctx, `document.getElementById("tail-status").textContent === "Following." && document.querySelectorAll("#tail-rows tr").length > 0`)
		id := uuid.Must(uuid.NewV7()).String()
		body := `{"id":"` + id + `","tenant":"acme","actor":{"type":"user","id":"tail-1"},"action":"project.create","description":"live <b>tail</b>"}`
		req, _ := http.NewRequest("POST", s.url("/v1/events"), strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+s.secret["admin"])
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("ingest: %d", resp.StatusCode)
		}
		waitFor(t, ctx, `!!document.querySelector('#tail-rows tr[data-id="`+id+`"]')`)
		desc := textOf(t, ctx, `#tail-rows tr[data-id="`+id+`"] td.desc`)
		if desc != "live <b>tail</b>" {
			t.Fatalf("tail row description %q", desc)
		}
		href := run(t, ctx, chromedp.Evaluate[string](`document.querySelector('#tail-rows tr[data-id="`+id+`"] a[href*="/actors/"]').getAttribute("href")`))
		if href != "/ui/actors/user%3Atail-1?tenant=acme" {
			t.Fatalf("tail row actor link %q", href)
		}
		shot(t, ctx, "ui-tail.png")
	})

	t.Run("a tenant viewer sees its tenant only", func(t *testing.T) {
		// Wait on the page's state, never on a node a navigation may
		// replace: this subtest failed about 1 run in 5 reading <body> by
		// its node ID right after a navigation (issue 15).
		do(t, ctx, chromedp.Navigate(s.url("/ui/")))
		click(t, ctx, `form[action="/ui/logout"] button`)
		waitFor(t, ctx, `!!document.getElementById("key")`)
		signIn(t, ctx, s, "acme")
		if run(t, ctx, chromedp.Evaluate[bool](`document.getElementById("f-tenant") !== null || document.querySelector("[name=tenant]") !== null`)) {
			t.Fatal("a tenant viewer sees the tenant picker")
		}
		resp := run(t, ctx, chromedp.NavigateResponse(s.url("/ui/events/"+s.globexEvent.String())))
		if resp.Status != 404 {
			t.Fatalf("globex event by URL: %d, want 404", resp.Status)
		}
		waitFor(t, ctx, `document.readyState === "complete" && !!document.querySelector("main")`)
		body := run(t, ctx, chromedp.Evaluate[string](`document.body.textContent`))
		if strings.Contains(strings.ToLower(body), "globex") {
			t.Fatal("the 404 page tells about globex")
		}
		do(t, ctx, chromedp.Navigate(s.url("/ui/?tenant=globex")))
		waitFor(t, ctx, `!!document.getElementById("events")`)
		globex := run(t, ctx, chromedp.Evaluate[[]bool](`[...document.querySelectorAll("#events tbody tr")].map(tr => tr.textContent.includes("globex"))`))
		if len(globex) == 0 || slices.Contains(globex, true) {
			t.Fatal("globex rows for an acme viewer")
		}
	})

	t.Run("a stored script renders as text", func(t *testing.T) {
		do(t, ctx, chromedp.Navigate(s.url("/ui/events/"+s.xssEvent.String())))
		desc := textOf(t, ctx, "#description")
		if desc != xssDescription {
			t.Fatalf("description %q, want the raw text", desc)
		}
		do(t, ctx, chromedp.Navigate(s.url("/ui/?action=project.update")))
		waitFor(t, ctx, `!!document.getElementById("events")`)
		if run(t, ctx, chromedp.Evaluate[bool](`window.__xss !== undefined || document.querySelector("main script, main img") !== null`)) {
			t.Fatal("the stored script ran or became markup")
		}
		if n := dialogs.Load(); n != 0 {
			t.Fatalf("%d JavaScript dialogs opened", n)
		}
	})
}

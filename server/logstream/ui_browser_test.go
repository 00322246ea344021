package logstream

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailseal"
)

// uiOutage is how long TestUILogStreamsBrowser keeps both receivers down
// during ingest (issue 17's "Done when" says 60 s); -short: only until the
// page shows both streams in error.
var uiScreenshots = flag.String("ui-screenshots", "", "write PNG screenshots of the log-streams page into this directory (e.g. ../../docs)")

var uiOutage = flag.Duration("ui-outage", 60*time.Second, "how long TestUILogStreamsBrowser keeps the receivers down")

// uiChromium starts headless Chromium with a fresh profile, as trailui's
// browser tests do; it skips loudly without one and fails in CI.
func uiChromium(t *testing.T) context.Context {
	t.Helper()
	path := os.Getenv("TRAIL_CHROMIUM")
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path != "" {
			break
		}
		path, _ = exec.LookPath(name)
	}
	if path == "" {
		testenv.Unavailable(t, "headless Chromium", errors.New("no chromium on PATH (apt-get install -y chromium)"))
		return nil
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1360, 1000))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(acancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		testenv.Unavailable(t, "headless Chromium", err)
		return nil
	}
	return ctx
}

func jsq(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// uiWait polls a JavaScript condition in the page (across navigations and
// htmx swaps) until it holds; the bound only turns a hang into a failure.
func uiWait(t *testing.T, ctx context.Context, bound time.Duration, cond string) {
	t.Helper()
	deadline := time.Now().Add(bound)
	var last error
	for time.Now().Before(deadline) {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ok, err := chromedp.Run(tctx, chromedp.Evaluate[bool](cond))
		cancel()
		if err == nil && ok {
			return
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector("main") || document.body).innerText`))
	t.Fatalf("waiting for %s at %s: %v\n%s", cond, loc, last, html)
}

func uiEval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %v", expr[:min(len(expr), 80)], err)
	}
	return v
}

func uiNavigate(t *testing.T, ctx context.Context, u string) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.Navigate(u)); err != nil {
		t.Fatal(err)
	}
}

// uiFill sets the form's fields by id (a checkbox by "on"/"") and checks
// that each took its value.
func uiFill(t *testing.T, ctx context.Context, fields map[string]string) {
	t.Helper()
	for id, v := range fields {
		uiWait(t, ctx, 15*time.Second, `(e => !!e && (e.type === "checkbox" ? (e.checked = `+jsq(v)+` === "on", true) : (e.value = `+jsq(v)+`, e.value === `+jsq(v)+`)))(document.getElementById(`+jsq(id)+`))`)
	}
}

// uiShot writes a full-page screenshot with -ui-screenshots.
func uiShot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if *uiScreenshots == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*uiScreenshots, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// uiDark emulates prefers-color-scheme (light or dark).
func uiDark(t *testing.T, ctx context.Context, scheme string) {
	t.Helper()
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
		return err
	}))
	if err != nil {
		t.Fatal(err)
	}
}

// uiAxe runs the vendored axe-core on the page and fails on serious or
// critical violations, as trailui's TestBrowserAccessibility does.
func uiAxe(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	axe, err := os.ReadFile("../trailui/testdata/axe/axe.min.js")
	if err != nil {
		t.Fatalf("axe-core: %v", err)
	}
	if !uiEval[bool](t, ctx, `typeof axe === "object"`) {
		uiEval[bool](t, ctx, string(axe)+";true")
	}
	out := uiEval[string](t, ctx, `axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify(r.violations.filter(v => v.impact === "serious" || v.impact === "critical").map(v => v.id + " (" + v.impact + "): " + v.help + " " + JSON.stringify(v.nodes.slice(0, 5).map(n => n.target)))))`)
	var vs []string
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		t.Fatalf("%s: axe result %q: %v", page, out, err)
	}
	for _, v := range vs {
		t.Errorf("%s: axe %s", page, v)
	}
}

// TestUILogStreamsBrowser is issue 17's "Done when" in a browser: a tenant
// admin signs in to the UI, sees a refused destination's reason beside the
// form, and creates a webhook stream (an HTTPS receiver that verifies every
// signature with the secret typed in the form, trusted through the form's
// CA field) and a syslog stream (Debian's rsyslogd). Events are ingested over
// the HTTP API while both receivers are stopped for -ui-outage (60 s) and
// started again (rsyslogd killed with SIGKILL; the syslog stream is RELP); the page shows both streams in error, then healthy with
// every event delivered; every event arrives, in log order, numbered without
// a gap, each webhook request's signature verified. The secret is then
// rotated in the page (the new one shown once) and the receiver, told only
// the new one, verifies what follows. axe-core finds no serious violation on
// the page, its form in error or after a creation.
func TestUILogStreamsBrowser(t *testing.T) {
	ctx := uiChromium(t)
	rs := startRsyslogRELP(t)
	if rs == nil {
		return
	}
	const hookSecret = "whsec_acme_receiver_0123456789"
	rcv := newWebhookReceiver(t, hookSecret)
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rcv.srv.Certificate().Raw}))

	f := newFixture(t, onSQLite)
	st := f.events.(*trailsqlite.Store)
	bg := context.Background()
	keys, err := trailserver.NewSQLKeyStore(bg, st.DB(), trailserver.DialectSQLite)
	if err != nil {
		t.Fatal(err)
	}
	_, adminSecret, err := trailserver.CreateKey(bg, keys, trailserver.NewKeyRequest{Tenant: "acme", Role: trailserver.RoleAdmin, Name: "acme admin"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, ingestSecret, err := trailserver.CreateKey(bg, keys, trailserver.NewKeyRequest{Tenant: "acme", Role: trailserver.RoleIngest, Name: "acme app"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	runner := &Runner{Manager: f.m, Reveal: f.priv.Reveal, Poll: 50 * time.Millisecond, BaseBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	srv, err := trailserver.New(trailserver.Config{Store: st, Keys: keys, RateLimit: -1, Transform: f.priv, Reveal: f.priv, LogStreams: API(f.m, runner)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { srv.Close(); ts.Close() })

	// The leader's work: seal and deliver, in the background, as trail serve does.
	runCtx, stopRun := context.WithCancel(bg)
	var sealing, delivering sync.WaitGroup
	sealing.Go(func() {
		for runCtx.Err() == nil {
			if _, err := f.sealer.Step(runCtx); err != nil && runCtx.Err() == nil {
				t.Errorf("seal: %v", err)
				return
			}
			select {
			case <-runCtx.Done():
			case <-time.After(100 * time.Millisecond): // the sealer's poll interval
			}
		}
	})
	runCtx2, stopDelivery := context.WithCancel(bg)
	delivering.Go(func() { runner.Run(runCtx2) })
	t.Cleanup(func() { stopRun(); sealing.Wait(); stopDelivery(); delivering.Wait() })

	// Sign in as the tenant admin.
	uiNavigate(t, ctx, ts.URL+"/ui/log-streams")
	uiWait(t, ctx, 15*time.Second, `document.readyState === "complete" && document.body.dataset.tz === Intl.DateTimeFormat().resolvedOptions().timeZone && !!document.getElementById("key")`)
	uiFill(t, ctx, map[string]string{"key": adminSecret})
	uiEval[bool](t, ctx, `document.getElementById("signin").click(), true`)
	uiWait(t, ctx, 15*time.Second, `location.pathname === "/ui/log-streams" && document.readyState === "complete" && !!document.getElementById("ls-form")`)
	if got := uiEval[string](t, ctx, `document.getElementById("ls-tenant-fixed").textContent`); got != "acme" {
		t.Fatalf("the form's tenant is %q", got)
	}

	// A destination that refuses: the test delivery's reason beside the form.
	uiFill(t, ctx, map[string]string{"ls-name": "nowhere", "ls-destination-type": "webhook", "ls-destination-url": "https://127.0.0.1:1/hook"})
	uiEval[bool](t, ctx, `document.getElementById("ls-create").click(), true`)
	uiWait(t, ctx, 30*time.Second, `!!document.getElementById("ls-destination-err") && document.getElementById("ls-destination-err").textContent.includes("refused") && document.getElementById("ls-problem").dataset.status === "422"`)
	if v := uiEval[string](t, ctx, `document.getElementById("ls-destination-url").value`); v != "https://127.0.0.1:1/hook" {
		t.Fatalf("the refused URL was not kept: %q", v)
	}
	uiAxe(t, ctx, "log streams, refused destination")
	uiShot(t, ctx, "ui-log-streams-refused.png")

	// The webhook stream: NDJSON, the receiver's secret, its certificate as CA.
	uiFill(t, ctx, map[string]string{"ls-name": "acme webhook", "ls-destination-type": "webhook", "ls-destination-url": rcv.url(),
		"ls-destination-encoding": "ndjson", "ls-secret-input": hookSecret, "ls-destination-ca-pem": caPEM,
		"ls-batching-max-events": "50", "ls-batching-max-wait-ms": "100"})
	uiWait(t, ctx, 5*time.Second, `getComputedStyle(document.getElementById("ls-destination-address").closest("label")).display === "none"`) // syslog's fields hidden
	uiEval[bool](t, ctx, `document.getElementById("ls-create").click(), true`)
	uiWait(t, ctx, 30*time.Second, `!!document.getElementById("ls-done") && document.getElementById("ls-done").textContent.startsWith("Created log stream ls_") && !document.getElementById("ls-problem")`)
	hookID := strings.TrimSuffix(strings.TrimPrefix(uiEval[string](t, ctx, `document.getElementById("ls-done").textContent`), "Created log stream "), ".")
	if uiEval[bool](t, ctx, `!!document.getElementById("ls-secret")`) {
		t.Fatal("a secret the admin typed is shown back")
	}
	uiAxe(t, ctx, "log streams, after a creation")
	uiDark(t, ctx, "dark")
	uiAxe(t, ctx, "log streams, after a creation (dark)")
	uiDark(t, ctx, "light")

	// The syslog stream to rsyslogd.
	uiFill(t, ctx, map[string]string{"ls-name": "acme syslog", "ls-destination-type": "syslog", "ls-destination-address": rs.addr, "ls-destination-transport": "relp",
		"ls-batching-max-events": "40", "ls-batching-max-wait-ms": "100"})
	uiEval[bool](t, ctx, `document.getElementById("ls-create").click(), true`)
	uiWait(t, ctx, 30*time.Second, `!!document.getElementById("ls-done") && !document.getElementById("ls-done").textContent.includes(`+jsq(hookID)+`)`)
	syslogID := strings.TrimSuffix(strings.TrimPrefix(uiEval[string](t, ctx, `document.getElementById("ls-done").textContent`), "Created log stream "), ".")
	t.Logf("webhook stream %s, syslog stream %s", hookID, syslogID)
	if ss, err := f.m.Get(bg, Caller{All: true}, syslogID); err != nil || ss.Destination.Transport != TransportRELP {
		t.Fatalf("the syslog stream created in the page: %+v, %v", ss, err)
	}
	if !uiEval[bool](t, ctx, `document.getElementById("stream-`+syslogID+`").textContent.includes("relp://")`) {
		t.Fatal("the page does not show the syslog stream as relp://")
	}
	rows := `[` + jsq(hookID) + `, ` + jsq(syslogID) + `].map(id => document.getElementById("stream-" + id))`

	// Ingest over the API, batches of 20, until told to stop.
	var ingested []string
	var ingMu sync.Mutex
	var batches atomic.Int64
	var gate sync.Mutex // held: ingest pauses between two requests
	ingestCtx, stopIngest := context.WithCancel(bg)
	var ingesting sync.WaitGroup
	ingesting.Go(func() {
		for n := 0; ingestCtx.Err() == nil; n++ {
			var evs []map[string]any
			var batch []string
			for i := range 20 {
				id := uuid.Must(uuid.NewV7()).String()
				batch = append(batch, id)
				evs = append(evs, map[string]any{"id": id, "actor": map[string]any{"type": "user", "id": fmt.Sprintf("u%d", i%5), "email": "ann@acme.test"},
					"action": []string{"user.update", "auth.login", "invoice.create", "project.delete"}[(n+i)%4],
					"target": map[string]any{"type": "project", "id": fmt.Sprintf("p%d-%d", n, i)}, "description": fmt.Sprintf("batch %d event %d", n, i)})
			}
			body, _ := json.Marshal(evs)
			gate.Lock()
			req, _ := http.NewRequest("POST", ts.URL+"/v1/events", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+ingestSecret)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				gate.Unlock()
				t.Errorf("ingest: %v", err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode >= 300 {
				gate.Unlock()
				t.Errorf("ingest: %d", resp.StatusCode)
				return
			}
			ingMu.Lock()
			ingested = append(ingested, batch...)
			ingMu.Unlock()
			gate.Unlock()
			batches.Add(1)
			select {
			case <-ingestCtx.Done():
			case <-time.After(50 * time.Millisecond): // the application's pace, not a synchronisation
			}
		}
	})
	defer func() { stopIngest(); ingesting.Wait() }()

	// Both streams deliver: the page shows them healthy with events delivered.
	reload := func(cond string) {
		t.Helper()
		uiWait(t, ctx, 90*time.Second, `(() => { const ok = `+cond+`; if (!ok && document.readyState === "complete" && !window.__reloading) { window.__reloading = true; setTimeout(() => location.reload(), 200); } return ok; })()`)
	}
	reload(rows + `.every(r => r && r.dataset.state === "healthy" && +r.dataset.delivered > 40)`)

	// Both receivers down during ingest, with batches in flight: the page
	// shows both in error. rsyslogd is killed (SIGKILL): the syslog stream
	// is RELP, so a batch whose answers did not all come back is sent
	// again, never counted as delivered (over plain TCP a batch in
	// rsyslogd's socket buffer was lost: seq 142-181 in one run of four).
	rcv.stop()
	rs.kill()
	down := time.Now()
	reload(rows + `.every(r => r && r.dataset.state === "error")`)
	uiShot(t, ctx, "ui-log-streams-error.png")
	if !testing.Short() {
		for time.Since(down) < *uiOutage {
			time.Sleep(time.Second) // the outage's length is the scenario, not a synchronisation
		}
	}
	outage := time.Since(down)
	atRestart := batches.Load()
	rcv.restart()
	rs.start()
	reload(rows + `.every(r => r && r.dataset.state === "healthy")`)
	// Ingest on a little after the restart, then stop and seal the rest.
	for batches.Load() < atRestart+10 {
		time.Sleep(10 * time.Millisecond)
	}
	stopIngest()
	ingesting.Wait()
	stopRun()
	sealing.Wait()
	for {
		s, err := f.sealer.Step(bg)
		if err != nil {
			t.Fatal(err)
		}
		if s.Sealed == 0 {
			break
		}
	}

	// What each stream must have delivered: the acme log from its own
	// log_stream.create event on.
	want := func(id string) []string {
		t.Helper()
		evs, err := f.events.Query(bg, trail.Query{Tenant: "acme", Action: "log_stream.create", TargetType: "log_stream", TargetID: id, Limit: 1})
		if err != nil || len(evs.Events) != 1 {
			t.Fatalf("the creation event of %s: %v %d", id, err, len(evs.Events))
		}
		size := f.size(t, "acme")
		ls, err := f.log.Leaves(bg, trailseal.LogName("acme"), 0, size)
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range ls {
			if l.EventID == evs.Events[0].ID {
				var out []string
				for _, l := range ls[i:] {
					out = append(out, l.EventID.String())
				}
				return out
			}
		}
		t.Fatalf("the creation event of %s is not in the log", id)
		return nil
	}
	wantHook, wantSyslog := want(hookID), want(syslogID)
	in := map[string]bool{}
	for _, id := range wantSyslog {
		in[id] = true
	}
	for _, id := range ingested {
		if !in[id] {
			t.Fatalf("ingested event %s is not in the log after the streams' start", id)
		}
	}
	reload(fmt.Sprintf(`((h, s) => h && s && h.dataset.state === "healthy" && +h.dataset.delivered === %d && s.dataset.state === "healthy" && +s.dataset.delivered === %d)(...%s)`,
		len(wantHook), len(wantSyslog), rows))
	rcv.check(t, wantHook)
	if got := rs.delivered(t); strings.Join(got, ",") != strings.Join(wantSyslog, ",") {
		t.Fatalf("rsyslog has %d events, want %d in log order", len(got), len(wantSyslog))
	}
	rcv.mu.Lock()
	requests, dups, tests := rcv.requests, rcv.dups, rcv.tests
	rcv.mu.Unlock()
	t.Logf("%d events ingested in %d batches; receivers down %.1f s; webhook: %d events in %d requests (%d test, %d duplicates re-sent), every signature verified; rsyslog: %d events, in order, no gap",
		len(ingested), batches.Load(), outage.Seconds(), len(wantHook), requests, tests, dups, len(wantSyslog))

	// Rotate the webhook's secret in the page: the new one is shown once;
	// the receiver, told only the new one, verifies what follows.
	uiNavigate(t, ctx, ts.URL+"/ui/log-streams")
	uiWait(t, ctx, 15*time.Second, `document.readyState === "complete" && !!document.getElementById("rotate-`+hookID+`")`)
	uiEval[bool](t, ctx, `document.getElementById("rotate-`+hookID+`").closest("details").open = true, true`)
	uiEval[bool](t, ctx, `document.getElementById("rotate-`+hookID+`").click(), true`)
	uiWait(t, ctx, 30*time.Second, `!!document.getElementById("ls-secret-value") && document.getElementById("ls-secret").dataset.stream === `+jsq(hookID))
	newSecret := uiEval[string](t, ctx, `document.getElementById("ls-secret-value").value`)
	if !strings.HasPrefix(newSecret, "whsec_") || newSecret == hookSecret {
		t.Fatalf("rotated secret %q", newSecret)
	}
	uiAxe(t, ctx, "log streams, a secret shown once")
	rcv.setSecrets(newSecret)
	uiNavigate(t, ctx, ts.URL+"/ui/log-streams")
	uiWait(t, ctx, 15*time.Second, `document.readyState === "complete" && !!document.getElementById("log-streams")`)
	if uiEval[bool](t, ctx, `document.body.innerHTML.includes(`+jsq(newSecret)+`)`) {
		t.Fatal("the rotated secret is shown again")
	}
	resealCtx, stopReseal := context.WithCancel(bg)
	t.Cleanup(stopReseal)
	sealing.Go(func() {
		for resealCtx.Err() == nil {
			f.sealer.Step(resealCtx)
			select {
			case <-resealCtx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	f.record(t, "acme", 30)
	reload(fmt.Sprintf(`(h => h && +h.dataset.delivered >= %d)(document.getElementById("stream-%s"))`, len(wantHook)+31, hookID))
	rcv.mu.Lock()
	bad := rcv.badSigs
	rcv.mu.Unlock()
	if bad != 0 || rcv.count() < int64(len(wantHook)+31) {
		t.Fatalf("after the rotation: %d bad signatures, %d delivered", bad, rcv.count())
	}
}

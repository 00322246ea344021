package trailserver_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/trailhq/trail"
)

// postPage posts a form and returns the status and the page (a redirect is
// not followed).
func (b *uiBrowser) postPage(base, path string, form url.Values) (int, string, http.Header) {
	b.t.Helper()
	resp, err := b.c.PostForm(base+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

var (
	uiStreamID = regexp.MustCompile(`id="stream-(ls_[0-9a-f]+)"`)
	uiSecret   = regexp.MustCompile(`id="ls-secret-value" readonly value="(whsec_[^"]+)"`)
)

// TestLogStreamsUIForms: the log-streams page's forms go through the API's
// logic. A tenant admin creates a webhook stream (the generated secret shown
// once, never on the list), is refused another tenant's stream (403, inline
// beside the tenant), an unreachable destination (422 with the test
// delivery's reason in the destination fieldset, entered values kept and the
// secret not echoed) and a bad URL (400 beside the URL); pauses, resumes,
// rotates (a new secret shown once) and deletes; cannot touch another
// tenant's stream (404); a form without the session's CSRF token is 403; a
// reader is 403. Each change is an audit event with the key as actor.
func TestLogStreamsUIForms(t *testing.T) {
	f, rcv, posts := newLogStreamFixture(t)
	base := f.ts.URL
	ui := newUIBrowser(t)
	ui.signIn(base, f.secret["adminA"])
	code, page := ui.get(base, "/ui/log-streams")
	if code != 200 || !strings.Contains(page, `id="ls-form"`) || !strings.Contains(page, `id="ls-tenant-fixed">acme<`) || strings.Contains(page, `id="ls-tenant"`) {
		t.Fatalf("page for a tenant admin: %d\n%s", code, page)
	}
	form := func(kv ...string) url.Values {
		v := url.Values{"csrf": {ui.csrf}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	hook := []string{"name", "siem", "destination.type", "webhook", "destination.url", rcv.URL + "/hook", "destination.encoding", "ndjson", "filter.actions", "auth.* user.delete", "filter.outcome", "failure"}

	// No CSRF token, or another's: nothing created.
	if code, _, _ := ui.postPage(base, "/ui/log-streams", url.Values{"destination.type": {"webhook"}, "destination.url": {rcv.URL}}); code != http.StatusForbidden {
		t.Fatalf("without CSRF: %d", code)
	}
	if code, _, _ := ui.postPage(base, "/ui/log-streams", form(append(hook, "csrf", "AAAA"+ui.csrf[4:])...)); code != http.StatusForbidden || posts.Load() != 0 {
		t.Fatalf("wrong CSRF: %d (test deliveries %d)", code, posts.Load())
	}
	// Another tenant: the API's scope check, shown beside the tenant.
	code, page, _ = ui.postPage(base, "/ui/log-streams", form(append(hook, "tenant", "globex")...))
	if code != http.StatusForbidden || !strings.Contains(page, `id="ls-tenant-err"`) || !strings.Contains(page, `this key manages only tenant`) {
		t.Fatalf("other tenant: %d\n%s", code, page)
	}
	// Unreachable: 422 with the reason; the values are kept, the secret is not echoed.
	code, page, _ = ui.postPage(base, "/ui/log-streams", form("name", "down", "destination.type", "webhook", "destination.url", "https://127.0.0.1:1/x", "secret", "whsec_mine"))
	if code != http.StatusUnprocessableEntity || !strings.Contains(page, `id="ls-destination-err"`) || !strings.Contains(page, "refused") ||
		!strings.Contains(page, `value="https://127.0.0.1:1/x"`) || strings.Contains(page, "whsec_mine") {
		t.Fatalf("unreachable: %d\n%s", code, page)
	}
	code, page, _ = ui.postPage(base, "/ui/log-streams", form("destination.type", "webhook", "destination.url", "ftp://x"))
	if code != http.StatusBadRequest || !strings.Contains(page, `id="ls-destination-url-err"`) || !strings.Contains(page, `aria-invalid="true" aria-describedby="ls-destination-url-err"`) {
		t.Fatalf("bad URL: %d\n%s", code, page)
	}
	code, page, _ = ui.postPage(base, "/ui/log-streams", form("destination.type", "webhook", "destination.url", rcv.URL, "batching.max_events", "many"))
	if code != http.StatusBadRequest || !strings.Contains(page, `id="ls-batching-max-events-err"`) {
		t.Fatalf("bad number: %d\n%s", code, page)
	}

	// Created: the secret shown once.
	code, page, _ = ui.postPage(base, "/ui/log-streams", form(hook...))
	m := uiSecret.FindStringSubmatch(page)
	ids := uiStreamID.FindStringSubmatch(page)
	if code != http.StatusOK || m == nil || ids == nil || !strings.Contains(page, "auth.* user.delete, failure") {
		t.Fatalf("create: %d\n%s", code, page)
	}
	secret, id := m[1], ids[1]
	_, page = ui.get(base, "/ui/log-streams")
	if strings.Contains(page, secret) || !strings.Contains(page, `id="stream-`+id+`"`) {
		t.Fatal("the list shows the secret, or not the stream")
	}
	// A globex stream, made by the operator through the API.
	r := f.json("POST", "/v1/log-streams", "admin", map[string]any{"tenant": "globex", "destination": map[string]any{"type": "webhook", "url": rcv.URL}})
	globex := regexp.MustCompile(`"id":"(ls_[0-9a-f]+)"`).FindStringSubmatch(string(r.body))[1]
	if strings.Contains(page, globex) {
		t.Fatal("the tenant admin sees globex's stream")
	}
	for _, op := range []string{"pause", "resume", "rotate-secret", "delete"} {
		code, page, _ := ui.postPage(base, "/ui/log-streams/"+globex+"/"+op, form())
		if code != http.StatusNotFound || !strings.Contains(page, "no such log stream") {
			t.Fatalf("%s of globex's stream: %d\n%s", op, code, page)
		}
	}
	code, _, h := ui.postPage(base, "/ui/log-streams/"+id+"/pause", form())
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "op=pause") {
		t.Fatalf("pause: %d %v", code, h)
	}
	if _, page = ui.get(base, "/ui/log-streams"); !strings.Contains(page, `id="stream-`+id+`" data-state="paused"`) || !strings.Contains(page, `id="resume-`+id+`"`) {
		t.Fatalf("after pause:\n%s", page)
	}
	if code, _, _ := ui.postPage(base, "/ui/log-streams/"+id+"/resume", form()); code != http.StatusSeeOther {
		t.Fatalf("resume: %d", code)
	}
	code, page, _ = ui.postPage(base, "/ui/log-streams/"+id+"/rotate-secret", form())
	m2 := uiSecret.FindStringSubmatch(page)
	if code != http.StatusOK || m2 == nil || m2[1] == secret {
		t.Fatalf("rotate: %d\n%s", code, page)
	}
	if code, _, _ := ui.postPage(base, "/ui/log-streams/"+id+"/delete", form()); code != http.StatusSeeOther {
		t.Fatalf("delete: %d", code)
	}
	if _, page = ui.get(base, "/ui/log-streams"); strings.Contains(page, `id="stream-`+id+`"`) {
		t.Fatal("deleted stream still listed")
	}
	// Every change is an event of acme with the key as actor.
	evs := f.events(trail.Query{Tenant: "acme", Action: "log_stream.*"})
	var got []string
	for _, ev := range evs {
		if ev.Actor.ID != "key-"+f.key["adminA"].ID {
			t.Errorf("%s by %s, want the key %s", ev.Action, ev.Actor.ID, f.key["adminA"].ID)
		}
		got = append(got, ev.Action)
	}
	if strings.Join(got, " ") != "log_stream.delete log_stream.rotate_secret log_stream.resume log_stream.pause log_stream.create" {
		t.Fatalf("audit events %v", got)
	}

	// The operator names the tenant in the form.
	op := newUIBrowser(t)
	op.signIn(base, f.secret["admin"])
	if _, page := op.get(base, "/ui/log-streams"); !strings.Contains(page, `id="ls-tenant"`) || !strings.Contains(page, `id="stream-`+globex+`"`) {
		t.Fatalf("operator's page:\n%s", page)
	}
	code, _, h = op.postPage(base, "/ui/log-streams", url.Values{"csrf": {op.csrf}, "tenant": {"globex"}, "destination.type": {"webhook"},
		"destination.url": {rcv.URL}, "secret": {"whsec_operator_given"}, "format": {"ocsf"}})
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "op=create") {
		t.Fatalf("operator creates globex's stream: %d %v", code, h)
	}
	if _, page := op.get(base, h.Get("Location")); strings.Count(page, `<td>globex</td>`) != 2 || !strings.Contains(page, `id="ls-done"`) {
		t.Fatalf("operator's page after creation:\n%s", page)
	}

	reader := newUIBrowser(t)
	reader.signIn(base, f.secret["readerA"])
	reader.get(base, "/ui/")
	if code, _, _ := reader.postPage(base, "/ui/log-streams", url.Values{"csrf": {reader.csrf}, "destination.type": {"webhook"}, "destination.url": {rcv.URL}}); code != http.StatusForbidden {
		t.Fatalf("reader creates: %d", code)
	}
}

package trailserver_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailserver"
)

var uiCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// uiBrowser is a cookie-keeping client of one UI, which may be pointed at
// another server (a replica, or the restarted one) with the same cookies.
type uiBrowser struct {
	t    testing.TB
	c    *http.Client
	jar  *cookiejar.Jar
	csrf string
}

func newUIBrowser(t testing.TB) *uiBrowser {
	jar, _ := cookiejar.New(nil)
	return &uiBrowser{t: t, jar: jar, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *uiBrowser) get(base, path string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := uiCSRF.FindSubmatch(body); m != nil {
		b.csrf = string(m[1])
	}
	return resp.StatusCode, string(body)
}

func (b *uiBrowser) post(base, path string, form url.Values) (int, http.Header) {
	b.t.Helper()
	resp, err := b.c.PostForm(base+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header
}

func (b *uiBrowser) signIn(base, secret string) int {
	b.t.Helper()
	if code, _ := b.get(base, "/ui/login"); code != http.StatusOK {
		b.t.Fatalf("GET /ui/login: %d", code)
	}
	code, _ := b.post(base, "/ui/login", url.Values{"csrf": {b.csrf}, "key": {secret}, "next": {"/ui/"}})
	return code
}

// signedIn reports whether the list page answers (200) rather than sending
// to the sign-in page (303).
func (b *uiBrowser) signedIn(base string) bool {
	b.t.Helper()
	code, _ := b.get(base, "/ui/")
	switch code {
	case http.StatusOK:
		return true
	case http.StatusSeeOther:
		return false
	}
	b.t.Fatalf("GET %s/ui/: %d", base, code)
	return false
}

// replica is another server on f's store and key store: a restarted
// process or a second replica behind the same load balancer.
func (f *fixture) replica(t testing.TB) *httptest.Server {
	srv, err := trailserver.New(trailserver.Config{Store: f.store, Keys: f.keys, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { srv.Close(); ts.Close() })
	return ts
}

func authEvents(t testing.TB, st trail.Store) []trail.Event {
	t.Helper()
	page, err := st.Query(context.Background(), trail.Query{AllTenants: true, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var evs []trail.Event
	for _, ev := range page.Events {
		if strings.HasPrefix(ev.Action, "auth.") {
			evs = append(evs, ev)
		}
	}
	return evs
}

func TestUISessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		t.Run("a restart keeps the session", func(t *testing.T) {
			f := newFixture(t, b, nil)
			br := newUIBrowser(t)
			if code := br.signIn(f.ts.URL, f.secret["readerA"]); code != http.StatusSeeOther {
				t.Fatalf("sign-in: %d", code)
			}
			f.srv.Close()
			f.ts.Close() // the first process is gone
			restarted := f.replica(t)
			if !br.signedIn(restarted.URL) {
				t.Fatal("the restarted server sends the signed-in browser to the sign-in page")
			}
		})
		t.Run("replicas accept each other's sessions and sign-outs", func(t *testing.T) {
			f := newFixture(t, b, nil)
			other := f.replica(t)
			br := newUIBrowser(t)
			if code := br.signIn(f.ts.URL, f.secret["readerA"]); code != http.StatusSeeOther {
				t.Fatalf("sign-in: %d", code)
			}
			if !br.signedIn(other.URL) || !br.signedIn(f.ts.URL) {
				t.Fatal("a session of one replica is refused by the other")
			}
			// The same cookie, kept aside, is refused everywhere once the
			// user signs out on the other replica.
			u, _ := url.Parse(f.ts.URL + "/ui/")
			saved := br.jar.Cookies(u)
			if code, _ := br.post(other.URL, "/ui/logout", url.Values{"csrf": {br.csrf}}); code != http.StatusSeeOther {
				t.Fatalf("sign-out: %d", code)
			}
			replay := newUIBrowser(t)
			replay.jar.SetCookies(u, saved)
			if replay.signedIn(f.ts.URL) || replay.signedIn(other.URL) {
				t.Fatal("a signed-out session's cookie still works")
			}
		})
		t.Run("a revoked key's session stops working", func(t *testing.T) {
			f := newFixture(t, b, nil)
			other := f.replica(t)
			br := newUIBrowser(t)
			if code := br.signIn(f.ts.URL, f.secret["readerA"]); code != http.StatusSeeOther {
				t.Fatalf("sign-in: %d", code)
			}
			if !br.signedIn(other.URL) {
				t.Fatal("session refused before the revocation")
			}
			if err := f.keys.Revoke(context.Background(), f.key["readerA"].ID, time.Now()); err != nil {
				t.Fatal(err)
			}
			if br.signedIn(f.ts.URL) || br.signedIn(other.URL) {
				t.Fatal("a revoked key's session still works")
			}
		})
		t.Run("a forged or widened cookie is refused", func(t *testing.T) {
			f := newFixture(t, b, nil)
			br := newUIBrowser(t)
			br.signIn(f.ts.URL, f.secret["readerA"])
			u, _ := url.Parse(f.ts.URL + "/ui/")
			var value string
			for _, c := range br.jar.Cookies(u) {
				if c.Name == "trail_session" {
					value = c.Value
				}
			}
			if !strings.HasPrefix(value, "s1.") {
				t.Fatalf("session cookie %q", value)
			}
			// The readerA session's claims, naming the all-tenant admin key
			// instead, keep the old signature.
			parts := strings.Split(value, ".")
			claims := mustB64(t, parts[1])
			widened := strings.Replace(claims, f.key["readerA"].ID, f.key["admin"].ID, 1)
			for name, v := range map[string]string{
				"widened": "s1." + b64(widened) + "." + parts[2],
				"flipped": "s1." + parts[1] + "." + flip(parts[2]),
				"garbage": "s1.x.y",
				"bare":    parts[1],
			} {
				forged := newUIBrowser(t)
				forged.jar.SetCookies(u, []*http.Cookie{{Name: "trail_session", Value: v, Path: "/ui/"}})
				if forged.signedIn(f.ts.URL) {
					t.Errorf("%s cookie accepted", name)
				}
			}
		})
		t.Run("sign-in, sign-out and refusals are events", func(t *testing.T) {
			f := newFixture(t, b, nil)
			br := newUIBrowser(t)
			br.signIn(f.ts.URL, f.secret["readerA"])
			br.signedIn(f.ts.URL)
			br.post(f.ts.URL, "/ui/logout", url.Values{"csrf": {br.csrf}})
			if code := newUIBrowser(t).signIn(f.ts.URL, f.secret["revoked"]); code != http.StatusUnauthorized {
				t.Fatalf("revoked key sign-in: %d", code)
			}
			unknown := "trail_" + strings.Repeat("x", 43)
			if code := newUIBrowser(t).signIn(f.ts.URL, unknown); code != http.StatusUnauthorized {
				t.Fatalf("unknown key sign-in: %d", code)
			}
			got := map[string][]trail.Event{}
			for _, ev := range authEvents(t, f.store) {
				got[ev.Action] = append(got[ev.Action], ev)
				raw, _ := json.Marshal(ev)
				for _, secret := range []string{f.secret["readerA"], f.secret["revoked"], unknown} {
					if strings.Contains(string(raw), secret) {
						t.Fatalf("%s holds a key secret: %s", ev.Action, raw)
					}
				}
			}
			in, out, failed := got["auth.signin"], got["auth.signout"], got["auth.signin_failed"]
			if len(in) != 1 || len(out) != 1 || len(failed) != 2 {
				t.Fatalf("auth events: %d signin, %d signout, %d signin_failed", len(in), len(out), len(failed))
			}
			readerA := "key-" + f.key["readerA"].ID
			for _, ev := range []trail.Event{in[0], out[0]} {
				if ev.Actor.ID != readerA || ev.Tenant != "acme" || ev.Outcome != trail.OutcomeSuccess || ev.Actor.IP == "" {
					t.Errorf("%s: actor %+v tenant %q outcome %s", ev.Action, ev.Actor, ev.Tenant, ev.Outcome)
				}
			}
			var named, anon int
			for _, ev := range failed {
				if ev.Outcome != trail.OutcomeDenied {
					t.Errorf("signin_failed outcome %s", ev.Outcome)
				}
				switch ev.Actor.ID {
				case "key-" + f.key["revoked"].ID:
					named++
					if ev.Metadata["reason"] != "key revoked or expired" || ev.Tenant != "acme" {
						t.Errorf("revoked key's refusal: %v in %q", ev.Metadata, ev.Tenant)
					}
				case "":
					anon++
					if ev.Actor.Type != trail.ActorAnonymous || ev.Metadata["reason"] != "unknown key" || ev.Tenant != "" {
						t.Errorf("unknown key's refusal: %+v %v in %q", ev.Actor, ev.Metadata, ev.Tenant)
					}
				}
			}
			if named != 1 || anon != 1 {
				t.Fatalf("refusals: %d named the revoked key, %d anonymous", named, anon)
			}
		})
		t.Run("the session probe tells an ended session", func(t *testing.T) {
			f := newFixture(t, b, nil)
			br := newUIBrowser(t)
			if code, _ := br.get(f.ts.URL, "/ui/session"); code != http.StatusUnauthorized {
				t.Fatalf("probe without a session: %d", code)
			}
			br.signIn(f.ts.URL, f.secret["readerA"])
			if code, _ := br.get(f.ts.URL, "/ui/session"); code != http.StatusNoContent {
				t.Fatalf("probe signed in: %d", code)
			}
			f.keys.Revoke(context.Background(), f.key["readerA"].ID, time.Now())
			if code, _ := br.get(f.ts.URL, "/ui/session"); code != http.StatusUnauthorized {
				t.Fatalf("probe after revocation: %d", code)
			}
		})
	})
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

// flip changes the first character of a base64url string.
func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

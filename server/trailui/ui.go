package trailui

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config configures the UI. Every field has the default its comment gives.
type Config struct {
	// Prefix is the path the UI is mounted at. Default: "/ui".
	Prefix string
	// SessionTTL is how long a sign-in lasts. Default: 8h.
	SessionTTL time.Duration
	// SecureCookies marks cookies Secure even on plain HTTP (behind a TLS
	// proxy). Requests that arrive over TLS always get Secure cookies.
	SecureCookies bool
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger receives errors the viewer is not shown. Default: slog.Default().
	Logger *slog.Logger
	// Sessions keeps sign-ins (session.go). Default: this process's memory,
	// which a restart empties and a replica does not share.
	Sessions SessionStore
}

// Defaults.
const (
	DefaultSessionTTL = 8 * time.Hour
	// SessionCookie holds the session: a backend that streams (the live
	// tail) reads it to check that the session still stands.
	SessionCookie   = "trail_session"
	sessionCookie   = SessionCookie
	loginCSRFCookie = "trail_login_csrf"
	// maxSessions bounds the in-memory session map: sign-ins beyond it
	// evict expired sessions first, then are refused.
	maxSessions = 10000
)

// CSP is the Content-Security-Policy of every UI response: scripts and
// styles only from the UI's own embedded files, no inline code, no eval.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// Handler serves the UI. Create it with New.
type Handler struct {
	cfg  Config
	be   Backend
	log  *slog.Logger
	mux  *http.ServeMux
	tmpl map[string]*template.Template
}

// session is a live sign-in as one request sees it.
type session struct {
	cred  Credential
	csrf  string
	value string // the cookie
}

// New returns the UI over be.
func New(be Backend, cfg *Config) (*Handler, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.Prefix == "" {
		c.Prefix = "/ui"
	}
	c.Prefix = "/" + strings.Trim(c.Prefix, "/")
	if c.SessionTTL <= 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Sessions == nil {
		c.Sessions = newMemSessions(c.Now)
	}
	h := &Handler{cfg: c, be: be, log: c.Logger, mux: http.NewServeMux()}
	if err := h.parseTemplates(); err != nil {
		return nil, err
	}
	h.routes()
	return h, nil
}

func (h *Handler) routes() {
	p := h.cfg.Prefix
	static, _ := fs.Sub(staticFS, "static")
	fileServer := http.StripPrefix(p+"/static/", http.FileServer(http.FS(static)))
	h.mux.Handle("GET "+p+"/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fileServer.ServeHTTP(w, r)
	}))
	h.mux.HandleFunc("GET "+p+"/login", h.loginPage)
	h.mux.HandleFunc("POST "+p+"/login", h.login)
	h.mux.HandleFunc("POST "+p+"/logout", h.authed(h.logout))
	h.mux.HandleFunc("GET "+p+"/session", h.sessionProbe)
	h.mux.HandleFunc("POST "+p+"/zone", h.authed(h.switchZone)) // zone.go
	h.mux.HandleFunc("GET "+p+"/{$}", h.authed(h.list))
	h.mux.HandleFunc("GET "+p+"/events/{id}", h.authed(h.detail))
	h.mux.HandleFunc("GET "+p+"/events/{id}/proof", h.authed(h.proof))
	h.mux.HandleFunc("GET "+p+"/objects/{type}/{id}", h.authed(h.object))
	h.mux.HandleFunc("GET "+p+"/actors/{actor}", h.authed(h.actor))
	h.mux.HandleFunc("GET "+p+"/access", h.authed(h.access))
	h.mux.HandleFunc("GET "+p+"/tail", h.authed(h.tailPage))
	h.mux.HandleFunc("GET "+p+"/tail/stream", h.authed(h.tailStream))
	h.mux.HandleFunc("GET "+p+"/export", h.authed(h.export))
	h.mux.HandleFunc("GET "+p+"/log-streams", h.authed(h.logStreamsPage)) // logstreams.go
	h.logStreamFormRoutes()                                               // logstreams_form.go
	h.mux.HandleFunc(p+"/", func(w http.ResponseWriter, r *http.Request) {
		h.renderError(w, r, nil, &Error{Status: http.StatusNotFound, Detail: "no such page"})
	})
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	h.mux.ServeHTTP(w, r)
}

// request is what an authenticated page handler gets.
type request struct {
	viewer Viewer
	sess   *session
}

func (h *Handler) authed(fn func(w http.ResponseWriter, r *http.Request, rq *request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		sess := h.session(r)
		if sess == nil {
			h.toLogin(w, r)
			return
		}
		v, err := h.be.Resolve(r.Context(), sess.cred)
		switch {
		case errors.Is(err, ErrRateLimited):
			h.renderError(w, r, nil, &Error{Status: http.StatusTooManyRequests, Detail: "too many requests with this key; wait a moment"})
			return
		case errors.Is(err, ErrBadKey):
			h.dropSession(r)
			h.toLogin(w, r)
			return
		case err != nil:
			h.fail(w, r, nil, err)
			return
		}
		if r.Method == http.MethodPost && !h.checkCSRF(r, sess.csrf) {
			h.renderError(w, r, &v, &Error{Status: http.StatusForbidden, Detail: "the form's CSRF token is missing or wrong; reload the page and try again"})
			return
		}
		fn(w, r, &request{viewer: v, sess: sess})
	}
}

func (h *Handler) toLogin(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("HX-Request") != "" {
		w.Header().Set("HX-Redirect", h.cfg.Prefix+"/login")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, h.cfg.Prefix+"/tail/stream") && !strings.HasPrefix(r.URL.Path, h.cfg.Prefix+"/export") {
		http.Redirect(w, r, h.cfg.Prefix+"/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	h.renderError(w, r, nil, &Error{Status: http.StatusUnauthorized, Detail: "sign in first"})
}

func randomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("trailui: crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (h *Handler) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     h.cfg.Prefix + "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   r.TLS != nil || h.cfg.SecureCookies,
		SameSite: http.SameSiteStrictMode,
	}
}

// checkCSRF verifies a POST: the form's csrf field must equal want (the
// session's synchronizer token, or the login double-submit cookie), and a
// browser's Origin, when sent, must be this host.
func (h *Handler) checkCSRF(r *http.Request, want string) bool {
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		if !sameOrigin(o, r) {
			return false
		}
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return false
	}
	r.Body = http.MaxBytesReader(nil, r.Body, 16<<10)
	got := r.PostFormValue("csrf")
	return want != "" && len(got) == len(want) && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func sameOrigin(origin string, r *http.Request) bool {
	_, hostPart, ok := strings.Cut(origin, "://")
	return ok && hostPart == r.Host
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	token := randomToken()
	http.SetCookie(w, h.cookie(r, loginCSRFCookie, token, 3600))
	h.render(w, r, http.StatusOK, "login", &pageData{Title: "Sign in", CSRF: token, Next: safeNext(h.cfg.Prefix, r.URL.Query().Get("next"))})
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	c, err := r.Cookie(loginCSRFCookie)
	if err != nil || !h.checkCSRF(r, c.Value) {
		h.renderError(w, r, nil, &Error{Status: http.StatusForbidden, Detail: "the sign-in form expired or its CSRF token is wrong; reload it and try again"})
		return
	}
	next := safeNext(h.cfg.Prefix, r.PostFormValue("next"))
	secret := strings.TrimSpace(r.PostFormValue("key"))
	v, cred, err := h.be.SignIn(r.Context(), secret)
	if err != nil {
		h.authEvent(r, AuthEvent{Action: AuthSignInFailed, Secret: secret, Err: err})
		status, msg := http.StatusUnauthorized, "This key cannot sign in: it is unknown, revoked, expired, or may not read events."
		if !errors.Is(err, ErrBadKey) {
			if errors.Is(err, ErrRateLimited) {
				status, msg = http.StatusTooManyRequests, "Too many attempts; wait a moment."
			} else {
				h.log.Error("trailui: sign-in", "err", err)
				status, msg = http.StatusServiceUnavailable, "The key store is unavailable; retry later."
			}
		}
		token := randomToken()
		http.SetCookie(w, h.cookie(r, loginCSRFCookie, token, 3600))
		h.render(w, r, status, "login", &pageData{Title: "Sign in", CSRF: token, Next: next, Message: msg})
		return
	}
	if err := h.authEvent(r, AuthEvent{Action: AuthSignIn, Viewer: &v}); err != nil {
		h.fail(w, r, &v, err)
		return
	}
	id, err := h.newSession(r.Context(), cred)
	if err != nil {
		h.fail(w, r, &v, err)
		return
	}
	http.SetCookie(w, h.cookie(r, loginCSRFCookie, "", -1))
	http.SetCookie(w, h.cookie(r, sessionCookie, id, int(h.cfg.SessionTTL/time.Second)))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request, rq *request) {
	h.authEvent(r, AuthEvent{Action: AuthSignOut, Viewer: &rq.viewer})
	h.dropSession(r)
	http.SetCookie(w, h.cookie(r, sessionCookie, "", -1))
	http.Redirect(w, r, h.cfg.Prefix+"/login", http.StatusSeeOther)
}

// safeNext keeps a post-sign-in redirect inside the UI: next must be a
// local path (no scheme, no host, not "//", no backslash or control
// character) whose cleaned path (dot segments resolved, percent-encoded
// ones too) is prefix or under it. A path with dot segments or doubled
// slashes is replaced by its cleaned form, so that the browser resolves
// nothing; anything else is prefix + "/".
func safeNext(prefix, next string) string {
	home := prefix + "/"
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.ContainsFunc(next, func(r rune) bool { return r == '\\' || r < 0x20 || r == 0x7f }) {
		return home
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return home
	}
	clean := path.Clean(u.Path)
	if clean != prefix && !strings.HasPrefix(clean, home) {
		return home
	}
	if clean == prefix || strings.HasSuffix(u.Path, "/") {
		clean += "/"
	}
	if clean != u.Path || !strings.HasPrefix(u.EscapedPath(), home) {
		// Re-encoded from the clean path: "/ui%2f" decodes under the UI
		// but is not, for a browser.
		u = &url.URL{Path: clean, RawQuery: u.RawQuery}
	}
	if u.RawQuery == "" {
		return u.EscapedPath()
	}
	return u.EscapedPath() + "?" + u.RawQuery
}

// render executes page name into a buffer first, so that a template error
// is a clean 500 and never half a page.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, d *pageData) {
	d.Prefix = h.cfg.Prefix
	d.Path = r.URL.EscapedPath()
	if d.Now.IsZero() {
		d.Now = h.cfg.Now().UTC()
	}
	// Times are shown in the viewer's zone (zone.go): the templates' "at"
	// takes it from Now.
	d.Zone, d.ZoneUTC = zoneOf(r)
	d.Now = d.Now.In(d.Zone)
	d.ZoneLabel = zoneLabel(d.Zone, d.Now)
	var buf bytes.Buffer
	if err := h.tmpl[name].ExecuteTemplate(&buf, "layout", d); err != nil {
		h.log.Error("trailui: template", "page", name, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (h *Handler) renderError(w http.ResponseWriter, r *http.Request, v *Viewer, e *Error) {
	d := &pageData{Title: http.StatusText(e.Status), Error: e}
	if v != nil {
		d.Viewer = v
	}
	h.render(w, r, e.Status, "error", d)
}

// fail answers an error from the backend: its own *Error, or a 503.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, v *Viewer, err error) {
	var e *Error
	if errors.As(err, &e) {
		h.renderError(w, r, v, e)
		return
	}
	h.log.Error("trailui: backend", "path", r.URL.Path, "err", err)
	h.renderError(w, r, v, &Error{Status: http.StatusServiceUnavailable, Detail: "the event store is unavailable; retry later"})
}

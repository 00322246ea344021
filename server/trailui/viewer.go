package trailui

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/trailhq/trail"
)

// The tenant-facing viewer (docs/ui.md, "The tenant-facing viewer") is a
// read-only page of one tenant's events that a SaaS shows its own customers:
// its backend asks Trail for a short-lived viewer token (POST
// /v1/viewer-tokens), and the customer's administrator opens
// {prefix}/?token=… or the SaaS embeds that page in an iframe with
// {prefix}/static/embed.js. The token travels in the URL of every page and
// link, not in a cookie: a third-party iframe gets no cookies in most
// browsers, and a token that is the whole session cannot outlive its expiry.

// ViewerGrant is what a checked viewer token allows: one tenant, read-only,
// maybe narrowed, until Expires.
type ViewerGrant struct {
	// Token is the token itself, carried by every link of the viewer.
	Token   string
	TokenID string
	Tenant  string
	// Viewer is who looks, as the SaaS named them (for the page's header).
	ViewerName string
	// Narrowing, as the token fixed it (shown to the viewer).
	Actions []string
	Actor   string
	Target  string
	Export  bool
	Expires time.Time
	// FrameOrigins may embed the viewer (the tenant's viewer settings); none:
	// the viewer may not be framed.
	FrameOrigins []string
	Brand        Brand
}

// Brand is a tenant's look in the viewer: the SaaS's name and colours
// (#rgb or #rrggbb, checked when stored).
type Brand struct {
	Name       string `json:"name,omitempty"`
	Accent     string `json:"accent,omitempty"`
	Background string `json:"background,omitempty"`
	Text       string `json:"text,omitempty"`
}

// ViewerBackend serves the viewer's data. trailserver implements it.
type ViewerBackend interface {
	// OpenViewer checks a token: signature, expiry, and that the key that
	// issued it may still grant it. A bad one is an *Error (401).
	OpenViewer(r *http.Request, token string) (ViewerGrant, error)
	// ViewerList returns a page of the grant's events (cursor continues a
	// page) and records the view as the viewer's audit.read.
	ViewerList(r *http.Request, g ViewerGrant, cursor string) (Page, error)
	// ViewerExport streams the grant's events as CSV (format "csv") or JSON
	// Lines ("jsonl"), recorded as the viewer's audit.read; the handler has
	// checked Export.
	ViewerExport(w http.ResponseWriter, r *http.Request, g ViewerGrant, format string)
}

// ViewerConfig configures NewViewer.
type ViewerConfig struct {
	// Prefix is where the viewer is mounted. Default: "/viewer".
	Prefix string
	// UIPrefix is where the admin UI's static files are (its stylesheet is
	// shared). Default: "/ui".
	UIPrefix string
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger. Default: slog.Default().
	Logger *slog.Logger
}

// ViewerHandler is the viewer's http.Handler.
type ViewerHandler struct {
	cfg  ViewerConfig
	be   ViewerBackend
	mux  *http.ServeMux
	tmpl *template.Template
}

// viewerCSP is the viewer's policy; frame-ancestors is added per response.
const viewerCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors "

// NewViewer returns the viewer over be.
func NewViewer(be ViewerBackend, cfg *ViewerConfig) (*ViewerHandler, error) {
	var c ViewerConfig
	if cfg != nil {
		c = *cfg
	}
	if c.Prefix == "" {
		c.Prefix = "/viewer"
	}
	if c.UIPrefix == "" {
		c.UIPrefix = "/ui"
	}
	c.Prefix = "/" + strings.Trim(c.Prefix, "/")
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	t, err := template.New("viewer").Funcs(template.FuncMap{
		"iso": isoTime,
		"utc": utcTime,
	}).ParseFS(templateFS, "templates/viewer.html")
	if err != nil {
		return nil, fmt.Errorf("trailui: viewer template: %w", err)
	}
	h := &ViewerHandler{cfg: c, be: be, mux: http.NewServeMux(), tmpl: t}
	p := c.Prefix
	static, _ := fs.Sub(staticFS, "static")
	files := http.FileServer(http.FS(static))
	for _, name := range []string{"viewer.js", "embed.js"} {
		h.mux.HandleFunc("GET "+p+"/static/"+name, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "public, max-age=3600")
			// embed.js is loaded by the SaaS's pages, on another origin.
			w.Header().Set("Cross-Origin-Resource-Policy", "cross-origin")
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/" + name
			files.ServeHTTP(w, r2)
		})
	}
	h.mux.HandleFunc("GET "+p+"/{$}", h.granted(h.list))
	h.mux.HandleFunc("GET "+p+"/theme.css", h.granted(h.theme))
	h.mux.HandleFunc("GET "+p+"/export", h.granted(h.export))
	h.mux.HandleFunc(p+"/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, &Error{Status: http.StatusNotFound, Detail: "no such page"})
	})
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *ViewerHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", viewerCSP+"'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	// The token is in the URL: no page it links to may see it.
	hd.Set("Referrer-Policy", "no-referrer")
	h.mux.ServeHTTP(w, r)
}

// frameAncestors is the CSP source list of the origins that may embed the
// grant's viewer; 'none' when there are none.
func frameAncestors(origins []string) string {
	var ok []string
	for _, o := range origins {
		if ValidOrigin(o) {
			ok = append(ok, o)
		}
	}
	if len(ok) == 0 {
		return "'none'"
	}
	return strings.Join(ok, " ")
}

var originRE = regexp.MustCompile(`^https?://[a-z0-9.-]+(:[0-9]{1,5})?$|^https?://\[[0-9a-f:.]+\](:[0-9]{1,5})?$`)

// ValidOrigin reports whether o is an origin a viewer may be framed by:
// http or https, a lower-case host, an optional port, nothing else (no
// path, no wildcard, no quote or space that would change the policy).
func ValidOrigin(o string) bool { return len(o) <= 256 && originRE.MatchString(o) }

func (h *ViewerHandler) granted(fn func(w http.ResponseWriter, r *http.Request, g *ViewerGrant)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		tok := r.URL.Query().Get("token")
		if tok == "" {
			h.fail(w, r, &Error{Status: http.StatusUnauthorized, Detail: "this page needs a viewer link; ask the application you came from for a new one"})
			return
		}
		g, err := h.be.OpenViewer(r, tok)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		w.Header().Set("Content-Security-Policy", viewerCSP+frameAncestors(g.FrameOrigins))
		fn(w, r, &g)
	}
}

type viewerPage struct {
	Prefix, UIPrefix string
	Grant            *ViewerGrant
	Title            string
	Events           []trail.Event
	Older, Newest    string
	ExportCSV        string
	Theme            string
	Error            *Error
}

func (h *ViewerHandler) link(path string, g *ViewerGrant, extra url.Values) string {
	v := url.Values{"token": {g.Token}}
	for k, vs := range extra {
		v[k] = vs
	}
	return h.cfg.Prefix + path + "?" + v.Encode()
}

func (h *ViewerHandler) list(w http.ResponseWriter, r *http.Request, g *ViewerGrant) {
	cursor := r.URL.Query().Get("cursor")
	page, err := h.be.ViewerList(r, *g, cursor)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	d := &viewerPage{Grant: g, Events: page.Events, Title: "Audit log"}
	if g.Brand.Name != "" {
		d.Title = g.Brand.Name + " audit log"
	}
	if page.Next != "" {
		d.Older = h.link("/", g, url.Values{"cursor": {page.Next}})
	}
	if cursor != "" {
		d.Newest = h.link("/", g, nil)
	}
	if g.Export {
		d.ExportCSV = h.link("/export", g, url.Values{"format": {"csv"}})
	}
	d.Theme = h.link("/theme.css", g, nil)
	h.render(w, http.StatusOK, d)
}

var colorRE = regexp.MustCompile(`^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

// ValidColor reports whether c is a colour the viewer's stylesheet takes:
// #rgb or #rrggbb.
func ValidColor(c string) bool { return colorRE.MatchString(c) }

// theme is the tenant's brand as a stylesheet: a style attribute would need
// 'unsafe-inline'. Only checked colours reach it.
func (h *ViewerHandler) theme(w http.ResponseWriter, r *http.Request, g *ViewerGrant) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	var b strings.Builder
	b.WriteString(":root{")
	for _, c := range []struct{ name, v string }{{"--brand-accent", g.Brand.Accent}, {"--brand-bg", g.Brand.Background}, {"--brand-text", g.Brand.Text}} {
		if ValidColor(c.v) {
			fmt.Fprintf(&b, "%s:%s;", c.name, c.v)
		}
	}
	b.WriteString("}\n")
	if ValidColor(g.Brand.Accent) {
		b.WriteString(".viewer header.top{background:var(--brand-accent);border-color:var(--brand-accent)}\n")
	}
	// Link, page and text colours are the brand's in light mode only: a
	// dark-mode reader keeps the UI's dark palette, whose contrast is
	// checked (axe-core), instead of a light brand's colours on dark.
	b.WriteString("@media (prefers-color-scheme: light){\n")
	if ValidColor(g.Brand.Accent) {
		b.WriteString(".viewer main a{color:var(--brand-accent)}\n")
	}
	if ValidColor(g.Brand.Background) {
		b.WriteString("body.viewer{background:var(--brand-bg)}\n")
	}
	if ValidColor(g.Brand.Text) {
		b.WriteString("body.viewer{color:var(--brand-text)}\n")
	}
	b.WriteString("}\n")
	w.Write([]byte(b.String()))
}

func (h *ViewerHandler) export(w http.ResponseWriter, r *http.Request, g *ViewerGrant) {
	if !g.Export {
		h.fail(w, r, &Error{Status: http.StatusForbidden, Detail: "this viewer link does not allow exports"})
		return
	}
	format := r.URL.Query().Get("format")
	if format != "csv" && format != "jsonl" {
		h.fail(w, r, &Error{Status: http.StatusBadRequest, Field: "format", Detail: "must be csv or jsonl"})
		return
	}
	h.be.ViewerExport(w, r, *g, format)
}

func (h *ViewerHandler) render(w http.ResponseWriter, status int, d *viewerPage) {
	d.Prefix, d.UIPrefix = h.cfg.Prefix, h.cfg.UIPrefix
	var buf bytes.Buffer
	if err := h.tmpl.ExecuteTemplate(&buf, "viewer", d); err != nil {
		h.cfg.Logger.Error("trailui: viewer template", "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (h *ViewerHandler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !asError(err, &e) {
		h.cfg.Logger.Error("trailui: viewer backend", "path", r.URL.Path, "err", err)
		e = &Error{Status: http.StatusServiceUnavailable, Detail: "the audit log is unavailable; retry later"}
	}
	h.render(w, e.Status, &viewerPage{Title: http.StatusText(e.Status), Error: e})
}

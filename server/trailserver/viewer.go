package trailserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailui"
)

// The tenant-facing viewer (docs/ui.md): a SaaS's backend, with an admin
// key whose scope covers the tenant, asks for a viewer token (POST
// /v1/viewer-tokens); the token is signed like the UI's session cookies
// (session.go, its own secret "viewer-token") and carries the tenant, the
// narrowing, the export permission, the issuing key's ID and the expiry.
// Every request of the viewer checks the signature (a changed claim, such
// as another tenant or a wider filter, is refused), the expiry, and that
// the issuing key is still an active admin key of that tenant (revoking the
// SaaS's key ends its viewer links). The tenant's viewer settings (brand and
// the origins that may frame the viewer) are stored beside the keys
// (AuthStore.ViewerSettings) and read on every request, so a change applies
// to links already handed out.

const viewerPrefix = "v1."

// Viewer token limits.
const (
	DefaultViewerTTL = 15 * time.Minute
	MaxViewerTTL     = 12 * time.Hour
	maxFrameOrigins  = 20
	maxViewerActions = 20
)

// viewerClaims is what a viewer token asserts.
type viewerClaims struct {
	ID      string   `json:"jti"`
	Tenant  string   `json:"ten"`
	Issuer  string   `json:"iss"` // the issuing key's ID
	Exp     int64    `json:"exp"` // Unix seconds
	Actions []string `json:"act,omitempty"`
	Actor   string   `json:"actor,omitempty"`
	Target  string   `json:"tgt,omitempty"`
	Export  bool     `json:"export,omitempty"`
	Viewer  *Person  `json:"viewer,omitempty"`
}

// Person is who opens a viewer link, as the SaaS names them: recorded as
// the actor of the viewer's audit.read events.
type Person struct {
	ID    string `json:"id,omitempty"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// ViewerSettings are a tenant's viewer settings.
type ViewerSettings struct {
	// FrameOrigins may embed the viewer in an iframe (CSP frame-ancestors):
	// "https://app.example.com". None: the viewer cannot be framed.
	FrameOrigins []string `json:"frame_origins"`
	trailui.Brand
}

func (vs *ViewerSettings) validate() *Problem {
	if len(vs.FrameOrigins) > maxFrameOrigins {
		return badRequest("frame_origins", fmt.Sprintf("at most %d origins", maxFrameOrigins))
	}
	for _, o := range vs.FrameOrigins {
		if !trailui.ValidOrigin(o) {
			return badRequest("frame_origins", fmt.Sprintf("%q must be an origin: http(s)://host[:port], lower case, no path or wildcard", clipStr(o)))
		}
	}
	if len(vs.Name) > 64 || strings.ContainsFunc(vs.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return badRequest("name", "at most 64 bytes of printable text")
	}
	for _, c := range []struct{ field, v string }{{"accent", vs.Accent}, {"background", vs.Background}, {"text", vs.Text}} {
		if c.v != "" && !trailui.ValidColor(c.v) {
			return badRequest(c.field, fmt.Sprintf("%q must be #rgb or #rrggbb", clipStr(c.v)))
		}
	}
	return nil
}

func (s *Server) viewerRoutes() {
	s.handle("POST /v1/viewer-tokens", isAdmin, s.createViewerToken)
	s.handle("GET /v1/viewer-settings/{tenant}", isAdmin, s.getViewerSettings)
	s.handle("PUT /v1/viewer-settings/{tenant}", isAdmin, s.putViewerSettings)
	v, err := trailui.NewViewer(viewerBackend{s}, &trailui.ViewerConfig{Now: s.cfg.Now, Logger: s.log})
	if err != nil {
		panic(err) // embedded templates: a build error
	}
	s.mux.Handle("/viewer/", v)
}

// settingsTenant checks the {tenant} of a settings request against k.
func settingsTenant(r *http.Request, k *Key) (string, *Problem) {
	t := r.PathValue("tenant")
	if !trail.ValidTenant(t) {
		return "", badRequest("tenant", fmt.Sprintf("%q is not a valid tenant", clipStr(t)))
	}
	if !k.AllTenants() && t != k.Tenant {
		return "", forbidden("tenant", fmt.Sprintf("this key manages only tenant %q", k.Tenant))
	}
	return t, nil
}

func (s *Server) viewerSettings(ctx context.Context, tenant string) (ViewerSettings, error) {
	vs := ViewerSettings{FrameOrigins: []string{}}
	if s.auth.store == nil {
		if v, ok := s.auth.settings.Load(tenant); ok {
			return v.(ViewerSettings), nil
		}
		return vs, nil
	}
	b, err := s.auth.store.ViewerSettings(ctx, tenant)
	if err != nil || b == nil {
		return vs, err
	}
	if err := json.Unmarshal(b, &vs); err != nil {
		return vs, fmt.Errorf("trailserver: stored viewer settings of %q: %w", tenant, err)
	}
	if vs.FrameOrigins == nil {
		vs.FrameOrigins = []string{}
	}
	return vs, nil
}

func (s *Server) getViewerSettings(w http.ResponseWriter, r *http.Request, k *Key) {
	t, p := settingsTenant(r, k)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	vs, err := s.viewerSettings(r.Context(), t)
	if err != nil {
		s.log.Error("trailserver: viewer settings", "err", err)
		writeProblem(w, r, problem(http.StatusServiceUnavailable, ProblemUnavailable, "", "reading the viewer settings failed"))
		return
	}
	writeJSON(w, http.StatusOK, vs)
}

func (s *Server) putViewerSettings(w http.ResponseWriter, r *http.Request, k *Key) {
	t, p := settingsTenant(r, k)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	var vs ViewerSettings
	if field, detail := decodeStrict(http.MaxBytesReader(w, r.Body, 64<<10), &vs); detail != "" {
		writeProblem(w, r, badRequest(field, detail))
		return
	}
	if vs.FrameOrigins == nil {
		vs.FrameOrigins = []string{}
	}
	if p := vs.validate(); p != nil {
		writeProblem(w, r, p)
		return
	}
	var err error
	if s.auth.store == nil {
		s.auth.settings.Store(t, vs)
	} else {
		b, _ := json.Marshal(vs)
		err = s.auth.store.SetViewerSettings(r.Context(), t, b)
	}
	if err != nil {
		s.log.Error("trailserver: viewer settings", "err", err)
		writeProblem(w, r, problem(http.StatusServiceUnavailable, ProblemUnavailable, "", "storing the viewer settings failed"))
		return
	}
	s.recordViewerEvent(r, k, t, "viewer_settings.update", trail.Target{Type: "tenant", ID: t}, map[string]any{"frame_origins": vs.FrameOrigins})
	writeJSON(w, http.StatusOK, vs)
}

type viewerTokenRequest struct {
	Tenant    string   `json:"tenant"`
	ExpiresIn string   `json:"expires_in"`
	Viewer    *Person  `json:"viewer"`
	Actions   []string `json:"actions"`
	Actor     string   `json:"actor"`
	Target    string   `json:"target"`
	Export    bool     `json:"export"`
}

type viewerTokenResponse struct {
	Token     string    `json:"token"`
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Tenant    string    `json:"tenant"`
	ExpiresAt time.Time `json:"expires_at"`
}

// narrowing is the query a viewer's claims allow, from the token's filters
// through the API's own parser (so a token holds only filters the API
// takes).
func narrowing(c *viewerClaims, now time.Time) (trail.Query, *Problem) {
	v := url.Values{}
	if len(c.Actions) > 0 {
		v.Set("action", strings.Join(c.Actions, ","))
	}
	if c.Actor != "" {
		v.Set("actor", c.Actor)
	}
	if c.Target != "" {
		v.Set("target", c.Target)
	}
	q, p := parseQuery(v, now)
	if p != nil {
		if p.Field == "action" {
			p.Field = "actions"
		}
		return q, p
	}
	// The viewer's own reads (and every access event) stay out of its
	// pages, unless the token's actions name them.
	q.Action = trail.WithoutAccess(q.Action)
	if err := checkFilters(q); err != nil {
		return q, queryProblem(err)
	}
	q.Tenant, q.AllTenants = c.Tenant, false
	return q, nil
}

func (s *Server) createViewerToken(w http.ResponseWriter, r *http.Request, k *Key) {
	var in viewerTokenRequest
	if field, detail := decodeStrict(http.MaxBytesReader(w, r.Body, 64<<10), &in); detail != "" {
		writeProblem(w, r, badRequest(field, detail))
		return
	}
	if in.Tenant == "" || !trail.ValidTenant(in.Tenant) {
		writeProblem(w, r, badRequest("tenant", "required: the one tenant the viewer shows"))
		return
	}
	if !k.AllTenants() && in.Tenant != k.Tenant {
		writeProblem(w, r, forbidden("tenant", fmt.Sprintf("this key manages only tenant %q", k.Tenant)))
		return
	}
	ttl := DefaultViewerTTL
	if in.ExpiresIn != "" {
		d, err := ParseDuration(in.ExpiresIn)
		if err != nil || d <= 0 || d > MaxViewerTTL {
			writeProblem(w, r, badRequest("expires_in", fmt.Sprintf("must be a duration up to %s (default %s)", MaxViewerTTL, DefaultViewerTTL)))
			return
		}
		ttl = d
	}
	if len(in.Actions) > maxViewerActions {
		writeProblem(w, r, badRequest("actions", fmt.Sprintf("at most %d", maxViewerActions)))
		return
	}
	for _, a := range in.Actions {
		if a == "" || strings.ContainsAny(a, ",!") {
			writeProblem(w, r, badRequest("actions", fmt.Sprintf("%q: each is an action or a pattern with *, without , or !", clipStr(a))))
			return
		}
	}
	now := s.cfg.Now()
	id, err := randomSessionID()
	if err != nil {
		writeProblem(w, r, problem(http.StatusServiceUnavailable, ProblemUnavailable, "", "no randomness"))
		return
	}
	c := viewerClaims{ID: id, Tenant: in.Tenant, Issuer: k.ID, Exp: now.Add(ttl).Unix(),
		Actions: in.Actions, Actor: in.Actor, Target: in.Target, Export: in.Export, Viewer: in.Viewer}
	if _, p := narrowing(&c, now); p != nil {
		writeProblem(w, r, p)
		return
	}
	if in.Viewer != nil {
		// The viewer is the actor of its reads: check it as one now.
		probe := trail.Event{Tenant: in.Tenant, Actor: viewerActor(&c), Action: "audit.read", OccurredAt: now}
		err := probe.Normalize()
		if err == nil {
			err = probe.Validate()
		}
		if err != nil {
			writeProblem(w, r, badRequest("viewer", err.Error()))
			return
		}
	}
	tok, err := s.auth.sign(r.Context(), "viewer-token", viewerPrefix, c)
	if err != nil {
		s.log.Error("trailserver: viewer token", "err", err)
		writeProblem(w, r, problem(http.StatusServiceUnavailable, ProblemUnavailable, "", "signing the viewer token failed"))
		return
	}
	meta := map[string]any{"viewer_token": id, "expires_at": time.Unix(c.Exp, 0).UTC().Format(time.RFC3339), "export": in.Export}
	if len(in.Actions) > 0 {
		meta["actions"] = in.Actions
	}
	if in.Actor != "" {
		meta["actor"] = in.Actor
	}
	if in.Target != "" {
		meta["target"] = in.Target
	}
	if in.Viewer != nil && in.Viewer.ID != "" {
		meta["viewer"] = in.Viewer.ID
	}
	s.recordViewerEvent(r, k, in.Tenant, "viewer_token.create", trail.Target{Type: "viewer_token", ID: id}, meta)
	writeJSON(w, http.StatusCreated, viewerTokenResponse{Token: tok, ID: id, Tenant: in.Tenant,
		URL: "/viewer/?token=" + url.QueryEscape(tok), ExpiresAt: time.Unix(c.Exp, 0).UTC()})
}

// viewerActor is who a viewer's reads are recorded as: the person the SaaS
// named, else the token itself.
func viewerActor(c *viewerClaims) trail.Actor {
	if c.Viewer != nil && c.Viewer.ID != "" {
		return trail.Actor{Type: trail.ActorUser, ID: c.Viewer.ID, Name: c.Viewer.Name, Email: c.Viewer.Email}
	}
	a := trail.Actor{Type: trail.ActorAnonymous, ID: "viewer-" + c.ID}
	if c.Viewer != nil {
		a.Name, a.Email = c.Viewer.Name, c.Viewer.Email
	}
	return a
}

func (s *Server) recordViewerEvent(r *http.Request, k *Key, tenant, action string, target trail.Target, meta map[string]any) {
	meta["endpoint"] = r.Method + " " + r.URL.Path
	ev := trail.Event{Tenant: tenant, Actor: k.Actor(), Action: action, Target: target, Outcome: trail.OutcomeSuccess,
		Metadata: meta, RequestID: clipHeader(r.Header.Get("X-Request-Id")), Source: "trail-server", RecordedAt: s.cfg.Now()}
	ev.Actor.Name = k.Name
	ev.Actor.IP = remoteIP(r)
	if err := s.recordOwn(context.WithoutCancel(r.Context()), &ev); err != nil { // own.go
		s.log.Error("trailserver: recording "+action, "err", err)
	}
}

// viewerBackend implements trailui.ViewerBackend.
type viewerBackend struct{ s *Server }

var errViewerLink = &trailui.Error{Status: http.StatusUnauthorized, Detail: "this viewer link is not valid; ask the application you came from for a new one"}

// openClaims checks a token and the key that issued it.
func (s *Server) openClaims(ctx context.Context, tok string) (viewerClaims, error) {
	c, err := s.tokenClaims(ctx, tok)
	if err != nil {
		return c, err
	}
	k, err := s.auth.keyByID(ctx, c.Issuer)
	if errors.Is(err, ErrKeyNotFound) {
		return c, errViewerLink
	}
	if err != nil {
		return c, err
	}
	if !k.Active(s.cfg.Now()) || k.Role != RoleAdmin || (!k.AllTenants() && k.Tenant != c.Tenant) {
		return c, &trailui.Error{Status: http.StatusUnauthorized, Detail: "this viewer link was withdrawn; ask the application you came from for a new one"}
	}
	return c, nil
}

// tokenClaims checks a token's signature, claims and expiry, not its
// issuing key.
func (s *Server) tokenClaims(ctx context.Context, tok string) (viewerClaims, error) {
	var c viewerClaims
	if err := s.auth.open(ctx, "viewer-token", viewerPrefix, tok, &c); err != nil {
		if errors.Is(err, errBadToken) {
			return c, errViewerLink
		}
		return c, err
	}
	if c.ID == "" || c.Issuer == "" || !trail.ValidTenant(c.Tenant) {
		return c, errViewerLink
	}
	if !s.cfg.Now().Before(time.Unix(c.Exp, 0)) {
		return c, &trailui.Error{Status: http.StatusUnauthorized, Detail: "this viewer link has expired; ask the application you came from for a new one"}
	}
	return c, nil
}

func (b viewerBackend) OpenViewer(r *http.Request, tok string) (trailui.ViewerGrant, error) {
	s := b.s
	c, err := s.openClaims(r.Context(), tok)
	if err != nil {
		return trailui.ViewerGrant{}, err
	}
	// Each token has a key's rate limit of its own: a leaked link cannot
	// flood the store with its audit.read events.
	if ok, _ := s.limiter.allow("viewer:"+c.ID, s.cfg.Now()); !ok {
		s.metrics.rateLimited.Add(1)
		return trailui.ViewerGrant{}, &trailui.Error{Status: http.StatusTooManyRequests, Detail: "too many requests with this link; wait a moment"}
	}
	vs, err := s.viewerSettings(r.Context(), c.Tenant)
	if err != nil {
		return trailui.ViewerGrant{}, err
	}
	g := trailui.ViewerGrant{Token: tok, TokenID: c.ID, Tenant: c.Tenant, Actions: c.Actions, Actor: c.Actor, Target: c.Target,
		Export: c.Export, Expires: time.Unix(c.Exp, 0).UTC(), FrameOrigins: vs.FrameOrigins, Brand: vs.Brand}
	if c.Viewer != nil {
		g.ViewerName = c.Viewer.Name
		if g.ViewerName == "" {
			g.ViewerName = c.Viewer.Email
		}
	}
	return g, nil
}

// grantQuery re-reads the claims of an opened grant into the query they
// allow. OpenViewer checked the token and its issuing key in this request:
// the signature is checked again (a grant is only what a token says), the
// key is not looked up a second time.
func (s *Server) grantQuery(ctx context.Context, g trailui.ViewerGrant) (viewerClaims, trail.Query, error) {
	c, err := s.tokenClaims(ctx, g.Token)
	if err != nil {
		return c, trail.Query{}, err
	}
	q, p := narrowing(&c, s.cfg.Now())
	if p != nil {
		return c, q, errViewerLink
	}
	return c, q, nil
}

// auditView records a viewer's read in its tenant, actor the viewer.
func (s *Server) auditView(r *http.Request, c *viewerClaims, meta map[string]any) error {
	meta["endpoint"] = r.Method + " " + r.URL.Path
	meta["viewer_token"] = c.ID
	meta["issued_by"] = "key-" + c.Issuer
	ev := trail.Event{Tenant: c.Tenant, Actor: viewerActor(c), Action: "audit.read", Outcome: trail.OutcomeSuccess,
		Description: "Viewed the audit log", Metadata: meta, RequestID: clipHeader(r.Header.Get("X-Request-Id")),
		Source: "trail-server", RecordedAt: s.cfg.Now()}
	ev.Actor.IP = remoteIP(r)
	if err := s.prepareOwn(context.WithoutCancel(r.Context()), &ev); err != nil {
		return err
	}
	return s.appendAudit(r.Context(), ev)
}

func (b viewerBackend) ViewerList(r *http.Request, g trailui.ViewerGrant, cursor string) (trailui.Page, error) {
	s := b.s
	c, q, err := s.grantQuery(r.Context(), g)
	if err != nil {
		return trailui.Page{}, err
	}
	q.Limit, q.Cursor = 50, cursor
	if len(cursor) > 1024 {
		return trailui.Page{}, &trailui.Error{Status: http.StatusBadRequest, Field: "cursor", Detail: "too long"}
	}
	page, err := s.cfg.Store.Query(r.Context(), q)
	if errors.Is(err, trail.ErrInvalidCursor) || errors.Is(err, trail.ErrInvalidQuery) {
		return trailui.Page{}, &trailui.Error{Status: http.StatusBadRequest, Field: "cursor", Detail: "this page link is not valid; start from the newest events"}
	}
	if err != nil {
		return trailui.Page{}, err
	}
	if err := s.auditView(r, &c, map[string]any{"viewer": true, "count": len(page.Events)}); err != nil {
		s.log.Error("trailserver: recording a viewer's audit.read", "err", err)
		return trailui.Page{}, errors.New("the read could not be audited")
	}
	s.reveal(r.Context(), page.Events)
	return trailui.Page{Events: page.Events, Next: page.Next}, nil
}

// ViewerExport streams the grant's events as the API's export does
// (export.go): the first page is read before answering, every write has the
// stream write deadline, and each link may hold StreamsPerKey streams.
func (b viewerBackend) ViewerExport(w http.ResponseWriter, r *http.Request, g trailui.ViewerGrant, format string) {
	s := b.s
	c, q, err := s.grantQuery(r.Context(), g)
	if err != nil {
		writeProblem(w, r, problem(http.StatusUnauthorized, ProblemUnauthorized, "token", "this viewer link is not valid"))
		return
	}
	q.Limit = exportPage
	st := s.openStream(w, r, &Key{ID: "viewer:" + c.ID}, kindUIExport)
	if st == nil {
		return
	}
	defer st.close()
	page, err := s.cfg.Store.Query(r.Context(), q)
	if err != nil {
		s.storeProblem(w, r, "the export query", err)
		return
	}
	if err := s.auditView(r, &c, map[string]any{"viewer": true, "export": format}); err != nil {
		s.log.Error("trailserver: recording a viewer's audit.read", "err", err)
		writeProblem(w, r, problem(http.StatusServiceUnavailable, ProblemUnavailable, "", "the read could not be audited"))
		return
	}
	s.writeExport(w, r, st, q, page, format, "audit-"+c.Tenant+"-"+s.cfg.Now().UTC().Format("20060102T150405Z"), false)
}

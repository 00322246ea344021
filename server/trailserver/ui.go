package trailserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailui"
)

// uiRoutes mounts the admin web UI (package trailui) at /ui/. The UI reads
// through uiBackend, which uses the API's own authentication, tenant scoping,
// audited reads and streams.
func (s *Server) uiRoutes() {
	ui, err := trailui.New(uiBackend{s}, &trailui.Config{Now: s.cfg.Now, Logger: s.log, SecureCookies: s.cfg.SecureCookies, Sessions: uiSessions{s.auth}})
	if err != nil {
		panic(err) // the templates are embedded: this is a build error
	}
	s.mux.Handle("/ui/", ui)
	s.viewerRoutes() // the tenant-facing viewer at /viewer/ (viewer.go)
}

// uiBackend implements trailui.Backend over the server.
type uiBackend struct{ s *Server }

func viewerOf(k *Key) trailui.Viewer {
	return trailui.Viewer{KeyID: k.ID, Name: k.Name, Role: string(k.Role), Tenant: k.Tenant, Handle: k}
}

func (b uiBackend) lookup(ctx context.Context, hash [32]byte) (*Key, error) {
	s := b.s
	k, err := s.cfg.Keys.Lookup(ctx, hash)
	if errors.Is(err, ErrKeyNotFound) {
		s.metrics.authFailures.Add(1)
		return nil, trailui.ErrBadKey
	}
	if err != nil {
		return nil, err
	}
	if _, err := b.check(&k); err != nil {
		return nil, err
	}
	return &k, nil
}

// check refuses a key that may not use the UI now, and applies its rate
// limit.
func (b uiBackend) check(k *Key) (trailui.Viewer, error) {
	s := b.s
	if !k.Active(s.cfg.Now()) || !k.Role.canRead() {
		s.metrics.authFailures.Add(1)
		return trailui.Viewer{}, trailui.ErrBadKey
	}
	if ok, _ := s.limiter.allow(k.ID, s.cfg.Now()); !ok {
		s.metrics.rateLimited.Add(1)
		return trailui.Viewer{}, trailui.ErrRateLimited
	}
	return viewerOf(k), nil
}

func (b uiBackend) SignIn(ctx context.Context, secret string) (trailui.Viewer, trailui.Credential, error) {
	if !wellFormedKey(secret) {
		b.s.metrics.authFailures.Add(1)
		return trailui.Viewer{}, nil, trailui.ErrBadKey
	}
	h := HashKey(secret)
	k, err := b.lookup(ctx, h)
	if err != nil {
		return trailui.Viewer{}, nil, err
	}
	return viewerOf(k), keyRef(k.ID), nil
}

// Resolve looks the session's key up by ID (session.go) and checks it as
// SignIn did.
func (b uiBackend) Resolve(ctx context.Context, cred trailui.Credential) (trailui.Viewer, error) {
	id, ok := cred.(keyRef)
	if !ok {
		return trailui.Viewer{}, trailui.ErrBadKey
	}
	k, err := b.s.auth.keyByID(ctx, string(id))
	if errors.Is(err, ErrKeyNotFound) {
		b.s.metrics.authFailures.Add(1)
		return trailui.Viewer{}, trailui.ErrBadKey
	}
	if err != nil {
		return trailui.Viewer{}, err
	}
	return b.check(&k)
}

func keyOf(v trailui.Viewer) *Key {
	k, _ := v.Handle.(*Key)
	if k == nil {
		// Never widen: a viewer without a key reads nothing.
		return &Key{ID: "none", Tenant: "\x00", Role: RoleIngest}
	}
	return k
}

func uiError(p *Problem) error {
	return &trailui.Error{Status: p.Status, Field: p.Field, Detail: p.Detail}
}

func (b uiBackend) storeError(err error) error {
	switch {
	case errors.Is(err, trail.ErrInvalidCursor), errors.Is(err, trail.ErrInvalidQuery):
		return uiError(queryProblem(err))
	}
	return err
}

// query is listEvents and history's shared path: check, scope, query,
// audit, reveal.
func (b uiBackend) query(r *http.Request, v trailui.Viewer, params url.Values, allowed []string, object string) (trailui.Page, error) {
	s, k := b.s, keyOf(v)
	if !k.Role.canRead() {
		return trailui.Page{}, &trailui.Error{Status: http.StatusForbidden, Detail: "this key cannot read events"}
	}
	if p := checkParams(params, allowed); p != nil {
		return trailui.Page{}, uiError(p)
	}
	q, p := parseQuery(params, s.cfg.Now())
	if p != nil {
		return trailui.Page{}, uiError(p)
	}
	meta := map[string]any{"filters": filtersOf(params), "ui": true}
	if object != "" {
		typ, id, _ := strings.Cut(object, ":")
		q.TargetType, q.TargetID = typ, id
		if err := checkFilters(q); err != nil {
			return trailui.Page{}, uiError(queryProblem(err))
		}
		meta["object"] = object
	}
	if p = scopeQuery(k, &q); p != nil {
		return trailui.Page{}, uiError(p)
	}
	if p = s.actorLookup(&q); p != nil {
		return trailui.Page{}, uiError(p)
	}
	page, err := s.cfg.Store.Query(r.Context(), q)
	if err != nil {
		return trailui.Page{}, b.storeError(err)
	}
	meta["count"] = len(page.Events)
	// One page view, one access event: the history page's second read (the
	// object's state) is covered by the first one's record.
	if !trailui.FollowUp(r.Context()) {
		if err := s.auditRead(r.Context(), k, r, q.Tenant, trail.Target{}, meta); err != nil {
			s.log.Error("trailserver: recording audit.read", "err", err)
			return trailui.Page{}, errors.New("the read could not be audited")
		}
	}
	s.reveal(r.Context(), page.Events)
	return trailui.Page{Events: page.Events, Next: page.Next}, nil
}

func (b uiBackend) Stats(r *http.Request, v trailui.Viewer, params url.Values) ([]trail.Count, error) {
	s, k := b.s, keyOf(v)
	if !k.Role.canRead() {
		return nil, &trailui.Error{Status: http.StatusForbidden, Detail: "this key cannot read events"}
	}
	if p := checkParams(params, statsParams); p != nil {
		return nil, uiError(p)
	}
	q, p := s.countQuery(k, params)
	if p != nil {
		return nil, uiError(p)
	}
	cs, err := s.cfg.Store.Counts(r.Context(), q)
	if err != nil {
		return nil, b.storeError(err)
	}
	if !trailui.FollowUp(r.Context()) {
		if err := s.auditRead(r.Context(), k, r, q.Tenant, trail.Target{}, map[string]any{"filters": filtersOf(params), "ui": true, "stats": true}); err != nil {
			s.log.Error("trailserver: recording audit.read", "err", err)
			return nil, errors.New("the read could not be audited")
		}
	}
	return cs, nil
}

func (b uiBackend) List(r *http.Request, v trailui.Viewer, params url.Values) (trailui.Page, error) {
	return b.query(r, v, params, listParams, "")
}

func (b uiBackend) History(r *http.Request, v trailui.Viewer, typ, id string, params url.Values) (trailui.Page, error) {
	for _, pv := range []struct{ name, v string }{{"type", typ}, {"id", id}} {
		if pv.v == "" || len(pv.v) > trail.MaxIDLen || !utf8.ValidString(pv.v) || strings.ContainsFunc(pv.v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return trailui.Page{}, &trailui.Error{Status: http.StatusBadRequest, Field: pv.name, Detail: "must be 1-256 bytes of printable UTF-8"}
		}
	}
	return b.query(r, v, params, historyParams, typ+":"+id)
}

func (b uiBackend) Event(r *http.Request, v trailui.Viewer, id uuid.UUID) (trailui.Detail, error) {
	s, k := b.s, keyOf(v)
	ev, err := s.cfg.Store.Get(r.Context(), id)
	if errors.Is(err, trail.ErrNotFound) || (err == nil && (!k.Role.canRead() || !k.mayRead(ev.Tenant))) {
		// Another tenant's event is answered exactly like a missing one.
		return trailui.Detail{}, &trailui.Error{Status: http.StatusNotFound, Detail: "no event " + id.String()}
	}
	if err != nil {
		return trailui.Detail{}, err
	}
	if err := s.auditRead(r.Context(), k, r, ev.Tenant, trail.Target{Type: "event", ID: id.String()}, map[string]any{"ui": true}); err != nil {
		s.log.Error("trailserver: recording audit.read", "err", err)
		return trailui.Detail{}, errors.New("the read could not be audited")
	}
	// The leaf and checkpoint are read by Evidence, which the page checks
	// against Stored. Reveal leaves ev as it was: it copies what it changes.
	evs := []trail.Event{ev}
	s.reveal(r.Context(), evs)
	return trailui.Detail{Event: evs[0], Stored: ev}, nil
}

// asAPI runs an API handler for the viewer's key, with only the given
// parameters, after the same role check the route makes.
func (b uiBackend) asAPI(w http.ResponseWriter, r *http.Request, v trailui.Viewer, params url.Values, h handlerFunc) {
	k := keyOf(v)
	if !k.Role.canRead() {
		writeProblem(w, r, forbidden("", "this key cannot read events"))
		return
	}
	r2 := r.Clone(r.Context())
	u := *r.URL
	u.RawQuery = params.Encode()
	r2.URL = &u
	h(w, r2, k)
}

// Export and Tail stream as the viewer's key: they count against its
// stream cap like its API streams (stream.go).
func (b uiBackend) Export(w http.ResponseWriter, r *http.Request, v trailui.Viewer, params url.Values) {
	b.asAPI(w, r, v, params, func(w http.ResponseWriter, r *http.Request, k *Key) { b.s.exportAs(w, r, k, kindUIExport) })
}

func (b uiBackend) Tail(w http.ResponseWriter, r *http.Request, v trailui.Viewer, params url.Values) {
	b.asAPI(w, r, v, params, func(w http.ResponseWriter, r *http.Request, k *Key) { b.s.tailAs(w, r, k, kindUITail) })
}

func (b uiBackend) Facets(r *http.Request, v trailui.Viewer, tenant string) (trailui.Facets, error) {
	s, k := b.s, keyOf(v)
	if !k.Role.canRead() {
		return trailui.Facets{}, nil
	}
	q := trail.Query{Tenant: tenant}
	if p := scopeQuery(k, &q); p != nil {
		return trailui.Facets{}, uiError(p)
	}
	scope := fmt.Sprintf("%t|%+v", k.AllTenants(), q)
	fs, err := s.pickers.get(scope, time.Now(), func() (FacetsResponse, error) {
		// Detached from the request: a page stops waiting after a moment
		// (trailui's facetWait) and this read then fills the cache for the
		// next one.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), facetReadTimeout)
		defer cancel()
		fs, _, err := s.facetValues(ctx, k, q)
		return fs, err
	})
	if err != nil {
		return trailui.Facets{}, b.storeError(err)
	}
	return trailui.Facets{Tenants: fs.Tenants, Actions: fs.Actions, ActorTypes: fs.ActorTypes, TargetTypes: fs.TargetTypes}, nil
}

func (b uiBackend) Tenants(ctx context.Context) ([]string, error) {
	keys, err := b.s.cfg.Keys.List(ctx, "")
	if err != nil {
		return nil, err
	}
	var ts []string
	for _, k := range keys {
		if k.Tenant != "" {
			ts = append(ts, k.Tenant)
		}
	}
	slices.Sort(ts)
	return slices.Compact(ts), nil
}

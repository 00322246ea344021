package trailui

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

// pageData is what every template gets.
type pageData struct {
	Title   string
	Prefix  string
	Path    string
	Now     time.Time
	Viewer  *Viewer
	CSRF    string
	Next    string
	Message string
	Error   *Error
	// Zone is where the page's times are shown and its inputs read
	// (zone.go); ZoneUTC is the viewer's choice of UTC.
	Zone      *time.Location
	ZoneUTC   bool
	ZoneLabel string
	// Access marks the Access log page (the audit.* events).
	Access bool
	// Activity is the list's count and histogram (histogram.go).
	Activity *Activity

	Filter  Filter
	Tenants []string
	Facets  Facets // the pickers' values (withTenants)
	Events  []trail.Event
	Older   string
	Newer   string
	Newest  string
	Heading string // actor page
	Actor   string

	Detail    *Detail
	Integrity *verdict
	RawJSON   string

	ObjectType, ObjectID string
	ObjectTenant         string
	At                   string
	AtTime               time.Time
	State                *State
}

var quickRanges = []struct{ Label, Since string }{{"Last hour", "1h"}, {"Last day", "1d"}, {"Last 7 days", "7d"}, {"Last 30 days", "30d"}}

func (h *Handler) base(rq *request, title string) *pageData {
	return &pageData{Title: title, Viewer: &rq.viewer, CSRF: rq.sess.csrf}
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request, rq *request) {
	f := parseFilter(r.URL.Query())
	h.listPage(w, r, rq, f, "Events", "", h.cfg.Prefix+"/")
}

// access is the Access log: the access events (audit.*, the reads Trail
// records of its own log) that the other views leave out.
func (h *Handler) access(w http.ResponseWriter, r *http.Request, rq *request) {
	f := parseFilter(r.URL.Query())
	f.Action = ""
	h.listPage(w, r, rq, f, "Access log", "", h.cfg.Prefix+"/access")
}

func (h *Handler) actor(w http.ResponseWriter, r *http.Request, rq *request) {
	actor := r.PathValue("actor")
	f := parseFilter(r.URL.Query())
	f.Actor = actor
	h.listPage(w, r, rq, f, "Actor "+actor, actor, h.cfg.Prefix+"/actors/"+url.PathEscape(actor))
}

func (h *Handler) listPage(w http.ResponseWriter, r *http.Request, rq *request, f Filter, title, actor, path string) {
	if !rq.viewer.AllTenants() {
		// A tenant viewer reads its own tenant; the parameter is moot.
		f.Tenant = ""
	}
	d := h.base(rq, title)
	d.Filter, d.Heading, d.Actor = f, title, actor
	// The pickers' values are read beside the page's own reads, not after
	// them: on a cold scope (a tenant not listed in the last facetTTL) the
	// sample of its newest events cost 63-71 ms p95 at 10 M events, as
	// much as the rest of the page.
	facets := h.facetsAsync(r, rq, f.Tenant)
	zone, _ := zoneOf(r)
	params, e := f.API(zone)
	if e != nil {
		h.renderError(w, r, &rq.viewer, e)
		return
	}
	if actor != "" {
		params.Set("actor", actor)
	}
	if path == h.cfg.Prefix+"/access" {
		d.Access = true
		params.Set("action", trail.AccessActions)
	}
	if f.Cursor != "" {
		params.Set("cursor", f.Cursor)
	}
	params.Set("limit", "50")
	page, err := h.be.List(r, rq.viewer, params)
	if err != nil {
		var ue *Error
		if asError(err, &ue) && ue.Status == http.StatusBadRequest {
			// Show the form again with the message, so the filter can be fixed.
			d.Message = ue.Error()
			h.render(w, r, http.StatusBadRequest, "list", h.withTenantsFrom(r, rq, d, facets))
			return
		}
		h.fail(w, r, &rq.viewer, err)
		return
	}
	d.Events = page.Events
	d.Activity = h.activity(r, rq.viewer, f, params, path, h.cfg.Now())
	pathF := f
	if actor != "" {
		pathF.Actor = ""
	}
	if page.Next != "" {
		d.Older = pathF.OlderURL(path, page.Next)
	}
	d.Newer = pathF.NewerURL(path)
	if f.Cursor != "" {
		d.Newest = pathF.URL(path)
	}
	h.render(w, r, http.StatusOK, "list", h.withTenantsFrom(r, rq, d, facets))
}

// facetsRead is one Backend.Facets answer.
type facetsRead struct {
	fs  Facets
	err error
}

// facetsAsync starts Backend.Facets for tenant and returns where its answer
// arrives (once; the channel is buffered, so an abandoned read ends on its
// own, with the request's context).
func (h *Handler) facetsAsync(r *http.Request, rq *request, tenant string) <-chan facetsRead {
	c := make(chan facetsRead, 1)
	go func() {
		fs, err := h.be.Facets(r, rq.viewer, tenant)
		c <- facetsRead{fs, err}
	}()
	return c
}

// withTenants fills the filter form's pickers: the tenants (those with
// keys, those with events, those on the page) and the data's actions,
// actor types and target types.
func (h *Handler) withTenants(r *http.Request, rq *request, d *pageData) *pageData {
	return h.withTenantsFrom(r, rq, d, h.facetsAsync(r, rq, d.Filter.Tenant))
}

// facetWait is how long a page waits for its pickers' values. A scope
// nobody viewed in the last facetTTL costs a sample of its newest events
// (63-71 ms p95, up to ~130 ms on a busy server, at 10 M events on
// PostgreSQL); the page does not wait that long: it shows the pickers
// without the sampled values, and the read goes on and fills the cache
// for the next page (the Backend reads them detached from this request).
const facetWait = 50 * time.Millisecond

// withTenantsFrom is withTenants with the facets read already started.
func (h *Handler) withTenantsFrom(r *http.Request, rq *request, d *pageData, facets <-chan facetsRead) *pageData {
	var fs Facets
	select {
	case got := <-facets:
		fs = got.fs
		if got.err != nil {
			h.log.Warn("trailui: facets", "err", got.err)
		}
	case <-time.After(facetWait):
	}
	d.Facets = fs
	if !rq.viewer.AllTenants() {
		return d
	}
	ts, err := h.be.Tenants(r.Context())
	if err != nil {
		h.log.Warn("trailui: tenants", "err", err)
	}
	ts = append(ts, fs.Tenants...)
	for _, ev := range d.Events {
		if ev.Tenant != "" {
			ts = append(ts, ev.Tenant)
		}
	}
	slices.Sort(ts)
	d.Tenants = slices.Compact(ts)
	return d
}

// eventID is the {id} of an event's path, or false after a 404 page.
func (h *Handler) eventID(w http.ResponseWriter, r *http.Request, rq *request) (uuid.UUID, bool) {
	raw := r.PathValue("id")
	id, err := uuid.Parse(raw)
	if err != nil || len(raw) != 36 {
		h.renderError(w, r, &rq.viewer, &Error{Status: http.StatusNotFound, Detail: "no event " + raw})
		return uuid.Nil, false
	}
	return id, true
}

func (h *Handler) detail(w http.ResponseWriter, r *http.Request, rq *request) {
	id, ok := h.eventID(w, r, rq)
	if !ok {
		return
	}
	det, err := h.be.Event(r, rq.viewer, id)
	if err != nil {
		h.fail(w, r, &rq.viewer, err)
		return
	}
	// The integrity badge is checked here, from the event as stored: never
	// taken from the backend's word that a leaf exists.
	ev, err := h.be.Evidence(r, rq.viewer, &det)
	if err != nil {
		h.fail(w, r, &rq.viewer, err)
		return
	}
	v := verify(&ev)
	d := h.base(rq, det.Event.Action+" · event")
	d.Detail, d.Integrity = &det, &v
	b, err := json.MarshalIndent(det.Event, "", "  ")
	if err == nil {
		d.RawJSON = string(b)
	}
	h.render(w, r, http.StatusOK, "detail", d)
}

// proof downloads the event's inclusion proof: the API's JSON, which
// examples/verifyproof (and trailseal's InclusionProof.Verify) check
// offline.
func (h *Handler) proof(w http.ResponseWriter, r *http.Request, rq *request) {
	id, ok := h.eventID(w, r, rq)
	if !ok {
		return
	}
	h.be.Proof(&attachment{ResponseWriter: w, name: "trail-proof-" + id.String() + ".json"}, r, rq.viewer, id)
}

// attachment marks a successful answer as a file to save; a problem
// answer is shown as it is.
type attachment struct {
	http.ResponseWriter
	name  string
	wrote bool
}

func (a *attachment) WriteHeader(code int) {
	if !a.wrote {
		a.wrote = true
		if code == http.StatusOK {
			a.Header().Set("Content-Disposition", `attachment; filename="`+a.name+`"`)
		}
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *attachment) Write(b []byte) (int, error) {
	if !a.wrote {
		a.WriteHeader(http.StatusOK)
	}
	return a.ResponseWriter.Write(b)
}

func (h *Handler) object(w http.ResponseWriter, r *http.Request, rq *request) {
	typ, id := r.PathValue("type"), r.PathValue("id")
	q := r.URL.Query()
	f := Filter{Cursor: q.Get("cursor")}
	if p := q.Get("prev"); p != "" {
		f.Prev = strings.Split(p, ",")
	}
	tenant := q.Get("tenant")
	if !rq.viewer.AllTenants() {
		tenant = ""
	}
	d := h.base(rq, typ+":"+id+" · history")
	d.ObjectType, d.ObjectID, d.ObjectTenant = typ, id, tenant
	params := url.Values{"limit": {"50"}}
	if tenant != "" {
		params.Set("tenant", tenant)
	}
	if f.Cursor != "" {
		params.Set("cursor", f.Cursor)
	}
	page, err := h.be.History(r, rq.viewer, typ, id, params)
	if err != nil {
		h.fail(w, r, &rq.viewer, err)
		return
	}
	d.Events = page.Events
	path := h.cfg.Prefix + "/objects/" + url.PathEscape(typ) + "/" + url.PathEscape(id)
	f.Tenant = tenant
	if page.Next != "" {
		d.Older = f.OlderURL(path, page.Next)
	}
	d.Newer = f.NewerURL(path)

	// The state as of a time: every change up to it, applied oldest first.
	at := h.cfg.Now().UTC()
	d.At = strings.TrimSpace(q.Get("at"))
	if d.At != "" {
		zone, _ := zoneOf(r)
		s, _ := uiTime(d.At, false, zone)
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			h.renderError(w, r, &rq.viewer, &Error{Status: http.StatusBadRequest, Field: "at", Detail: "must be a date (2026-01-02), a date and time in the page's zone (2026-01-02 15:04) or RFC 3339"})
			return
		}
		at = t.UTC()
	}
	d.AtTime = at
	sp := url.Values{"limit": {"1000"}, "until": {at.Add(time.Microsecond).Format(time.RFC3339Nano)}}
	if tenant != "" {
		sp.Set("tenant", tenant)
	}
	all, err := h.be.History(followUp(r), rq.viewer, typ, id, sp)
	if err != nil {
		h.fail(w, r, &rq.viewer, err)
		return
	}
	st := Reconstruct(all.Events, at)
	st.Truncated = all.Next != ""
	d.State = &st
	h.render(w, r, http.StatusOK, "object", d)
}

func (h *Handler) tailPage(w http.ResponseWriter, r *http.Request, rq *request) {
	f := parseFilter(r.URL.Query())
	if !rq.viewer.AllTenants() {
		f.Tenant = ""
	}
	d := h.base(rq, "Live tail")
	d.Filter = f
	h.render(w, r, http.StatusOK, "tail", h.withTenants(r, rq, d))
}

func (h *Handler) tailStream(w http.ResponseWriter, r *http.Request, rq *request) {
	f := parseFilter(r.URL.Query())
	if !rq.viewer.AllTenants() {
		f.Tenant = ""
	}
	v := f.Values()
	v.Del("since")
	v.Del("until")
	v.Set("include_access", "false")
	v.Set("backlog", "20")
	h.be.Tail(w, r, rq.viewer, v)
}

func (h *Handler) export(w http.ResponseWriter, r *http.Request, rq *request) {
	f := parseFilter(r.URL.Query())
	if !rq.viewer.AllTenants() {
		f.Tenant = ""
	}
	zone, _ := zoneOf(r)
	v, e := f.API(zone)
	if e != nil {
		h.renderError(w, r, &rq.viewer, e)
		return
	}
	if r.URL.Query().Get("access") == "1" {
		v.Set("action", trail.AccessActions)
	}
	format := r.URL.Query().Get("format")
	if format != "csv" {
		format = "jsonl"
	}
	v.Set("format", format)
	h.be.Export(w, r, rq.viewer, v)
}

func asError(err error, target **Error) bool {
	e, ok := err.(*Error)
	if ok {
		*target = e
	}
	return ok
}

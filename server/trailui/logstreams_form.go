package trailui

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// LogStreamForm is the log-streams page's creation form, in the field
// names of POST /v1/log-streams (docs/log-streams.md): a backend turns it
// into that request's body and creates the stream through the API's own
// logic (scope, test delivery, audit event).
type LogStreamForm struct {
	Tenant     string
	AllTenants bool
	Name       string
	Type       string
	// Destination fields; only those of Type are sent.
	URL         string
	Encoding    string
	Address     string
	TLS         bool
	Transport   string // syslog: relp (acknowledged) or tcp
	CAPEM       string
	Endpoint    string
	Bucket      string
	Prefix      string
	Region      string
	AccessKeyID string
	Index       string
	SourceType  string
	Service     string
	Secret      string
	Format      string
	Actions     string // space- or comma-separated
	Outcome     string
	MaxEvents   string
	MaxWaitMS   string
	Paused      bool
}

// Request returns the form as the body of POST /v1/log-streams: the
// destination fields of its type only, numbers parsed (a field that is not
// a number is an *Error naming it).
func (f *LogStreamForm) Request() (map[string]any, error) {
	d := map[string]any{"type": f.Type}
	set := func(k, v string) {
		if v != "" {
			d[k] = v
		}
	}
	switch f.Type {
	case "webhook":
		set("url", f.URL)
		set("encoding", f.Encoding)
	case "splunk_hec":
		set("url", f.URL)
		set("index", f.Index)
		set("sourcetype", f.SourceType)
	case "datadog":
		set("url", f.URL)
		set("service", f.Service)
	case "syslog":
		set("address", f.Address)
		set("transport", f.Transport)
		if f.TLS {
			d["tls"] = true
		}
	case "s3":
		set("endpoint", f.Endpoint)
		set("bucket", f.Bucket)
		set("prefix", f.Prefix)
		set("region", f.Region)
		set("access_key_id", f.AccessKeyID)
	}
	if f.Type != "s3" {
		set("ca_pem", f.CAPEM)
	}
	req := map[string]any{"destination": d}
	if f.Tenant != "" {
		req["tenant"] = f.Tenant
	}
	if f.AllTenants {
		req["all_tenants"] = true
	}
	if f.Name != "" {
		req["name"] = f.Name
	}
	if f.Format != "" {
		req["format"] = f.Format
	}
	if f.Secret != "" && f.Type != "syslog" {
		req["secret"] = f.Secret
	}
	if f.Paused {
		req["paused"] = true
	}
	filter := map[string]any{}
	if acts := strings.FieldsFunc(f.Actions, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' }); len(acts) > 0 {
		filter["actions"] = acts
	}
	if f.Outcome != "" {
		filter["outcome"] = f.Outcome
	}
	if len(filter) > 0 {
		req["filter"] = filter
	}
	batching := map[string]any{}
	for _, n := range []struct{ field, key, v string }{{"batching.max_events", "max_events", f.MaxEvents}, {"batching.max_wait_ms", "max_wait_ms", f.MaxWaitMS}} {
		if n.v == "" {
			continue
		}
		i, err := strconv.Atoi(strings.TrimSpace(n.v))
		if err != nil {
			return nil, &Error{Status: http.StatusBadRequest, Field: n.field, Detail: "must be a whole number"}
		}
		batching[n.key] = i
	}
	if len(batching) > 0 {
		req["batching"] = batching
	}
	return req, nil
}

// LogStreamChange is what a creation or a change did: the stream, the
// secret Trail generated (shown once) and notes (a filter that matches no
// stored event).
type LogStreamChange struct {
	ID     string
	Name   string
	Secret string
	Notes  []string
}

// Operations of ChangeLogStream.
const (
	LogStreamPause  = "pause"
	LogStreamResume = "resume"
	LogStreamDelete = "delete"
	LogStreamRotate = "rotate-secret"
)

// LogStreamManager is what a Backend implements to create and change log
// streams from the page, for admin viewers: a tenant admin only its
// tenant's. It must go through the same checks as the API
// (/v1/log-streams); errors the viewer should see are *Error values
// (Field names the form field, Status 422 a refused test delivery).
type LogStreamManager interface {
	LogStreamLister
	CreateLogStream(r *http.Request, v Viewer, f *LogStreamForm) (LogStreamChange, error)
	// ChangeLogStream pauses, resumes, deletes or rotates the secret of
	// stream id; for a rotation secret is the new one ("" generates a
	// webhook's) and endOverlap stops signing with the old one now.
	ChangeLogStream(r *http.Request, v Viewer, id, op, secret string, endOverlap bool) (LogStreamChange, error)
}

// logStreamFormRoutes adds the page's POST endpoints (CSRF-checked by
// authed, as every UI form).
func (h *Handler) logStreamFormRoutes() {
	p := h.cfg.Prefix
	h.mux.HandleFunc("POST "+p+"/log-streams", h.authed(h.createLogStream))
	h.mux.HandleFunc("POST "+p+"/log-streams/{id}/{op}", h.authed(h.changeLogStream))
}

// formFields are the form's inputs by the API field they fill.
var formFields = []string{"tenant", "all_tenants", "name", "destination.type", "destination.url", "destination.encoding",
	"destination.address", "destination.transport", "destination.tls", "destination.ca_pem", "destination.endpoint", "destination.bucket",
	"destination.prefix", "destination.region", "destination.access_key_id", "destination.index",
	"destination.sourcetype", "destination.service", "secret", "format", "filter.actions", "filter.outcome",
	"batching.max_events", "batching.max_wait_ms", "paused"}

func parseLogStreamForm(r *http.Request) *LogStreamForm {
	v := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	return &LogStreamForm{
		Tenant: v("tenant"), AllTenants: v("all_tenants") == "on", Name: v("name"), Type: v("destination.type"),
		URL: v("destination.url"), Encoding: v("destination.encoding"), Address: v("destination.address"), Transport: v("destination.transport"),
		TLS: v("destination.tls") == "on", CAPEM: v("destination.ca_pem"), Endpoint: v("destination.endpoint"),
		Bucket: v("destination.bucket"), Prefix: v("destination.prefix"), Region: v("destination.region"),
		AccessKeyID: v("destination.access_key_id"), Index: v("destination.index"), SourceType: v("destination.sourcetype"),
		Service: v("destination.service"), Secret: r.PostFormValue("secret"), Format: v("format"),
		Actions: v("filter.actions"), Outcome: v("filter.outcome"), MaxEvents: v("batching.max_events"),
		MaxWaitMS: v("batching.max_wait_ms"), Paused: v("paused") == "on",
	}
}

// viewerError sorts a backend error into what the page shows: an *Error
// (inline), or a logged failure shown as 503.
func (h *Handler) viewerError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	h.log.Error("trailui: log streams", "err", err)
	return &Error{Status: http.StatusServiceUnavailable, Detail: "The log stream could not be changed; retry later."}
}

// logStreamManager returns the backend's LogStreamManager for an admin
// viewer; otherwise it answers the page (404 on a server without log
// streams, 403 for a key that is not admin) and reports false.
func (h *Handler) logStreamManager(w http.ResponseWriter, r *http.Request, rq *request, verb string) (LogStreamManager, bool) {
	mgr, ok := h.be.(LogStreamManager)
	if !ok {
		h.renderError(w, r, &rq.viewer, &Error{Status: http.StatusNotFound, Detail: "Log streams cannot be " + verb + " on this server."})
		return nil, false
	}
	if rq.viewer.Role != "admin" {
		h.renderError(w, r, &rq.viewer, &Error{Status: http.StatusForbidden, Detail: "Log streams are managed with an admin key."})
		return nil, false
	}
	return mgr, true
}

// createLogStream answers the creation form: the page again with the
// error beside its field (the entered values kept, never the secret), or
// the new stream — with a generated secret shown this once, else a
// redirect so that a reload does not create it twice.
func (h *Handler) createLogStream(w http.ResponseWriter, r *http.Request, rq *request) {
	mgr, ok := h.logStreamManager(w, r, rq, "created")
	if !ok {
		return
	}
	f := parseLogStreamForm(r)
	c, err := mgr.CreateLogStream(r, rq.viewer, f)
	if err != nil {
		e := h.viewerError(err)
		f.Secret = ""
		d := &logStreamsData{Form: f, Problem: e, Errs: map[string]string{}}
		if e.Status == http.StatusUnprocessableEntity {
			d.Refused = e.Detail
		}
		if e.Field != "" {
			for _, k := range formFields {
				if k == e.Field {
					d.Errs[k] = e.Detail
				}
			}
		}
		h.renderLogStreams(w, r, rq, e.Status, d)
		return
	}
	if c.Secret == "" && len(c.Notes) == 0 {
		http.Redirect(w, r, h.cfg.Prefix+"/log-streams?op=create&done="+url.QueryEscape(c.ID), http.StatusSeeOther)
		return
	}
	h.renderLogStreams(w, r, rq, http.StatusOK, &logStreamsData{Done: "Created log stream " + c.ID + ".", Secret: c.Secret, SecretOf: c.ID, Notes: c.Notes})
}

// changeLogStream answers a row's pause, resume, delete and rotate-secret
// buttons.
func (h *Handler) changeLogStream(w http.ResponseWriter, r *http.Request, rq *request) {
	mgr, ok := h.logStreamManager(w, r, rq, "changed")
	if !ok {
		return
	}
	id, op := r.PathValue("id"), r.PathValue("op")
	switch op {
	case LogStreamPause, LogStreamResume, LogStreamDelete, LogStreamRotate:
	default:
		h.renderError(w, r, &rq.viewer, &Error{Status: http.StatusNotFound, Detail: "no such page"})
		return
	}
	if !streamIDRE.MatchString(id) {
		h.renderLogStreams(w, r, rq, http.StatusNotFound, &logStreamsData{Problem: &Error{Status: http.StatusNotFound, Detail: "no such log stream"}})
		return
	}
	c, err := mgr.ChangeLogStream(r, rq.viewer, id, op, r.PostFormValue("secret"), r.PostFormValue("end_overlap") == "on")
	if err != nil {
		e := h.viewerError(err)
		h.renderLogStreams(w, r, rq, e.Status, &logStreamsData{Problem: &Error{Status: e.Status, Field: e.Field, Detail: "Log stream " + id + ": " + e.Error()}})
		return
	}
	if op == LogStreamRotate {
		done := "Rotated the secret of log stream " + id + "."
		if c.Secret == "" {
			done = "Rotated the secret of log stream " + id + " to the one you gave."
		}
		h.renderLogStreams(w, r, rq, http.StatusOK, &logStreamsData{Done: done, Secret: c.Secret, SecretOf: id})
		return
	}
	http.Redirect(w, r, h.cfg.Prefix+"/log-streams?op="+op+"&done="+url.QueryEscape(id), http.StatusSeeOther)
}

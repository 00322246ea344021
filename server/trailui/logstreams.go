package trailui

import (
	"bytes"
	"html/template"
	"net/http"
	"sync"
	"time"
)

// LogStream is one log stream as the log-streams page shows it: its
// destination (never its secret) and its health (docs/log-streams.md).
type LogStream struct {
	ID          string
	Tenant      string // "" with AllTenants
	AllTenants  bool
	Name        string
	Destination string // "webhook https://…", "syslog://host:port", "s3://bucket/prefix" …
	Format      string
	State       string // pending, healthy, error, paused
	LastSuccess *time.Time
	LastError   string
	Delivered   int64
	LagEvents   int64
	LagSeconds  float64
	DeadLetters int64
}

// LogStreamLister is what a Backend implements to have the log-streams
// page: the streams an admin viewer manages (its tenant's, or all). It is
// optional: without it the page answers 404.
type LogStreamLister interface {
	LogStreams(r *http.Request, v Viewer) ([]LogStream, error)
}

type logStreamsData struct {
	*pageData
	Streams []LogStream
}

var (
	logStreamsOnce sync.Once
	logStreamsTmpl *template.Template
	logStreamsErr  error
)

// logStreamsPage lists the viewer's log streams with their health; admin
// viewers only (a reader key manages no streams).
func (h *Handler) logStreamsPage(w http.ResponseWriter, r *http.Request, rq *request) {
	lister, ok := h.be.(LogStreamLister)
	if !ok {
		h.renderError(w, r, &rq.viewer, &Error{Status: http.StatusNotFound, Detail: "Log streams are not configured on this server."})
		return
	}
	if rq.viewer.Role != "admin" {
		h.renderError(w, r, &rq.viewer, &Error{Status: http.StatusForbidden, Detail: "Log streams are managed with an admin key."})
		return
	}
	streams, err := lister.LogStreams(r, rq.viewer)
	if err != nil {
		h.log.Error("trailui: log streams", "err", err)
		h.renderError(w, r, &rq.viewer, &Error{Status: http.StatusServiceUnavailable, Detail: "The log streams could not be read."})
		return
	}
	logStreamsOnce.Do(func() {
		funcs := h.funcs()
		funcs["deref"] = func(t *time.Time) time.Time { return *t }
		logStreamsTmpl, logStreamsErr = template.New("logstreams").Funcs(funcs).ParseFS(templateFS,
			"templates/layout.html", "templates/parts.html", "templates/logstreams.html")
	})
	if logStreamsErr != nil {
		h.log.Error("trailui: template", "page", "logstreams", "err", logStreamsErr)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	d := h.base(rq, "Log streams")
	d.Prefix, d.Path = h.cfg.Prefix, r.URL.EscapedPath()
	d.Zone, d.ZoneUTC = zoneOf(r)
	d.Now = h.cfg.Now().In(d.Zone)
	d.ZoneLabel = zoneLabel(d.Zone, d.Now)
	var buf bytes.Buffer
	if err := logStreamsTmpl.ExecuteTemplate(&buf, "layout", logStreamsData{pageData: d, Streams: streams}); err != nil {
		h.log.Error("trailui: template", "page", "logstreams", "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

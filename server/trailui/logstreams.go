package trailui

import (
	"bytes"
	"html/template"
	"net/http"
	"regexp"
	"sync"
	"time"
)

// streamIDRE is a log stream's ID (logstream's "ls_" and 20 hex digits, a
// little wider): the only text a ?done= link may put on the page.
var streamIDRE = regexp.MustCompile(`^ls_[0-9a-zA-Z_-]{1,64}$`)

// LogStream is one log stream as the log-streams page shows it: its
// destination (never its secret) and its health (docs/log-streams.md).
type LogStream struct {
	ID          string
	Tenant      string // "" with AllTenants
	AllTenants  bool
	Name        string
	Type        string // webhook, syslog, s3, splunk_hec, datadog
	Destination string // "webhook https://…", "syslog://host:port", "s3://bucket/prefix" …
	Format      string
	Filter      string // "auth.* user.delete, failure"; "" for every event
	Enabled     bool
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
	// Manage is set when the backend can create and change streams
	// (LogStreamManager): the page has the form and the row actions.
	Manage bool
	Form   *LogStreamForm
	// Errs are the form's errors by field ("destination.url"); Problem
	// the whole answer's.
	Errs    map[string]string
	Problem *Error
	// Refused is the reason of a refused test delivery (422), shown in
	// the destination's fieldset.
	Refused string
	// Done says what the last change did; Secret is a secret Trail just
	// generated, shown this once, with SecretOf the stream it belongs to.
	Done     string
	Secret   string
	SecretOf string
	Notes    []string
}

var (
	logStreamsOnce sync.Once
	logStreamsTmpl *template.Template
	logStreamsErr  error
)

// logStreamsPage lists the viewer's log streams with their health; admin
// viewers only (a reader key manages no streams).
func (h *Handler) logStreamsPage(w http.ResponseWriter, r *http.Request, rq *request) {
	d := &logStreamsData{} // renderLogStreams gives it the empty form
	if id := r.URL.Query().Get("done"); streamIDRE.MatchString(id) {
		switch r.URL.Query().Get("op") {
		case "create":
			d.Done = "Created log stream " + id + "."
		case "pause":
			d.Done = "Paused log stream " + id + "."
		case "resume":
			d.Done = "Resumed log stream " + id + "."
		case "delete":
			d.Done = "Deleted log stream " + id + "."
		}
	}
	h.renderLogStreams(w, r, rq, http.StatusOK, d)
}

// renderLogStreams renders the page with d's form state, after checking
// the viewer may see it.
func (h *Handler) renderLogStreams(w http.ResponseWriter, r *http.Request, rq *request, status int, d *logStreamsData) {
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
		funcs["ls_types"] = func() [][2]string {
			return [][2]string{{"webhook", "Webhook (HTTPS)"}, {"syslog", "Syslog (RFC 5424 over RELP or TCP, TLS optional)"}, {"s3", "S3-compatible bucket"}, {"splunk_hec", "Splunk HEC"}, {"datadog", "Datadog Logs"}}
		}
		logStreamsTmpl, logStreamsErr = template.New("logstreams").Funcs(funcs).ParseFS(templateFS,
			"templates/layout.html", "templates/parts.html", "templates/logstreams.html", "templates/logstreams_form.html")
	})
	if logStreamsErr != nil {
		h.log.Error("trailui: template", "page", "logstreams", "err", logStreamsErr)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	pd := h.base(rq, "Log streams")
	pd.Prefix, pd.Path = h.cfg.Prefix, h.cfg.Prefix+"/log-streams"
	pd.Zone, pd.ZoneUTC = zoneOf(r)
	pd.Now = h.cfg.Now().In(pd.Zone)
	pd.ZoneLabel = zoneLabel(pd.Zone, pd.Now)
	d.pageData, d.Streams = pd, streams
	_, d.Manage = h.be.(LogStreamManager)
	if d.Form == nil {
		d.Form = &LogStreamForm{Encoding: "json", Format: "trail"}
	}
	var buf bytes.Buffer
	if err := logStreamsTmpl.ExecuteTemplate(&buf, "layout", d); err != nil {
		h.log.Error("trailui: template", "page", "logstreams", "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

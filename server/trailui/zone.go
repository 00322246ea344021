package trailui

import (
	"net/http"
	"net/url"
	"strings"
	"time"
	_ "time/tzdata" // the viewer's zone must load on hosts without zoneinfo

	"github.com/trailhq/trail"
)

// One clock (issue 15): every time on a page is shown in one zone, named
// beside it, and every date or time typed into a filter is read in that
// same zone. The zone is the viewer's own (the browser's, which app.js
// stores in a cookie) unless the viewer switched to UTC (a cookie too, so
// the choice persists). Without JavaScript, or before the browser's zone is
// known, it is UTC.
const (
	// zoneCookie holds the viewer's choice: "utc", or "local" (the default).
	zoneCookie = "trail_tz"
	// browserZoneCookie holds the browser's IANA zone, written by app.js.
	browserZoneCookie = "trail_browser_tz"
)

// zoneOf returns the zone the request's pages show and read times in, and
// whether the viewer chose UTC.
func zoneOf(r *http.Request) (*time.Location, bool) {
	if c, err := r.Cookie(zoneCookie); err == nil && c.Value == "utc" {
		return time.UTC, true
	}
	return browserZone(r), false
}

// browserZone returns the browser's zone as app.js reported it, else UTC.
func browserZone(r *http.Request) *time.Location {
	c, err := r.Cookie(browserZoneCookie)
	if err != nil || len(c.Value) > 96 {
		return time.UTC
	}
	name, err := url.QueryUnescape(c.Value) // app.js encodes the / of Area/City
	if err != nil {
		return time.UTC
	}
	loc, err := trail.LoadZone(name) // remembered: a page asks once or twice
	if err != nil {
		return time.UTC
	}
	return loc
}

// zoneLabel names a zone for the page: its IANA name and its abbreviation
// now ("America/Los_Angeles (PST)").
func zoneLabel(loc *time.Location, now time.Time) string {
	abbr, _ := now.In(loc).Zone()
	if loc == time.UTC || loc.String() == abbr {
		return loc.String()
	}
	return loc.String() + " (" + abbr + ")"
}

// switchZone is the header's zone switch (POST tz=utc or tz=local, next:
// the page's path and query, which app.js fills in; else the Referer). It
// keeps the choice in the trail_tz cookie, as app.js would, and goes back to
// the page with the times typed into it (since, until, at) rewritten from
// the zone it showed to the zone chosen: the page shows the same events,
// with its times and inputs in the other zone. Reading the old values in the
// new zone would quietly move the range by the zones' offset (issue 15: from
// Los Angeles, "Dec 2" became Dec 2 UTC and lost the evening's events).
func (h *Handler) switchZone(w http.ResponseWriter, r *http.Request, rq *request) {
	tz := r.PostFormValue("tz")
	to := time.UTC
	switch tz {
	case "utc":
	case "local":
		to = browserZone(r)
	default:
		h.renderError(w, r, &rq.viewer, &Error{Status: http.StatusBadRequest, Field: "tz", Detail: "must be utc or local"})
		return
	}
	from, _ := zoneOf(r)
	next := r.PostFormValue("next")
	if next == "" {
		if u, err := url.Parse(r.Referer()); err == nil && u.Host == r.Host {
			next = u.RequestURI()
		}
	}
	next = rezoneURL(safeNext(h.cfg.Prefix, next), from, to)
	http.SetCookie(w, &http.Cookie{Name: zoneCookie, Value: tz, Path: "/", MaxAge: 365 * 24 * 3600,
		Secure: r.TLS != nil || h.cfg.SecureCookies, SameSite: http.SameSiteLaxMode}) // app.js reads it: not HttpOnly
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// zonedParams are the UI's query parameters that hold a date or time read
// in the page's zone.
var zonedParams = []string{"since", "until", "at"}

// rezoneURL rewrites the zoned parameters of a local URL that hold a date
// or a date and time without a zone (read in from) into the same instant as
// a date and time in to. RFC 3339 times and durations back from now name
// the same instant in every zone and stay as they are.
func rezoneURL(next string, from, to *time.Location) string {
	u, err := url.Parse(next)
	if err != nil || u.RawQuery == "" {
		return next
	}
	q := u.Query()
	changed := false
	for _, k := range zonedParams {
		v := strings.TrimSpace(q.Get(k))
		if v == "" {
			continue
		}
		// uiTime rewrites exactly the forms without a zone (into RFC 3339
		// UTC); every other form comes back as it was.
		s, e := uiTime(v, k == "until", from)
		if e != nil || s == v {
			continue
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			continue
		}
		w := t.In(to) // seconds too: old zones' offsets have some (LMT)
		layout := "2006-01-02T15:04"
		if w.Second() != 0 {
			layout = "2006-01-02T15:04:05"
		}
		nv := w.Format(layout)
		// A wall time that names another instant in the new zone (the
		// repeated hour when clocks go back, a year without four digits)
		// becomes the instant itself, in RFC 3339.
		if back, e := uiTime(nv, k == "until", to); e != nil || back != s {
			nv = s
		}
		q.Set(k, nv)
		changed = true
	}
	if !changed {
		return next
	}
	u.RawQuery = q.Encode()
	return u.RequestURI()
}

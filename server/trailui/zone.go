package trailui

import (
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
	_ "time/tzdata" // the viewer's zone must load on hosts without zoneinfo
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
	c, err := r.Cookie(browserZoneCookie)
	if err != nil || len(c.Value) > 96 {
		return time.UTC, false
	}
	name, err := url.QueryUnescape(c.Value) // app.js encodes the / of Area/City
	if err != nil || name == "" || name == "Local" {
		return time.UTC, false
	}
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), false
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC, false
	}
	if zoneCount.Add(1) <= maxZones {
		zones.Store(name, loc)
	}
	return loc, false
}

// zones holds the zones zoneOf loaded, by name: time.LoadLocation reads and
// parses the zone's file on every call, and a page asks once or twice. Only
// names that load are kept, at most maxZones of them (the zone database has
// about 600; a case-insensitive file system loads more spellings).
var (
	zones     sync.Map
	zoneCount atomic.Int64
)

const maxZones = 1024

// zoneLabel names a zone for the page: its IANA name and its abbreviation
// now ("America/Los_Angeles (PST)").
func zoneLabel(loc *time.Location, now time.Time) string {
	abbr, _ := now.In(loc).Zone()
	if loc == time.UTC || loc.String() == abbr {
		return loc.String()
	}
	return loc.String() + " (" + abbr + ")"
}

package trailui

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/trailhq/trail"
)

// Activity is the list page's count and histogram: how many events match
// every filter of the list and how they spread over the filtered time
// range, one bar per day in the page's zone (the stores count that zone's
// days: the stats API's tz). Without a time range the page says why no
// count is shown.
type Activity struct {
	Total int64
	Bars  []Bar
	Max   int64
	// Zone names the zone the days are in ("UTC", "America/Los_Angeles").
	Zone string
	// Why, when set, says why no count is shown.
	Why string
}

// Bar is one day of the histogram, laid out for an SVG of 100 units high.
type Bar struct {
	Day    string // 2026-01-02, in Activity.Zone
	N      int64
	X, W   float64
	Y, H   float64
	Filter string // the list of that day
}

// maxBars bounds the histogram: a longer range is not drawn.
const maxBars = 400

// activity counts f's events through the backend, as a follow-up read of
// the page view that listed them.
func (h *Handler) activity(r *http.Request, v Viewer, f Filter, params url.Values, path string, now time.Time) *Activity {
	if params.Get("since") == "" {
		return &Activity{Why: "Pick a time range (since, or a quick range) to see the count and the activity per day."}
	}
	// Every filter of the list: the count is of what the list pages through.
	sp := url.Values{}
	for k := range params {
		if s := params.Get(k); s != "" && k != "limit" && k != "cursor" && k != "include_access" {
			sp.Set(k, s)
		}
	}
	// The Access log's audit.* is kept: WithoutAccess honours a filter that
	// names the access events.
	sp.Set("action", trail.WithoutAccess(params.Get("action")))
	zone, _ := zoneOf(r)
	if zone != time.UTC {
		sp.Set("tz", zone.String())
	}
	cs, err := h.be.Stats(followUp(r), v, sp)
	if err != nil {
		h.log.Warn("trailui: activity", "err", err)
		return &Activity{Why: "The count is not available right now."}
	}
	a := &Activity{Zone: zone.String()}
	perDay := map[string]int64{}
	for _, c := range cs {
		a.Total += c.N
		perDay[c.Day.In(zone).Format("2006-01-02")] += c.N
	}
	since, err1 := time.Parse(time.RFC3339Nano, params.Get("since"))
	until := now
	if u := params.Get("until"); u != "" {
		if t, err := time.Parse(time.RFC3339Nano, u); err == nil {
			until = t
		}
	}
	if err1 != nil {
		if d, ok := agoDuration(params.Get("since")); ok {
			since = now.Add(-d)
		} else {
			return a
		}
	}
	// Local days: a day is 23 or 25 hours when the clocks change.
	y, m, d := since.In(zone).Date()
	first := time.Date(y, m, d, 0, 0, 0, 0, zone)
	for day := first; !day.After(until); day = day.AddDate(0, 0, 1) {
		if len(a.Bars) == maxBars {
			a.Bars = nil
			return a
		}
		n := perDay[day.Format("2006-01-02")]
		a.Max = max(a.Max, n)
		a.Bars = append(a.Bars, Bar{Day: day.Format("2006-01-02"), N: n})
	}
	if len(a.Bars) == 0 {
		return a
	}
	w := 1000.0 / float64(len(a.Bars))
	for i := range a.Bars {
		b := &a.Bars[i]
		b.X, b.W = float64(i)*w, max(w-1, 0.5)
		if a.Max > 0 {
			b.H = 100 * float64(b.N) / float64(a.Max)
		}
		b.Y = 100 - b.H
		ff := f
		// A date is midnight in the page's zone, and as until the day's end.
		ff.Since, ff.Until, ff.Cursor, ff.Prev = b.Day, b.Day, "", nil
		b.Filter = ff.URL(path)
	}
	return a
}

func formatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

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
// range, one bar per UTC day (the stores count per UTC day; the page says
// so on the bars). Without a time range the page says why no count is shown.
type Activity struct {
	Total int64
	Bars  []Bar
	Max   int64
	// Why, when set, says why no count is shown.
	Why string
}

// Bar is one day of the histogram, laid out for an SVG of 100 units high.
type Bar struct {
	Day    string // 2026-01-02 (UTC)
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
	cs, err := h.be.Stats(followUp(r), v, sp)
	if err != nil {
		h.log.Warn("trailui: activity", "err", err)
		return &Activity{Why: "The count is not available right now."}
	}
	a := &Activity{}
	perDay := map[string]int64{}
	for _, c := range cs {
		a.Total += c.N
		perDay[c.Day.UTC().Format("2006-01-02")] += c.N
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
	first := since.UTC().Truncate(24 * time.Hour)
	days := int(until.UTC().Sub(first)/(24*time.Hour)) + 1
	if days < 1 || days > maxBars {
		return a
	}
	for i := range days {
		day := first.AddDate(0, 0, i).Format("2006-01-02")
		n := perDay[day]
		a.Max = max(a.Max, n)
		a.Bars = append(a.Bars, Bar{Day: day, N: n})
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
		ff.Since, ff.Until, ff.Cursor, ff.Prev = b.Day+"T00:00:00Z", first.AddDate(0, 0, i+1).Format(time.RFC3339), "", nil
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

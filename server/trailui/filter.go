package trailui

import (
	"net/url"
	"strings"
	"time"
)

// Filter is the event list's filter as the URL carries it: the GET form's
// fields, so that every filtered view is a shareable link.
type Filter struct {
	Tenant  string
	Actor   string // type:id
	Action  string // exact, or a prefix like subscription.*
	Target  string // type:id
	Since   string // RFC 3339, a date, a date and time (UTC), or 1h/1d/30d back
	Until   string
	Outcome string
	Text    string
	// Cursor is the page being shown; Prev the cursors of the newer pages
	// before it ("-" for the first), so that "Newer" can step back without
	// counting anything.
	Cursor string
	Prev   []string
}

const maxPrev = 20

var filterFields = []string{"tenant", "actor", "action", "target", "since", "until", "outcome", "text"}

func parseFilter(q url.Values) Filter {
	g := func(k string) string { return strings.TrimSpace(q.Get(k)) }
	f := Filter{Tenant: g("tenant"), Actor: g("actor"), Action: g("action"), Target: g("target"),
		Since: g("since"), Until: g("until"), Outcome: g("outcome"), Text: g("text"), Cursor: g("cursor")}
	if p := g("prev"); p != "" {
		f.Prev = strings.Split(p, ",")
		if len(f.Prev) > maxPrev {
			f.Prev = f.Prev[len(f.Prev)-maxPrev:]
		}
	}
	return f
}

func (f Filter) get(k string) string {
	switch k {
	case "tenant":
		return f.Tenant
	case "actor":
		return f.Actor
	case "action":
		return f.Action
	case "target":
		return f.Target
	case "since":
		return f.Since
	case "until":
		return f.Until
	case "outcome":
		return f.Outcome
	case "text":
		return f.Text
	}
	return ""
}

// Values returns the filter's URL parameters without paging.
func (f Filter) Values() url.Values {
	v := url.Values{}
	for _, k := range filterFields {
		if s := f.get(k); s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// Active reports whether any filter is set.
func (f Filter) Active() bool { return len(f.Values()) > 0 }

// API returns the filter as API query parameters, the dates in RFC 3339.
func (f Filter) API() (url.Values, *Error) {
	v := f.Values()
	for _, k := range []string{"since", "until"} {
		if s := v.Get(k); s != "" {
			t, err := uiTime(s, k == "until")
			if err != nil {
				return nil, err
			}
			v.Set(k, t)
		}
	}
	return v, nil
}

// uiTime accepts the forms people type besides the API's own (RFC 3339 and
// 30d): a date ("2026-01-02": midnight UTC; as an until bound, the end of
// that day) and a date with a time in UTC ("2026-01-02 15:04").
func uiTime(s string, until bool) (string, *Error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		if until {
			t = t.AddDate(0, 0, 1)
		}
		return t.Format(time.RFC3339), nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Format(time.RFC3339), nil
		}
	}
	return s, nil // RFC 3339 or a duration: the API checks it
}

// URL returns path with the filter and extra parameters.
func (f Filter) URL(path string, extra ...string) string {
	v := f.Values()
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			v.Del(extra[i])
		} else {
			v.Set(extra[i], extra[i+1])
		}
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// OlderURL is the link to the page after this one.
func (f Filter) OlderURL(path, next string) string {
	cur := f.Cursor
	if cur == "" {
		cur = "-"
	}
	prev := append(append([]string(nil), f.Prev...), cur)
	if len(prev) > maxPrev {
		prev = prev[len(prev)-maxPrev:]
	}
	return f.URL(path, "cursor", next, "prev", strings.Join(prev, ","))
}

// NewerURL is the link to the page before this one, or "" on the first page.
// When the trail of previous cursors ran out, it is the newest page.
func (f Filter) NewerURL(path string) string {
	if f.Cursor == "" {
		return ""
	}
	if len(f.Prev) == 0 {
		return f.URL(path)
	}
	last := f.Prev[len(f.Prev)-1]
	if last == "-" {
		last = ""
	}
	return f.URL(path, "cursor", last, "prev", strings.Join(f.Prev[:len(f.Prev)-1], ","))
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

package trailui

import (
	"net/url"
	"strings"
	"time"

	"github.com/trailhq/trail"
)

// Filter is the event list's filter as the URL carries it: the GET form's
// fields, so that every filtered view is a shareable link.
type Filter struct {
	Tenant  string
	Actor   string // type:id
	Action  string // an action filter: *.delete, a,b lists, !audit.* (trail.ParseActionFilter)
	Target  string // type:id
	Since   string // a date, a date and time in the viewer's zone, RFC 3339, or 1h/7d/30d back
	Until   string
	Outcome string
	Field   string // a changed field (plan, address.city)
	Text    string
	Meta    string // a word or value in the metadata (OPS-311)
	// Cursor is the page being shown; Prev the cursors of the newer pages
	// before it ("-" for the first), so that "Newer" can step back without
	// counting anything.
	Cursor string
	Prev   []string
}

const maxPrev = 20

var filterFields = []string{"tenant", "actor", "action", "target", "since", "until", "outcome", "field", "text", "metadata"}

func parseFilter(q url.Values) Filter {
	g := func(k string) string { return strings.TrimSpace(q.Get(k)) }
	f := Filter{Tenant: g("tenant"), Actor: g("actor"), Action: g("action"), Target: g("target"),
		Since: g("since"), Until: g("until"), Outcome: g("outcome"), Field: g("field"), Text: g("text"), Meta: g("metadata"), Cursor: g("cursor")}
	// A quick range ("Last 7 days") is a submit button of the filter form:
	// it replaces the time bounds and keeps every other value typed in the
	// form, applied or not.
	if r := g("range"); r != "" && validRange(r) {
		f.Since, f.Until, f.Cursor = r, "", ""
	}
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
	case "field":
		return f.Field
	case "text":
		return f.Text
	case "metadata":
		return f.Meta
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

// API returns the filter as API query parameters, the dates in RFC 3339:
// dates and times without a zone are read in zone, the one the page shows.
// The access events (audit.*) are left out unless the action filter names
// them: they have their own page, the Access log.
func (f Filter) API(zone *time.Location) (url.Values, *Error) {
	v := f.Values()
	v.Set("include_access", "false")
	if a := v.Get("actor"); a != "" {
		// The actor box takes type:id (or a type), an e-mail, a user's ID
		// alone (one word with a digit: 42, u_123) or a name.
		typ, _, _ := strings.Cut(a, ":")
		switch {
		case trail.ActorType(typ).Valid():
		case !strings.ContainsAny(a, "@: ") && strings.ContainsAny(a, "0123456789"):
			v.Set("actor", "user:"+a)
		case strings.Contains(a, "@"):
			v.Del("actor")
			v.Set("actor_email", a)
		default:
			v.Del("actor")
			v.Set("actor_name", a)
		}
	}
	for _, k := range []string{"since", "until"} {
		if s := v.Get(k); s != "" {
			t, err := uiTime(s, k == "until", zone)
			if err != nil {
				return nil, err
			}
			v.Set(k, t)
		}
	}
	return v, nil
}

// uiTime accepts the forms people type besides the API's own (RFC 3339 and
// 30d): a date ("2026-01-02": midnight in zone; as an until bound, the end
// of that day) and a date with a time in zone ("2026-01-02T15:04", what
// <input type=datetime-local> sends, or "2026-01-02 15:04").
func uiTime(s string, until bool, zone *time.Location) (string, *Error) {
	if zone == nil {
		zone = time.UTC
	}
	if t, err := time.ParseInLocation("2006-01-02", s, zone); err == nil {
		if until {
			t = t.AddDate(0, 0, 1)
		}
		return t.UTC().Format(time.RFC3339), nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02 15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, zone); err == nil {
			return t.UTC().Format(time.RFC3339), nil
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

// validRange reports whether r is a quick range: a duration back from now
// of at most 4 digits and a unit h, d or w (1h, 7d, 30d).
func validRange(r string) bool {
	if len(r) < 2 || len(r) > 5 || !strings.ContainsRune("hdw", rune(r[len(r)-1])) {
		return false
	}
	for _, c := range r[:len(r)-1] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// InputValue is the value of a datetime-local input for a bound as the URL
// carries it: a date or date and time typed earlier are shown as they are
// (they are in zone already), RFC 3339 and durations back from now as the
// minute they name in zone; anything else as typed (the page's error then
// names it).
func InputValue(s string, until bool, zone *time.Location, now time.Time) string {
	if s == "" {
		return ""
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if _, err := time.Parse(layout, s); err == nil {
			return s
		}
	}
	v, e := uiTime(s, until, zone)
	if e != nil {
		return s
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		d, ok := agoDuration(s)
		if !ok {
			return s
		}
		t = now.Add(-d)
	}
	if t.Second() != 0 {
		return t.In(zone).Format("2006-01-02T15:04:05")
	}
	return t.In(zone).Format("2006-01-02T15:04")
}

func agoDuration(s string) (time.Duration, bool) {
	if !validRange(s) {
		return 0, false
	}
	var n int
	for _, c := range s[:len(s)-1] {
		n = n*10 + int(c-'0')
	}
	u := map[byte]time.Duration{'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}[s[len(s)-1]]
	return time.Duration(n) * u, true
}

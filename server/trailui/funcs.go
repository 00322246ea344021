package trailui

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/url"
	"time"

	"github.com/trailhq/trail"
)

var pages = []string{"login", "error", "list", "detail", "object", "tail"}

func (h *Handler) parseTemplates() error {
	h.tmpl = map[string]*template.Template{}
	for _, p := range pages {
		t, err := template.New(p).Funcs(h.funcs()).ParseFS(templateFS, "templates/layout.html", "templates/parts.html", "templates/"+p+".html")
		if err != nil {
			return fmt.Errorf("trailui: templates: %w", err)
		}
		h.tmpl[p] = t
	}
	return nil
}

// utcTime is a time as pages show it; isoTime is its datetime attribute.
func utcTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

func isoTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// funcs are the templates' helpers. None returns template.HTML: every value
// they produce is escaped by html/template like any other.
func (h *Handler) funcs() template.FuncMap {
	p := h.cfg.Prefix
	return template.FuncMap{
		"utc": utcTime,
		"iso": isoTime,
		"rel": relTime,
		"short": func(id fmt.Stringer) string {
			s := id.String()
			if len(s) > 13 {
				return s[len(s)-12:]
			}
			return s
		},
		"diff":  diffRows,
		"value": showValue,
		"json": func(v any) string {
			b, err := json.MarshalIndent(v, "", "  ")
			if err != nil {
				return "?"
			}
			return string(b)
		},
		"eventURL": func(ev trail.Event) string { return p + "/events/" + ev.ID.String() },
		// Links built from an event carry its tenant: the actor's or the
		// object's events in one tenant is the common question, and the
		// cheapest (the page's tenant filter can be cleared).
		"actorURL": func(a trail.Actor, tenant string) string {
			u := p + "/actors/" + url.PathEscape(a.String())
			if tenant != "" {
				u += "?tenant=" + url.QueryEscape(tenant)
			}
			return u
		},
		"objectURL": func(t trail.Target, tenant string) string {
			u := p + "/objects/" + url.PathEscape(t.Type) + "/" + url.PathEscape(t.ID)
			if tenant != "" {
				u += "?tenant=" + url.QueryEscape(tenant)
			}
			return u
		},
		"exportURL": func(f Filter, actor, format string) string {
			return f.URL(p+"/export", "actor", cmpOr(actor, f.Actor), "format", format)
		},
		"since": func(f Filter, path, since string) string {
			f.Until = ""
			return f.URL(path, "since", since)
		},
		// at pairs a time with the page's Now, which carries the zone the
		// page shows (zone.go): T is in that zone.
		"at": func(t, now time.Time) any { return struct{ T, Now time.Time }{t.In(now.Location()), now} },
		// zoned shows a time with its zone's name: one clock, always named.
		"zoned": func(t time.Time) string { return t.Format("2006-01-02 15:04:05 MST") },
		"inputValue": func(s string, until bool, now time.Time) string {
			return InputValue(s, until, now.Location(), now)
		},
		"quickRanges": func() any { return quickRanges },
		"outcomes":    func() []string { return []string{"success", "failure", "denied"} },
		"tailURL":     func(f Filter) string { return f.URL(p + "/tail/stream") },
		"isTarget":    func(t trail.Target) bool { return t.Type != "" && t.ID != "" },
		"count":       formatCount,
	}
}

// relTime says how long before now t was, coarsely: "3 min ago".
func relTime(t, now time.Time) string {
	d := now.Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		s = "just now"
		return s
	case d < time.Hour:
		s = fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%d h", int(d/time.Hour))
	case d < 60*24*time.Hour:
		s = fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	case d < 730*24*time.Hour:
		s = fmt.Sprintf("%d months", int(d/(30*24*time.Hour)))
	default:
		s = fmt.Sprintf("%d years", int(d/(365*24*time.Hour)))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

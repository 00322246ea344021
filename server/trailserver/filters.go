package trailserver

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trailhq/trail"
)

// Query parameters accepted by the read endpoints. Every endpoint rejects a
// parameter it does not know, so that a misspelt filter ("tennant=") is an
// error rather than a silently wider result.
var (
	listParams    = []string{"tenant", "actor", "actor_name", "actor_email", "action", "target", "since", "until", "outcome", "field", "text", "metadata", "include_access", "limit", "cursor"}
	exportParams  = []string{"tenant", "actor", "actor_name", "actor_email", "action", "target", "since", "until", "outcome", "field", "text", "metadata", "include_access", "format", "form"}
	tailParams    = []string{"tenant", "actor", "actor_name", "actor_email", "action", "target", "outcome", "field", "text", "metadata", "include_access", "backlog"}
	historyParams = []string{"tenant", "since", "until", "limit", "cursor"}
	// statsParams are the list's filters: a count is of what the list shows.
	statsParams  = []string{"tenant", "actor", "actor_name", "actor_email", "action", "target", "since", "until", "outcome", "field", "text", "metadata", "include_access", "tz"}
	facetsParams = []string{"tenant"}
)

const maxParamLen = 512

// checkParams rejects unknown, repeated, oversized or non-UTF-8 parameters.
func checkParams(v url.Values, allowed []string) *Problem {
	names := make([]string, 0, len(v))
	for k := range v {
		names = append(names, k)
	}
	slices.Sort(names) // report the same parameter every time
	for _, k := range names {
		if !slices.Contains(allowed, k) {
			return badRequest(clipStr(k), fmt.Sprintf("unknown query parameter; this endpoint takes %s", strings.Join(allowed, ", ")))
		}
		vals := v[k]
		if len(vals) > 1 {
			return badRequest(k, "given more than once")
		}
		if len(vals[0]) > maxParamLen {
			return badRequest(k, fmt.Sprintf("%d bytes, at most %d", len(vals[0]), maxParamLen))
		}
		if !utf8.ValidString(vals[0]) {
			return badRequest(k, "not valid UTF-8")
		}
		if strings.ContainsFunc(vals[0], func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return badRequest(k, "contains control characters")
		}
	}
	return nil
}

// parseQuery turns query parameters into a trail.Query. Tenant scoping is
// applied by the caller (scopeQuery): until then the query names the
// tenant asked for, or none.
func parseQuery(v url.Values, now time.Time) (trail.Query, *Problem) {
	var q trail.Query
	q.Tenant = v.Get("tenant")
	if q.Tenant != "" && !trail.ValidTenant(q.Tenant) {
		return q, badRequest("tenant", fmt.Sprintf("%q is not a valid tenant", clipStr(q.Tenant)))
	}
	if s := v.Get("actor"); s != "" {
		typ, id, _ := strings.Cut(s, ":")
		q.ActorType, q.ActorID = trail.ActorType(typ), id
		if !q.ActorType.Valid() {
			return q, badRequest("actor", fmt.Sprintf("%q must be type:id with type user, service, system or anonymous", clipStr(s)))
		}
	}
	q.ActorName, q.ActorEmail = v.Get("actor_name"), v.Get("actor_email")
	q.Action = v.Get("action")
	if s := v.Get("target"); s != "" {
		typ, id, ok := strings.Cut(s, ":")
		if !ok || typ == "" || id == "" {
			return q, badRequest("target", fmt.Sprintf("%q must be type:id", clipStr(s)))
		}
		q.TargetType, q.TargetID = typ, id
	}
	var p *Problem
	if q.Since, p = parseTime("since", v.Get("since"), now); p != nil {
		return q, p
	}
	if q.Until, p = parseTime("until", v.Get("until"), now); p != nil {
		return q, p
	}
	q.Outcome = trail.Outcome(v.Get("outcome"))
	q.Field = v.Get("field")
	q.Text = v.Get("text")
	q.Metadata = v.Get("metadata")
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > trail.MaxLimit {
			return q, badRequest("limit", fmt.Sprintf("%q must be an integer from 1 to %d", clipStr(s), trail.MaxLimit))
		}
		q.Limit = n
	}
	q.Cursor = v.Get("cursor")
	switch v.Get("include_access") {
	case "", "true":
	case "false":
		q.Action = trail.WithoutAccess(q.Action)
	default:
		return q, badRequest("include_access", "must be true or false")
	}
	if err := checkFilters(q); err != nil {
		return q, queryProblem(err)
	}
	return q, nil
}

// ActorLookup finds an encrypted actor name or e-mail through its
// pseudonyms (trail.Lookup): *trailprivacy.Privacy implements it. A server
// whose Config.Reveal is one searches through it; without one (no privacy
// layer) the stored fields are plaintext and match as they are.
type ActorLookup interface {
	LookupActor(q *trail.Query) error
}

// actorLookup turns the plaintext actor_name and actor_email of a scoped
// query into the pseudonyms stored with events whose fields the privacy
// layer encrypted. Pseudonyms are per tenant: such a search names one
// tenant (a tenant key's is its own).
func (s *Server) actorLookup(q *trail.Query) *Problem {
	l, ok := s.cfg.Reveal.(ActorLookup)
	if !ok || l.LookupActor(q) == nil {
		return nil
	}
	name := "actor_email"
	if q.ActorEmail == "" {
		name = "actor_name"
	}
	return badRequest(name, "name a tenant: encrypted names and e-mails are found through the tenant's pseudonyms")
}

// hideAccess applies the list's default for access events (the audit.*
// events, trail.AccessActions): without include_access they are left out,
// unless the action filter names them (action=audit.read).
func hideAccess(q *trail.Query, v url.Values) {
	if v.Get("include_access") == "" {
		q.Action = trail.WithoutAccess(q.Action)
	}
}

// checkFilters validates q before the key's tenant scope is applied
// (scopeQuery), so a query that names no tenant is not refused for it: the
// filters are checked as for a read of every tenant. The scoped query is
// validated again by the store.
func checkFilters(q trail.Query) error {
	if q.Tenant == "" {
		q.AllTenants = true
	}
	return q.Validate()
}

// queryProblem turns a trail.Query validation error into a problem naming
// the parameter ("trail: invalid query: action: ..." names action).
func queryProblem(err error) *Problem {
	if errors.Is(err, trail.ErrInvalidCursor) {
		return badRequest("cursor", "not a cursor this server issued")
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, trail.ErrInvalidQuery.Error()+": "); ok {
		if field, detail, ok := strings.Cut(rest, ": "); ok {
			return badRequest(field, detail)
		}
		return badRequest("", rest)
	}
	return badRequest("", msg)
}

// parseTime accepts RFC 3339 or a duration back from now: 90s, 15m, 12h,
// 30d, 2w.
func parseTime(field, s string, now time.Time) (time.Time, *Problem) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		if t.Year() < 1970 || t.Year() > 9999 {
			return time.Time{}, badRequest(field, "year out of range 1970-9999")
		}
		return t.UTC(), nil
	}
	d, ok := parseAgo(s)
	if !ok {
		return time.Time{}, badRequest(field, fmt.Sprintf("%q must be RFC 3339 (2026-01-02T15:04:05Z) or a duration back from now (30d, 12h, 15m)", clipStr(s)))
	}
	return now.Add(-d).UTC(), nil
}

// parseAgo parses durations with units s, m, h, d (24h) and w (7d), up to
// 100 years.
func parseAgo(s string) (time.Duration, bool) {
	if len(s) < 2 {
		return 0, false
	}
	unit := s[len(s)-1]
	n, err := strconv.ParseUint(s[:len(s)-1], 10, 32)
	if err != nil {
		return 0, false
	}
	var u time.Duration
	switch unit {
	case 's':
		u = time.Second
	case 'm':
		u = time.Minute
	case 'h':
		u = time.Hour
	case 'd':
		u = 24 * time.Hour
	case 'w':
		u = 7 * 24 * time.Hour
	default:
		return 0, false
	}
	if time.Duration(n) > 100*365*24*time.Hour/u {
		return 0, false
	}
	return time.Duration(n) * u, true
}

// ParseDuration parses a key lifetime like 90d, 12h or 2w (the --expires
// flag and the expires_in field).
func ParseDuration(s string) (time.Duration, error) {
	d, ok := parseAgo(s)
	if !ok || d <= 0 {
		return 0, fmt.Errorf("%q is not a duration like 90d, 12h or 2w", clipStr(s))
	}
	return d, nil
}

// filtersOf returns the filters of a request as audit metadata: the
// parameters given, verbatim (they were checked to be short UTF-8).
func filtersOf(v url.Values) map[string]any {
	m := make(map[string]any, len(v))
	for k, vals := range v {
		if k == "cursor" || len(vals) == 0 {
			continue
		}
		m[k] = vals[0]
	}
	return m
}

// countQuery is the CountQuery of the stats filters in v: the list's
// filters, and tz, the IANA zone whose days the counts are per (UTC when
// absent), so that a page showing Los Angeles times counts Los Angeles days.
func (s *Server) countQuery(k *Key, v url.Values) (trail.CountQuery, *Problem) {
	q, p := s.scopedQuery(k, v)
	if p != nil {
		return trail.CountQuery{}, p
	}
	cq := q.Counts()
	if name := v.Get("tz"); name != "" {
		loc, err := trail.LoadZone(name)
		if err != nil || len(name) > 64 {
			return cq, badRequest("tz", "must be an IANA time zone name such as America/Los_Angeles, or UTC")
		}
		cq.Zone = loc
	}
	return cq, nil
}

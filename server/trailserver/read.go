package trailserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

// EventPage is the body of GET /v1/events and of an object's history.
type EventPage struct {
	Events []trail.Event `json:"events"`
	// NextCursor continues with the next (older) page; absent on the last.
	NextCursor string `json:"next_cursor,omitempty"`
}

// StatsResponse is the body of GET /v1/stats.
type StatsResponse struct {
	Counts []trail.Count `json:"counts"`
}

// scopeTenant applies the key's tenant to a read: a tenant key reads only
// its tenant (asking for another is 403), an all-tenant key reads what it
// asks for, every tenant when it names none.
func scopeTenant(k *Key, tenant string) (string, *Problem) {
	if k.AllTenants() {
		return tenant, nil
	}
	if tenant != "" && tenant != k.Tenant {
		return "", forbidden("tenant", fmt.Sprintf("this key reads only tenant %q", k.Tenant))
	}
	return k.Tenant, nil
}

// scopeQuery applies the key's tenant scope (scopeTenant) to q: a tenant
// key's query reads its tenant; an all-tenant key's query that names no
// tenant reads every tenant and the platform events (AllTenants).
func scopeQuery(k *Key, q *trail.Query) *Problem {
	t, p := scopeTenant(k, q.Tenant)
	if p != nil {
		return p
	}
	q.Tenant, q.AllTenants = t, t == "" && k.AllTenants()
	return nil
}

// scopedQuery parses a read's filters and applies the key's tenant scope
// to them (see parseQuery and scopeQuery).
func (s *Server) scopedQuery(k *Key, v url.Values) (trail.Query, *Problem) {
	q, p := parseQuery(v, s.cfg.Now())
	if p != nil {
		return q, p
	}
	if p = scopeQuery(k, &q); p != nil {
		return q, p
	}
	return q, s.actorLookup(&q)
}

// auditRead records that k read something: every read is itself an event,
// action audit.read, by actor service:key-<id>, in the tenant read (a
// platform event when an all-tenant key read across tenants). A read whose
// audit record cannot be written is refused: unaudited reads must not happen.
// The event is stored with those of concurrent reads, in one Append, before
// auditRead returns (auditgroup.go).
func (s *Server) auditRead(ctx context.Context, k *Key, r *http.Request, tenant string, target trail.Target, meta map[string]any) error {
	_, err := s.recordRead(ctx, k, r, tenant, target, meta)
	return err
}

// recordRead is auditRead returning the audit event's ID.
func (s *Server) recordRead(ctx context.Context, k *Key, r *http.Request, tenant string, target trail.Target, meta map[string]any) (uuid.UUID, error) {
	if meta == nil {
		meta = map[string]any{}
	}
	if f, ok := meta["filters"].(map[string]any); ok && len(f) == 0 {
		delete(meta, "filters")
	}
	meta["endpoint"] = r.Method + " " + r.URL.Path
	ev := trail.Event{
		Tenant:      tenant,
		Actor:       k.Actor(),
		Action:      "audit.read",
		Target:      target,
		Outcome:     trail.OutcomeSuccess,
		Description: "Read " + r.URL.Path,
		Metadata:    meta,
		RequestID:   clipHeader(r.Header.Get("X-Request-Id")),
		Source:      "trail-server",
		RecordedAt:  s.cfg.Now(),
	}
	ev.Actor.IP = remoteIP(r)
	if err := s.prepareOwn(context.WithoutCancel(ctx), &ev); err != nil {
		return uuid.Nil, err
	}
	if err := s.appendAudit(ctx, ev); err != nil {
		return uuid.Nil, err
	}
	return ev.ID, nil
}

func clipHeader(s string) string {
	if len(s) > trail.MaxIDLen || !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return ""
	}
	return s
}

func remoteIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}

func (s *Server) auditFailed(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("trailserver: recording audit.read", "err", err)
	writeProblem(w, r, problem(http.StatusServiceUnavailable, ProblemUnavailable, "", "the read could not be audited; retry later"))
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request, k *Key) {
	v := r.URL.Query()
	if p := checkParams(v, listParams); p != nil {
		writeProblem(w, r, p)
		return
	}
	q, p := s.scopedQuery(k, v)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	// One's own reads would drown the list (issue 15): GET /v1/events
	// leaves the access events out unless asked (include_access=true, or an
	// action filter naming audit.*). Exports and the tail keep them unless
	// include_access=false: they feed archives and SIEMs.
	hideAccess(&q, v)
	page, err := s.cfg.Store.Query(r.Context(), q)
	if err != nil {
		s.storeProblem(w, r, "the query", err)
		return
	}
	if err := s.auditRead(r.Context(), k, r, q.Tenant, trail.Target{}, map[string]any{"filters": filtersOf(v), "count": len(page.Events)}); err != nil {
		s.auditFailed(w, r, err)
		return
	}
	s.reveal(r.Context(), page.Events)
	writeJSON(w, http.StatusOK, EventPage{Events: nonNil(page.Events), NextCursor: page.Next})
}

func nonNil(evs []trail.Event) []trail.Event {
	if evs == nil {
		return []trail.Event{}
	}
	return evs
}

// eventOf reads the event named by the path's {id} (a request that takes no
// query parameters) when k may read it. Another tenant's event is answered
// exactly like a missing one. It returns false once it has answered with a
// problem.
func (s *Server) eventOf(w http.ResponseWriter, r *http.Request, k *Key) (trail.Event, uuid.UUID, bool) {
	if p := checkParams(r.URL.Query(), nil); p != nil {
		writeProblem(w, r, p)
		return trail.Event{}, uuid.UUID{}, false
	}
	raw := r.PathValue("id")
	id, err := uuid.Parse(raw)
	if err != nil || len(raw) != 36 {
		writeProblem(w, r, badRequest("id", "must be a UUID like 0190a5c8-7d3e-7cc1-8a55-2f0e4d7e1b2a"))
		return trail.Event{}, uuid.UUID{}, false
	}
	ev, err := s.cfg.Store.Get(r.Context(), id)
	if errors.Is(err, trail.ErrNotFound) || (err == nil && !k.mayRead(ev.Tenant)) {
		writeProblem(w, r, notFound("no event "+id.String()))
		return trail.Event{}, uuid.UUID{}, false
	}
	if err != nil {
		s.storeProblem(w, r, "reading the event", err)
		return trail.Event{}, uuid.UUID{}, false
	}
	return ev, id, true
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request, k *Key) {
	ev, id, ok := s.eventOf(w, r, k)
	if !ok {
		return
	}
	if err := s.auditRead(r.Context(), k, r, ev.Tenant, trail.Target{Type: "event", ID: id.String()}, nil); err != nil {
		s.auditFailed(w, r, err)
		return
	}
	evs := []trail.Event{ev}
	s.reveal(r.Context(), evs)
	s.writeEvent(w, r.Context(), evs[0])
}

func (s *Server) history(w http.ResponseWriter, r *http.Request, k *Key) {
	v := r.URL.Query()
	if p := checkParams(v, historyParams); p != nil {
		writeProblem(w, r, p)
		return
	}
	typ, id := r.PathValue("type"), r.PathValue("id")
	for _, pv := range []struct{ name, v string }{{"type", typ}, {"id", id}} {
		if pv.v == "" || len(pv.v) > trail.MaxIDLen || !utf8.ValidString(pv.v) || strings.ContainsFunc(pv.v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			writeProblem(w, r, badRequest(pv.name, "must be 1-256 bytes of printable UTF-8"))
			return
		}
	}
	q, p := parseQuery(v, s.cfg.Now())
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	q.TargetType, q.TargetID = typ, id
	if err := checkFilters(q); err != nil {
		writeProblem(w, r, queryProblem(err))
		return
	}
	if p = scopeQuery(k, &q); p != nil {
		writeProblem(w, r, p)
		return
	}
	page, err := s.cfg.Store.Query(r.Context(), q)
	if err != nil {
		s.storeProblem(w, r, "the history query", err)
		return
	}
	// The object goes in metadata, not in Target: reading a history must not
	// add to that history.
	if err := s.auditRead(r.Context(), k, r, q.Tenant, trail.Target{}, map[string]any{"object": typ + ":" + id, "filters": filtersOf(v), "count": len(page.Events)}); err != nil {
		s.auditFailed(w, r, err)
		return
	}
	s.reveal(r.Context(), page.Events)
	writeJSON(w, http.StatusOK, EventPage{Events: nonNil(page.Events), NextCursor: page.Next})
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request, k *Key) {
	v := r.URL.Query()
	if p := checkParams(v, statsParams); p != nil {
		writeProblem(w, r, p)
		return
	}
	q, p := s.countQuery(k, v)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	counts, err := s.cfg.Store.Counts(r.Context(), q)
	if err != nil {
		s.storeProblem(w, r, "counting", err)
		return
	}
	if counts == nil {
		counts = []trail.Count{}
	}
	if err := s.auditRead(r.Context(), k, r, q.Tenant, trail.Target{}, map[string]any{"filters": filtersOf(v)}); err != nil {
		s.auditFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, StatsResponse{Counts: counts})
}

// keyView is a key as the API shows it; Key carries the secret only in the
// answer to its creation.
type keyView struct {
	Key
	Secret string `json:"key,omitempty"`
}

type createKeyRequest struct {
	Tenant    string `json:"tenant"`
	All       bool   `json:"all_tenants"`
	Role      Role   `json:"role"`
	Name      string `json:"name"`
	ExpiresIn string `json:"expires_in"`
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request, k *Key) {
	var in createKeyRequest
	body := http.MaxBytesReader(w, r.Body, 64<<10)
	if field, detail := decodeStrict(body, &in); detail != "" {
		writeProblem(w, r, badRequest(field, detail))
		return
	}
	req := NewKeyRequest{Tenant: in.Tenant, All: in.All, Role: in.Role, Name: in.Name}
	if in.ExpiresIn != "" {
		d, err := ParseDuration(in.ExpiresIn)
		if err != nil {
			writeProblem(w, r, badRequest("expires_in", err.Error()))
			return
		}
		req.TTL = d
	}
	if p := req.validate(); p != nil {
		writeProblem(w, r, p)
		return
	}
	if !k.AllTenants() && (req.All || req.Tenant != k.Tenant) {
		writeProblem(w, r, forbidden("tenant", fmt.Sprintf("this key manages only tenant %q", k.Tenant)))
		return
	}
	nk, secret, err := CreateKey(r.Context(), s.cfg.Keys, req, s.cfg.Now())
	if err != nil {
		s.log.Error("trailserver: create key", "err", err)
		writeProblem(w, r, problem(http.StatusServiceUnavailable, ProblemUnavailable, "", "creating the key failed"))
		return
	}
	s.recordKeyEvent(r, k, "api_key.create", nk)
	writeJSON(w, http.StatusCreated, keyView{Key: nk, Secret: secret})
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request, k *Key) {
	if p := checkParams(r.URL.Query(), []string{"tenant"}); p != nil {
		writeProblem(w, r, p)
		return
	}
	tenant, p := scopeTenant(k, r.URL.Query().Get("tenant"))
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	keys, err := s.cfg.Keys.List(r.Context(), tenant)
	if err != nil {
		s.log.Error("trailserver: list keys", "err", err)
		writeProblem(w, r, problem(http.StatusServiceUnavailable, ProblemUnavailable, "", "listing keys failed"))
		return
	}
	writeJSON(w, http.StatusOK, map[string][]Key{"keys": keys})
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request, k *Key) {
	id := r.PathValue("id")
	if len(id) > 64 || !utf8.ValidString(id) {
		writeProblem(w, r, badRequest("id", "not a key id"))
		return
	}
	if !k.AllTenants() {
		// A tenant admin may revoke only its tenant's keys; others look missing.
		keys, err := s.cfg.Keys.List(r.Context(), k.Tenant)
		if err != nil {
			writeProblem(w, r, problem(http.StatusServiceUnavailable, ProblemUnavailable, "", "revoking failed"))
			return
		}
		found := false
		for _, x := range keys {
			found = found || x.ID == id
		}
		if !found {
			writeProblem(w, r, notFound("no key "+id))
			return
		}
	}
	if err := s.cfg.Keys.Revoke(r.Context(), id, s.cfg.Now()); err != nil {
		if errors.Is(err, ErrKeyNotFound) {
			writeProblem(w, r, notFound("no key "+id))
			return
		}
		writeProblem(w, r, problem(http.StatusServiceUnavailable, ProblemUnavailable, "", "revoking failed"))
		return
	}
	s.recordKeyEvent(r, k, "api_key.revoke", Key{ID: id, Tenant: k.Tenant})
	w.WriteHeader(http.StatusNoContent)
}

// recordKeyEvent records key management as events, best effort: the key
// change has happened either way.
func (s *Server) recordKeyEvent(r *http.Request, by *Key, action string, k Key) {
	ev := trail.Event{
		Tenant:     k.Tenant,
		Actor:      by.Actor(),
		Action:     action,
		Target:     trail.Target{Type: "api_key", ID: k.ID},
		Metadata:   map[string]any{"role": string(k.Role)},
		Source:     "trail-server",
		RecordedAt: s.cfg.Now(),
	}
	if k.Role == "" {
		ev.Metadata = nil
	}
	if err := s.recordOwn(context.WithoutCancel(r.Context()), &ev); err != nil { // own.go
		s.log.Error("trailserver: recording key event", "err", err)
	}
}

// decodeStrict decodes one JSON object with no unknown fields.
func decodeStrict(body interface{ Read([]byte) (int, error) }, v any) (field, detail string) {
	d := jsonDecoder(body)
	if err := d.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return "body", "too large"
		}
		return decodeErr(err)
	}
	return "", ""
}

package trailserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trailhq/trail"
)

// Retention is what the retention endpoints need of the store's retention
// backend: the policies and holds in force, their changes, and a plan.
// Every change is itself recorded by the backend (retention.policy.set,
// retention.hold.place, …) in the change's transaction, as the actor of
// the context it is given. trailcli adapts trailarchive's backends to it
// (trailserver does not depend on trailarchive, whose archive targets pull
// in the S3 SDK).
type Retention interface {
	// State returns the policies and holds in force, and the default
	// policy that applies where none does.
	State(ctx context.Context) (RetentionState, error)
	// SetPolicy stores p, replacing the rule of the same tenant and action.
	// A malformed or conflicting policy fails with a *RetentionError and
	// changes nothing.
	SetPolicy(ctx context.Context, p RetentionPolicy) error
	// UnsetPolicy removes the rule of tenant and action; false if none.
	UnsetPolicy(ctx context.Context, tenant, action string) (bool, error)
	// PlaceHold places or replaces a hold (errors as SetPolicy; a
	// malformed subject or reason fails with a *RetentionError naming
	// it). notes are what the caller should know but does not stop it (a
	// policy keeping less than the hold's min_keep: the hold wins). With
	// onlyStrengthen (a tenant admin's request), a replace must strengthen
	// the hold in force (the same reason, a min_keep at least as long; none
	// is the weakest): else it fails with a *RetentionError whose Forbidden
	// is true, leaves the hold as it was and records the refusal.
	PlaceHold(ctx context.Context, h RetentionHold, onlyStrengthen bool) (notes []string, err error)
	// ReleaseHold removes a hold; false if none.
	ReleaseHold(ctx context.Context, tenant, subject string) (bool, error)
	// Plan counts what a retention run would archive and delete now, per
	// tenant, changing nothing.
	Plan(ctx context.Context) (RetentionPlan, error)
}

// RetentionPolicy is one retention rule: events of Tenant ("" every
// tenant and the platform) whose action matches Action ("" every action,
// else an action or a prefix "auth.*") stay hot for Keep ("90d", "7y",
// measured on recorded_at), then are archived or deleted (Then).
type RetentionPolicy struct {
	Tenant string `json:"tenant"`
	Action string `json:"action"`
	Keep   string `json:"keep"`
	Then   string `json:"then"`
}

// RetentionHold is a legal hold: nothing of Tenant (with Subject, nothing
// whose actor or target is Subject) is purged while it exists. MinKeep
// refuses any later policy of the tenant keeping less.
type RetentionHold struct {
	Tenant  string     `json:"tenant"`
	Subject string     `json:"subject"`
	Reason  string     `json:"reason"`
	MinKeep string     `json:"min_keep"`
	Since   *time.Time `json:"since,omitempty"`
}

// RetentionHoldResult is the answer of POST /v1/retention/holds.
type RetentionHoldResult struct {
	RetentionHold
	Notes []string `json:"notes,omitempty"`
}

// RetentionState is the answer of GET /v1/retention.
type RetentionState struct {
	Policies []RetentionPolicy `json:"policies"`
	Holds    []RetentionHold   `json:"holds"`
	// Default applies to events no policy matches.
	Default RetentionPolicy `json:"default"`
}

// RetentionPlan is the answer of GET /v1/retention/plan: counts, no event.
type RetentionPlan struct {
	Tenants []RetentionPlanTenant `json:"tenants"`
	Archive int64                 `json:"archive"`
	Delete  int64                 `json:"delete"`
	Batches int                   `json:"batches"`
	// Held counts events past their retention that a hold keeps; Waiting
	// those no signed checkpoint covers yet.
	Held    int64 `json:"held"`
	Waiting int64 `json:"waiting"`
}

// RetentionPlanTenant is a plan's share of one tenant ("" the platform).
type RetentionPlanTenant struct {
	Tenant  string `json:"tenant"`
	Archive int64  `json:"archive"`
	Delete  int64  `json:"delete"`
	Batches int    `json:"batches"`
}

// RetentionError is a refused retention change. Field names the input at
// fault; Conflict is true when the change contradicts the policies or holds
// in force (409), Forbidden when the caller may not make it (403: a tenant
// admin weakening a legal hold); neither for a malformed value (400).
type RetentionError struct {
	Field     string
	Conflict  bool
	Forbidden bool
	Err       error
}

func (e *RetentionError) Error() string { return e.Err.Error() }
func (e *RetentionError) Unwrap() error { return e.Err }

// retentionRoutes registers the retention endpoints: reading needs a read
// key (a tenant key sees what applies to its tenant), changing needs an
// admin key (a tenant admin changes only its tenant's rules and holds).
func (s *Server) retentionRoutes() {
	s.handle("GET /v1/retention", canRead, s.retentionState)
	s.handle("GET /v1/retention/plan", canRead, s.retentionPlan)
	s.handle("PUT /v1/retention/policies", isAdmin, s.setRetentionPolicy)
	s.handle("DELETE /v1/retention/policies", isAdmin, s.unsetRetentionPolicy)
	s.handle("POST /v1/retention/holds", isAdmin, s.placeHold)
	s.handle("DELETE /v1/retention/holds", isAdmin, s.releaseHold)
}

// retention returns the configured backend, or answers 404.
func (s *Server) retention(w http.ResponseWriter, r *http.Request) Retention {
	if s.cfg.Retention == nil {
		writeProblem(w, r, notFound("retention is not configured on this server"))
		return nil
	}
	return s.cfg.Retention
}

// retentionCtx is the context of a change made with k: the backend records
// it as k's actor (service:key-<id>, with the caller's IP), with the
// request's ID, source trail-server.
func retentionCtx(r *http.Request, k *Key) context.Context {
	a := k.Actor()
	a.IP = remoteIP(r)
	ctx := trail.WithActor(context.WithoutCancel(r.Context()), a)
	ctx = trail.WithRequest(ctx, trail.Request{ID: clipHeader(r.Header.Get("X-Request-Id"))})
	return trail.WithSource(ctx, "trail-server")
}

// writeTenant checks that k may change the rules of tenant ("" every
// tenant, which needs an all-tenant key).
func writeTenant(k *Key, tenant string, required bool) *Problem {
	switch {
	case tenant == "" && required:
		return badRequest("tenant", "required")
	case tenant != "" && (!utf8.ValidString(tenant) || !trail.ValidTenant(tenant)):
		return badRequest("tenant", "not a valid tenant")
	case !k.AllTenants() && tenant != k.Tenant:
		if tenant == "" {
			return forbidden("tenant", fmt.Sprintf("a rule for every tenant needs an all-tenant key; this key manages only tenant %q", k.Tenant))
		}
		return forbidden("tenant", fmt.Sprintf("this key manages only tenant %q", k.Tenant))
	}
	return nil
}

// retentionProblem answers a backend error.
func (s *Server) retentionProblem(w http.ResponseWriter, r *http.Request, op string, err error) {
	var re *RetentionError
	switch {
	case errors.As(err, &re) && re.Conflict:
		writeProblem(w, r, &Problem{Type: ProblemConflict, Title: "Conflict", Status: http.StatusConflict, Field: re.Field, Detail: cleanDetail(re.Err)})
	case errors.As(err, &re) && re.Forbidden:
		writeProblem(w, r, forbidden(re.Field, cleanDetail(re.Err)))
	case errors.As(err, &re):
		writeProblem(w, r, badRequest(re.Field, cleanDetail(re.Err)))
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		writeProblem(w, r, problem(http.StatusServiceUnavailable, ProblemUnavailable, "", "request cancelled"))
	default:
		s.log.Error("trailserver: retention", "op", op, "err", err)
		writeProblem(w, r, problem(http.StatusServiceUnavailable, ProblemUnavailable, "", op+" failed; retry later"))
	}
}

// cleanDetail drops the package prefixes of an error's text.
func cleanDetail(err error) string {
	d := err.Error()
	for _, p := range []string{"trailarchive: invalid policy: ", "trailarchive: conflicting policy: ", "trailarchive: "} {
		d = strings.ReplaceAll(d, p, "")
	}
	return d
}

// retentionScope is scopeTenant for the retention reads, which also
// refuse a malformed tenant.
func retentionScope(k *Key, tenant string) (string, *Problem) {
	if tenant != "" && (!utf8.ValidString(tenant) || !trail.ValidTenant(tenant)) {
		return "", badRequest("tenant", "not a valid tenant")
	}
	return scopeTenant(k, tenant)
}

// retentionRead starts a retention read: the backend, and the tenant k
// reads (its query parameter, the only one allowed, scoped as
// retentionScope). It answers the problem itself and reports false when
// the read cannot go on.
func (s *Server) retentionRead(w http.ResponseWriter, r *http.Request, k *Key) (Retention, string, bool) {
	rb := s.retention(w, r)
	if rb == nil {
		return nil, "", false
	}
	if p := checkParams(r.URL.Query(), []string{"tenant"}); p != nil {
		writeProblem(w, r, p)
		return nil, "", false
	}
	tenant, p := retentionScope(k, r.URL.Query().Get("tenant"))
	if p != nil {
		writeProblem(w, r, p)
		return nil, "", false
	}
	return rb, tenant, true
}

// retentionDelete starts a DELETE of a rule or a hold: the backend, and the
// query parameters tenant (which k must be allowed to change; required
// for a hold) and key (action or subject), the only two allowed. It answers
// the problem itself and reports false when the change cannot go on.
func (s *Server) retentionDelete(w http.ResponseWriter, r *http.Request, k *Key, key string, tenantRequired bool) (rb Retention, tenant, value string, ok bool) {
	if rb = s.retention(w, r); rb == nil {
		return nil, "", "", false
	}
	v := r.URL.Query()
	if p := checkParams(v, []string{"tenant", key}); p != nil {
		writeProblem(w, r, p)
		return nil, "", "", false
	}
	tenant, value = v.Get("tenant"), v.Get(key)
	if p := writeTenant(k, tenant, tenantRequired); p != nil {
		writeProblem(w, r, p)
		return nil, "", "", false
	}
	return rb, tenant, value, true
}

// retentionState answers the policies and holds in force; a tenant key
// sees its tenant's holds and the policies that apply to its tenant (its
// own and the all-tenant ones).
func (s *Server) retentionState(w http.ResponseWriter, r *http.Request, k *Key) {
	rb, tenant, ok := s.retentionRead(w, r, k)
	if !ok {
		return
	}
	st, err := rb.State(r.Context())
	if err != nil {
		s.retentionProblem(w, r, "reading the retention policies", err)
		return
	}
	if tenant != "" {
		st.Policies = slices.DeleteFunc(st.Policies, func(p RetentionPolicy) bool { return p.Tenant != "" && p.Tenant != tenant })
		st.Holds = slices.DeleteFunc(st.Holds, func(h RetentionHold) bool { return h.Tenant != tenant })
	}
	if st.Policies == nil {
		st.Policies = []RetentionPolicy{}
	}
	if st.Holds == nil {
		st.Holds = []RetentionHold{}
	}
	writeJSON(w, http.StatusOK, st)
}

// retentionPlan answers what a run would do now, as counts per tenant; a
// tenant key sees its tenant's only (held and waiting stay totals of every
// tenant for an all-tenant key, and are left out for a tenant key).
func (s *Server) retentionPlan(w http.ResponseWriter, r *http.Request, k *Key) {
	rb, tenant, ok := s.retentionRead(w, r, k)
	if !ok {
		return
	}
	pl, err := rb.Plan(r.Context())
	if err != nil {
		s.retentionProblem(w, r, "planning retention", err)
		return
	}
	if tenant != "" || r.URL.Query().Has("tenant") {
		out := RetentionPlan{Tenants: []RetentionPlanTenant{}}
		for _, t := range pl.Tenants {
			if t.Tenant == tenant {
				out.Tenants = append(out.Tenants, t)
				out.Archive, out.Delete, out.Batches = t.Archive, t.Delete, t.Batches
			}
		}
		pl = out
	}
	if pl.Tenants == nil {
		pl.Tenants = []RetentionPlanTenant{}
	}
	writeJSON(w, http.StatusOK, pl)
}

func (s *Server) setRetentionPolicy(w http.ResponseWriter, r *http.Request, k *Key) {
	rb := s.retention(w, r)
	if rb == nil {
		return
	}
	var in RetentionPolicy
	if field, detail := decodeStrict(http.MaxBytesReader(w, r.Body, 64<<10), &in); detail != "" {
		writeProblem(w, r, badRequest(field, detail))
		return
	}
	if p := writeTenant(k, in.Tenant, false); p != nil {
		writeProblem(w, r, p)
		return
	}
	if in.Then == "" {
		in.Then = "archive"
	}
	switch {
	case in.Keep == "":
		writeProblem(w, r, badRequest("keep", "required: a number and a unit h, d, w, m or y (90d, 7y)"))
		return
	case in.Then != "archive" && in.Then != "delete":
		writeProblem(w, r, badRequest("then", "must be archive or delete"))
		return
	}
	if err := rb.SetPolicy(retentionCtx(r, k), in); err != nil {
		s.retentionProblem(w, r, "setting the policy", err)
		return
	}
	writeJSON(w, http.StatusOK, in)
}

func (s *Server) unsetRetentionPolicy(w http.ResponseWriter, r *http.Request, k *Key) {
	rb, tenant, action, ok := s.retentionDelete(w, r, k, "action", false)
	if !ok {
		return
	}
	ok, err := rb.UnsetPolicy(retentionCtx(r, k), tenant, action)
	if err != nil {
		s.retentionProblem(w, r, "removing the policy", err)
		return
	}
	if !ok {
		writeProblem(w, r, notFound(fmt.Sprintf("no policy for tenant %s, action %s", orStar(tenant), orStar(action))))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func orStar(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

// placeHold places or replaces a legal hold. A tenant admin may place one
// on its tenant, or replace one to strengthen it, never weaken or otherwise
// change it (whoever placed it): a hold protects a tenant's records from its
// own administrators too. Its subject and reason are checked by the backend
// (trail retention hold applies the same rules).
func (s *Server) placeHold(w http.ResponseWriter, r *http.Request, k *Key) {
	rb := s.retention(w, r)
	if rb == nil {
		return
	}
	var in RetentionHold
	if field, detail := decodeStrict(http.MaxBytesReader(w, r.Body, 64<<10), &in); detail != "" {
		writeProblem(w, r, badRequest(field, detail))
		return
	}
	if p := writeTenant(k, in.Tenant, true); p != nil {
		writeProblem(w, r, p)
		return
	}
	if in.Since != nil {
		writeProblem(w, r, badRequest("since", "set by the server"))
		return
	}
	notes, err := rb.PlaceHold(retentionCtx(r, k), in, !k.AllTenants())
	if err != nil {
		var re *RetentionError
		if errors.As(err, &re) && re.Forbidden {
			err = &RetentionError{Field: re.Field, Forbidden: true, Err: fmt.Errorf("%w: a tenant admin may place a legal hold or strengthen one "+
				"(the same reason, a min_keep at least as long), never weaken or change it: that needs an all-tenant admin key", re.Err)}
		}
		s.retentionProblem(w, r, "placing the hold", err)
		return
	}
	writeJSON(w, http.StatusCreated, RetentionHoldResult{RetentionHold: in, Notes: notes})
}

// releaseHold releases a legal hold. Only an all-tenant admin may: a hold
// keeps a tenant's records from being purged while a case is open, also
// against that tenant's own administrators (who may place one, and change
// their tenant's policies, which the hold then outlasts).
func (s *Server) releaseHold(w http.ResponseWriter, r *http.Request, k *Key) {
	rb, tenant, subject, ok := s.retentionDelete(w, r, k, "subject", true)
	if !ok {
		return
	}
	if !k.AllTenants() {
		writeProblem(w, r, forbidden("tenant", "releasing a legal hold needs an all-tenant admin key: a hold protects a tenant's records from its own administrators too"))
		return
	}
	ok, err := rb.ReleaseHold(retentionCtx(r, k), tenant, subject)
	if err != nil {
		s.retentionProblem(w, r, "releasing the hold", err)
		return
	}
	if !ok {
		what := "tenant " + tenant
		if subject != "" {
			what += ", subject " + subject
		}
		writeProblem(w, r, notFound("no legal hold on "+what))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

package trailserver

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailprivacy"
)

// PrivacyAdmin is what the privacy endpoints need of the privacy layer:
// *trailprivacy.Privacy implements it.
type PrivacyAdmin interface {
	// HashFor returns the stored form ("hmac:v1:…") of value under the
	// tenant's HMAC key.
	HashFor(tenant, value string) string
	// Forget destroys the subject's data key; errors match
	// trailprivacy.ErrUnknownSubject and trailprivacy.ErrAlreadyForgotten.
	Forget(ctx context.Context, tenant, subject string) error
}

// PrivacyConfig turns on the admin endpoints of the privacy layer,
// POST /v1/hash and POST /v1/forget. Without it they answer 404.
type PrivacyConfig struct {
	Admin PrivacyAdmin
	// HashRate is how many pseudonyms an API key may compute a second, on
	// average; HashBurst at once. Pseudonyms resist guessing only while
	// computing them is scarce, so this is far below the general limit.
	// Defaults: 1 and 10.
	HashRate  float64
	HashBurst int

	once    sync.Once
	limiter *limiter
}

// Defaults of PrivacyConfig.
const (
	DefaultHashRate  = 1
	DefaultHashBurst = 10
	// MaxHashValue bounds the value POST /v1/hash takes, in bytes.
	MaxHashValue = 4096
)

// ProblemConflict is the type of a 409 answer: the request conflicts with
// the current state (a subject already forgotten).
const ProblemConflict = "urn:trail:problem:conflict"

func (c *PrivacyConfig) hashLimiter() *limiter {
	c.once.Do(func() {
		rate, burst := c.HashRate, c.HashBurst
		if rate == 0 {
			rate = DefaultHashRate
		}
		if burst <= 0 {
			burst = max(DefaultHashBurst, int(math.Ceil(rate)))
		}
		c.limiter = newLimiter(rate, burst)
	})
	return c.limiter
}

// privacyRoutes registers the privacy endpoints.
func (s *Server) privacyRoutes() {
	s.handle("POST /v1/hash", isAdmin, s.hash)
	s.handle("POST /v1/forget", isAdmin, s.forget)
}

// privacyTenant checks the tenant of a privacy request against the key: a
// tenant admin acts only in its tenant, and "" (the platform) needs an
// all-tenant key.
func privacyTenant(k *Key, tenant string) *Problem {
	if tenant != "" && !trail.ValidTenant(tenant) {
		return badRequest("tenant", "not a valid tenant")
	}
	if !k.AllTenants() && tenant != k.Tenant {
		return forbidden("tenant", fmt.Sprintf("this key manages only tenant %q", k.Tenant))
	}
	return nil
}

// privacyRequest starts a privacy administration request: it answers 404
// when the privacy layer is not configured, decodes the JSON body (at most
// 64 KiB) into in, and checks that k may act on *tenant (a field of in, read
// after decoding). It returns nil once it has answered with a problem.
func (s *Server) privacyRequest(w http.ResponseWriter, r *http.Request, k *Key, in any, tenant *string) *PrivacyConfig {
	pc := s.cfg.Privacy
	if pc == nil || pc.Admin == nil {
		writeProblem(w, r, notFound("the privacy layer is not configured"))
		return nil
	}
	if field, detail := decodeStrict(http.MaxBytesReader(w, r.Body, 64<<10), in); detail != "" {
		writeProblem(w, r, badRequest(field, detail))
		return nil
	}
	if p := privacyTenant(k, *tenant); p != nil {
		writeProblem(w, r, p)
		return nil
	}
	return pc
}

type hashRequest struct {
	Tenant string `json:"tenant"`
	Value  string `json:"value"`
}

// hash answers {"hmac": "hmac:v1:…"}: the pseudonym of value in tenant, to
// search for in fields the policy hashes. The lookup is recorded first
// (action privacy.hash, without the value); when it cannot be recorded, no
// pseudonym is given.
func (s *Server) hash(w http.ResponseWriter, r *http.Request, k *Key) {
	var in hashRequest
	pc := s.privacyRequest(w, r, k, &in, &in.Tenant)
	if pc == nil {
		return
	}
	if in.Value == "" || len(in.Value) > MaxHashValue || !utf8.ValidString(in.Value) {
		writeProblem(w, r, badRequest("value", fmt.Sprintf("give 1-%d bytes of UTF-8 text", MaxHashValue)))
		return
	}
	// Only lookups that would be answered spend the key's allowance.
	if ok, wait := pc.hashLimiter().allow(k.ID, s.cfg.Now()); !ok {
		s.metrics.rateLimited.Add(1)
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		writeProblem(w, r, problem(http.StatusTooManyRequests, ProblemRateLimited, "", "too many pseudonym lookups for this key; retry later"))
		return
	}
	if _, err := s.recordPrivacy(r, k, trail.Event{
		Tenant:      in.Tenant,
		Action:      "privacy.hash",
		Description: "Computed a pseudonym (HMAC) to search with",
	}); err != nil {
		s.log.Error("trailserver: recording a pseudonym lookup", "err", err)
		writeProblem(w, r, problem(http.StatusServiceUnavailable, ProblemUnavailable, "", "the lookup could not be recorded, so it is refused"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"hmac": pc.Admin.HashFor(in.Tenant, in.Value)})
}

type forgetRequest struct {
	Tenant  string `json:"tenant"`
	Subject string `json:"subject"`
}

// ForgetResult is the answer of POST /v1/forget.
type ForgetResult struct {
	Tenant  string `json:"tenant"`
	Subject string `json:"subject"`
	// EventID is the privacy.forget event that records the erasure.
	EventID string `json:"event_id"`
}

// subjectRE is a subject: "type:id" or a bare type, as actors and targets
// are written.
var subjectRE = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,63}(:[^\x00-\x1f\x7f]+)?$`)

// forget erases a subject: its data key is destroyed, so that its
// encrypted fields read "[erased]" everywhere, and the erasure is recorded
// (action privacy.forget, target the subject). Events are not touched.
func (s *Server) forget(w http.ResponseWriter, r *http.Request, k *Key) {
	var in forgetRequest
	pc := s.privacyRequest(w, r, k, &in, &in.Tenant)
	if pc == nil {
		return
	}
	if !utf8.ValidString(in.Subject) || len(in.Subject) > 64+1+trail.MaxIDLen || !subjectRE.MatchString(in.Subject) {
		writeProblem(w, r, badRequest("subject", "write the subject type:id, e.g. user:42 (or a bare type: anonymous)"))
		return
	}
	typ, id, _ := strings.Cut(in.Subject, ":")
	target := trail.Target{Type: typ, ID: id}
	if id == "" {
		target = trail.Target{Type: "subject", ID: typ}
	}
	if err := pc.Admin.Forget(r.Context(), in.Tenant, in.Subject); err != nil {
		switch {
		case errors.Is(err, trailprivacy.ErrUnknownSubject):
			writeProblem(w, r, notFound(fmt.Sprintf("no personal data of %s in tenant %q was ever encrypted: nothing to forget", in.Subject, in.Tenant)))
		case errors.Is(err, trailprivacy.ErrAlreadyForgotten):
			writeProblem(w, r, &Problem{Type: ProblemConflict, Title: "Conflict", Status: http.StatusConflict, Field: "subject",
				Detail: fmt.Sprintf("%s in tenant %q is already forgotten", in.Subject, in.Tenant)})
		default:
			s.log.Error("trailserver: forget", "err", err)
			writeProblem(w, r, problem(http.StatusServiceUnavailable, ProblemUnavailable, "", "the key store is unavailable"))
		}
		return
	}
	ev, err := s.recordPrivacy(r, k, trail.Event{
		Tenant:      in.Tenant,
		Action:      "privacy.forget",
		Target:      target,
		Description: "Erased the personal data of " + in.Subject,
		Metadata:    map[string]any{"subject": in.Subject},
	})
	if err != nil {
		s.log.Error("trailserver: recording an erasure", "subject", in.Subject, "err", err)
		writeProblem(w, r, problem(http.StatusInternalServerError, ProblemInternal, "", in.Subject+" is forgotten, but recording the erasure failed"))
		return
	}
	writeJSON(w, http.StatusOK, ForgetResult{Tenant: in.Tenant, Subject: in.Subject, EventID: ev.ID.String()})
}

// recordPrivacy stores an event of the server's own, by the key k, in its
// stored form (Config.OwnTransform applies, so the caller's IP is
// protected like any actor's).
func (s *Server) recordPrivacy(r *http.Request, k *Key, ev trail.Event) (trail.Event, error) {
	ctx := context.WithoutCancel(r.Context())
	ev.Actor = k.Actor()
	ev.Actor.IP = remoteIP(r)
	ev.RequestID = clipHeader(r.Header.Get("X-Request-Id"))
	ev.Source = "trail-server"
	ev.RecordedAt = s.cfg.Now()
	err := s.recordOwn(ctx, &ev) // own.go
	return ev, err
}

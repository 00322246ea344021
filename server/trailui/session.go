package trailui

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"sync"
	"time"
)

// SessionStore keeps UI sign-ins. The cookie holds only the value Create
// returns; what it stands for is the store's business. trailserver's store
// signs the value (HMAC with a key kept in its database) and keeps only the
// sign-outs, so that a session survives a restart and is accepted by every
// replica on the same store. Without one, Config.Sessions is an in-memory
// map: a restart signs everyone out.
type SessionStore interface {
	// Create starts a session for cred that ends at expires and returns the
	// cookie value (printable ASCII, at most 1024 bytes).
	Create(ctx context.Context, cred Credential, expires time.Time) (string, error)
	// Open returns the credential of a cookie value. A value that is not
	// one of the store's, has expired or was ended by Delete is
	// ErrNoSession.
	Open(ctx context.Context, value string) (Credential, error)
	// Delete ends the session of a value Open accepted (sign-out).
	Delete(ctx context.Context, value string) error
}

// ErrNoSession is returned by SessionStore.Open for a cookie that is not a
// live session.
var ErrNoSession = errors.New("trailui: no such session")

// maxCookie bounds a session cookie's value.
const maxCookie = 1024

// csrfOf is a session's synchronizer token: a hash of its cookie value,
// which the page can hold without the HttpOnly cookie being readable, and
// which no replica needs to remember.
func csrfOf(value string) string {
	sum := sha256.Sum256([]byte("trail-ui-csrf\x00" + value))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// memSessions is the default SessionStore: one process's memory.
type memSessions struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]memSession
}

type memSession struct {
	cred    Credential
	expires time.Time
}

func newMemSessions(now func() time.Time) *memSessions {
	return &memSessions{now: now, m: map[string]memSession{}}
}

func (s *memSessions) Create(_ context.Context, cred Credential, expires time.Time) (string, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= maxSessions {
		for id, ms := range s.m {
			if !now.Before(ms.expires) {
				delete(s.m, id)
			}
		}
		if len(s.m) >= maxSessions {
			return "", errors.New("trailui: too many sessions")
		}
	}
	id := randomToken()
	s.m[id] = memSession{cred: cred, expires: expires}
	return id, nil
}

func (s *memSessions) Open(_ context.Context, value string) (Credential, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ms, ok := s.m[value]
	if !ok {
		return nil, ErrNoSession
	}
	if !s.now().Before(ms.expires) {
		delete(s.m, value)
		return nil, ErrNoSession
	}
	return ms.cred, nil
}

func (s *memSessions) Delete(_ context.Context, value string) error {
	s.mu.Lock()
	delete(s.m, value)
	s.mu.Unlock()
	return nil
}

// session returns the request's live session, or nil. A store that cannot
// answer is logged and treated as no session.
func (h *Handler) session(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > maxCookie {
		return nil
	}
	cred, err := h.cfg.Sessions.Open(r.Context(), c.Value)
	if err != nil {
		if !errors.Is(err, ErrNoSession) {
			h.log.Error("trailui: session store", "err", err)
		}
		return nil
	}
	return &session{cred: cred, csrf: csrfOf(c.Value), value: c.Value}
}

func (h *Handler) newSession(ctx context.Context, cred Credential) (string, error) {
	return h.cfg.Sessions.Create(ctx, cred, h.cfg.Now().Add(h.cfg.SessionTTL))
}

func (h *Handler) dropSession(r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" && len(c.Value) <= maxCookie {
		if err := h.cfg.Sessions.Delete(r.Context(), c.Value); err != nil {
			h.log.Error("trailui: ending a session", "err", err)
		}
	}
}

// sessionProbe answers GET {prefix}/session: 204 while the request's
// session is live, 401 otherwise. The live tail asks it when its stream
// breaks, to tell an ended session (sign in again) from a server that is
// away (retrying). It touches no key's rate limit and records nothing.
func (h *Handler) sessionProbe(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	sess := h.session(r)
	if sess == nil {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if _, err := h.be.Resolve(r.Context(), sess.cred); errors.Is(err, ErrBadKey) {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Actions of the UI's authentication events.
const (
	AuthSignIn       = "auth.signin"
	AuthSignOut      = "auth.signout"
	AuthSignInFailed = "auth.signin_failed"
)

// AuthEvent is one sign-in, sign-out or refused sign-in.
type AuthEvent struct {
	Action string // AuthSignIn, AuthSignOut or AuthSignInFailed
	// Viewer is who signed in or out; nil for a refused sign-in.
	Viewer *Viewer
	// Secret is the key a refused sign-in gave, so that the backend can
	// name the key when it exists (revoked, expired, ingest-only). It must
	// never be recorded.
	Secret string
	// Err is why the sign-in was refused.
	Err error
}

// AuthAuditor is implemented by a Backend that records the UI's
// authentication events (trailserver does: auth.signin, auth.signout and
// auth.signin_failed events, actor the key). A sign-in whose event cannot
// be recorded is refused; a sign-out or a refusal is logged.
type AuthAuditor interface {
	AuthEvent(r *http.Request, ev AuthEvent) error
}

func (h *Handler) authEvent(r *http.Request, ev AuthEvent) error {
	a, ok := h.be.(AuthAuditor)
	if !ok {
		return nil
	}
	err := a.AuthEvent(r, ev)
	if err != nil {
		h.log.Error("trailui: recording "+ev.Action, "err", err)
		if ev.Action == AuthSignIn {
			return errors.New("the sign-in could not be audited")
		}
	}
	return nil
}

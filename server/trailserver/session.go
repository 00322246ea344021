package trailserver

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailui"
)

// UI sessions are signed cookies, not rows (docs/ui.md, "Sessions").
//
// The cookie is "s1." + base64url(claims) + "." + base64url(HMAC-SHA256),
// keyed with a 32-byte secret that the key store keeps (AuthStore.Secret,
// created at random by the first server that needs it), so that a restarted
// server and every replica on the same store verify each other's cookies.
// The claims are a random session ID, the API key's ID and the expiry; the
// key's role and tenant are read from the key store on every request, so a
// cookie cannot carry more than its key may do today, and revoking or
// expiring the key ends its sessions at once. Sign-out records the session
// ID in the store until the cookie would have expired (EndSession), which
// every replica checks. The secret never leaves the database; rotating it
// (deleting its row) signs everyone out.

// sessionClaims are what a session cookie asserts.
type sessionClaims struct {
	ID  string `json:"sid"`
	Key string `json:"kid"`
	Exp int64  `json:"exp"` // Unix seconds
}

// keyRef is the UI's session credential: the key's ID, looked up on every
// request.
type keyRef string

const sessionPrefix = "s1."

// authState is a server's sessions and viewer tokens: the signing secrets
// (loaded from the store once) and the store of sign-outs.
type authState struct {
	s     *Server
	store AuthStore // nil: per-process secret and sign-outs

	once     sync.Mutex
	secrets  map[string][]byte
	ended    sync.Map // session ID → until, without a store
	settings sync.Map // tenant → ViewerSettings, without a store
}

func newAuthState(s *Server) *authState {
	a := &authState{s: s, secrets: map[string][]byte{}}
	a.store, _ = s.cfg.Keys.(AuthStore)
	return a
}

// secret returns the named signing secret: Config.SessionSecret-derived
// when set, else the store's, else one random per process.
func (a *authState) secret(ctx context.Context, name string) ([]byte, error) {
	a.once.Lock()
	defer a.once.Unlock()
	if b, ok := a.secrets[name]; ok {
		return b, nil
	}
	var b []byte
	switch {
	case len(a.s.cfg.SessionSecret) > 0:
		m := hmac.New(sha256.New, a.s.cfg.SessionSecret)
		m.Write([]byte("trail " + name))
		b = m.Sum(nil)
	case a.store != nil:
		var err error
		if b, err = a.store.Secret(ctx, name); err != nil {
			return nil, err
		}
	default:
		b = make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
	}
	a.secrets[name] = b
	return b, nil
}

// sign returns prefix + payload + "." + MAC, the MAC over prefix and
// payload under the named secret.
func (a *authState) sign(ctx context.Context, name, prefix string, claims any) (string, error) {
	key, err := a.secret(ctx, name)
	if err != nil {
		return "", err
	}
	js, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	body := prefix + base64.RawURLEncoding.EncodeToString(js)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(body))
	return body + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)), nil
}

var strictB64 = base64.RawURLEncoding.Strict()

// errBadToken is a value that is not one the server signed.
var errBadToken = errors.New("trailserver: bad signature or format")

// open checks a signed value and decodes its claims into v. Unknown JSON
// members are refused: a value is exactly what sign wrote.
func (a *authState) open(ctx context.Context, name, prefix, value string, v any) error {
	if len(value) > 4096 || !strings.HasPrefix(value, prefix) {
		return errBadToken
	}
	payload, mac, ok := strings.Cut(value[len(prefix):], ".")
	if !ok || strings.Contains(mac, ".") {
		return errBadToken
	}
	body := prefix + payload
	// Strict: a token has one spelling (no stray bits in the last
	// character), so that every changed character is refused.
	got, err := strictB64.DecodeString(mac)
	if err != nil {
		return errBadToken
	}
	key, err := a.secret(ctx, name)
	if err != nil {
		return err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(body))
	if !hmac.Equal(got, m.Sum(nil)) {
		return errBadToken
	}
	js, err := strictB64.DecodeString(payload)
	if err != nil {
		return errBadToken
	}
	dec := json.NewDecoder(strings.NewReader(string(js)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errBadToken
	}
	return nil
}

func randomSessionID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// uiSessions implements trailui.SessionStore with signed cookies.
type uiSessions struct{ a *authState }

func (u uiSessions) Create(ctx context.Context, cred trailui.Credential, expires time.Time) (string, error) {
	ref, ok := cred.(keyRef)
	if !ok {
		return "", fmt.Errorf("trailserver: session credential %T", cred)
	}
	id, err := randomSessionID()
	if err != nil {
		return "", err
	}
	return u.a.sign(ctx, "ui-session", sessionPrefix, sessionClaims{ID: id, Key: string(ref), Exp: expires.Unix()})
}

func (u uiSessions) claims(ctx context.Context, value string) (sessionClaims, error) {
	var c sessionClaims
	if err := u.a.open(ctx, "ui-session", sessionPrefix, value, &c); err != nil {
		if errors.Is(err, errBadToken) {
			return c, trailui.ErrNoSession
		}
		return c, err
	}
	if c.ID == "" || c.Key == "" || !u.a.s.cfg.Now().Before(time.Unix(c.Exp, 0)) {
		return c, trailui.ErrNoSession
	}
	return c, nil
}

func (u uiSessions) Open(ctx context.Context, value string) (trailui.Credential, error) {
	c, err := u.claims(ctx, value)
	if err != nil {
		return nil, err
	}
	var ended bool
	if u.a.store != nil {
		if ended, err = u.a.store.SessionEnded(ctx, c.ID); err != nil {
			return nil, err
		}
	} else {
		_, ended = u.a.ended.Load(c.ID)
	}
	if ended {
		return nil, trailui.ErrNoSession
	}
	return keyRef(c.Key), nil
}

func (u uiSessions) Delete(ctx context.Context, value string) error {
	c, err := u.claims(ctx, value)
	if err != nil {
		if errors.Is(err, trailui.ErrNoSession) {
			return nil
		}
		return err
	}
	if u.a.store == nil {
		u.a.ended.Store(c.ID, c.Exp)
		return nil
	}
	return u.a.store.EndSession(ctx, c.ID, time.Unix(c.Exp, 0))
}

// keyByID finds a key by ID: through the AuthStore, or by listing.
func (a *authState) keyByID(ctx context.Context, id string) (Key, error) {
	if a.store != nil {
		return a.store.KeyByID(ctx, id)
	}
	keys, err := a.s.cfg.Keys.List(ctx, "")
	if err != nil {
		return Key{}, err
	}
	for _, k := range keys {
		if k.ID == id {
			return k, nil
		}
	}
	return Key{}, ErrKeyNotFound
}

// AuthEvent implements trailui.AuthAuditor: auth.signin, auth.signout and
// auth.signin_failed, stored in the key's tenant (the platform for an
// all-tenant key or an unknown one), actor the key (anonymous for a secret
// that names no key), with the client's IP. The secret is never recorded:
// a refused sign-in is recorded with the key it names, if any, and why.
func (b uiBackend) AuthEvent(r *http.Request, ae trailui.AuthEvent) error {
	s := b.s
	ev := trail.Event{
		Action:     ae.Action,
		Outcome:    trail.OutcomeSuccess,
		Actor:      trail.Actor{Type: trail.ActorAnonymous},
		RequestID:  clipHeader(r.Header.Get("X-Request-Id")),
		Source:     "trail-server",
		RecordedAt: s.cfg.Now(),
		Metadata:   map[string]any{"endpoint": r.Method + " " + r.URL.Path, "ui": true},
	}
	var k *Key
	switch ae.Action {
	case trailui.AuthSignIn:
		k = keyOf(*ae.Viewer)
		ev.Description = "Signed in to the admin UI"
	case trailui.AuthSignOut:
		k = keyOf(*ae.Viewer)
		ev.Description = "Signed out of the admin UI"
	case trailui.AuthSignInFailed:
		ev.Outcome = trail.OutcomeDenied
		ev.Description = "Sign-in to the admin UI refused"
		reason := "unknown key"
		if wellFormedKey(ae.Secret) {
			if found, err := s.cfg.Keys.Lookup(r.Context(), HashKey(ae.Secret)); err == nil {
				k = &found
				switch {
				case !found.Active(s.cfg.Now()):
					reason = "key revoked or expired"
				case !found.Role.canRead():
					reason = "key may not read"
				default:
					reason = "refused"
				}
			}
		} else {
			reason = "malformed key"
		}
		if errors.Is(ae.Err, trailui.ErrRateLimited) {
			reason = "rate limited"
		}
		ev.Metadata["reason"] = reason
	default:
		return fmt.Errorf("trailserver: unknown auth event %q", ae.Action)
	}
	if k != nil {
		ev.Actor = k.Actor()
		ev.Actor.Name = k.Name
		ev.Tenant = k.Tenant
		ev.Target = trail.Target{Type: "api_key", ID: k.ID}
	}
	ev.Actor.IP = remoteIP(r)
	return s.recordOwn(context.WithoutCancel(r.Context()), &ev) // own.go
}

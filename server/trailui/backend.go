package trailui

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
)

// Backend is what the UI needs from the server: authentication, tenant
// scoping, the audited store reads and the streaming endpoints. trailserver
// implements it with the same functions its API handlers use, so the UI can
// show nothing the viewer's key could not read through the API, and every
// read it makes is recorded as an audit.read event like the API's.
//
// Methods that take a request use it for the audit record (endpoint, remote
// address, request id) and its context. Client errors are *Error values.
type Backend interface {
	// SignIn checks an API key secret. Only keys that may read succeed. The
	// returned credential is kept in the server-side session and passed to
	// Resolve on every request (it is never sent to the browser).
	SignIn(ctx context.Context, secret string) (Viewer, Credential, error)
	// Resolve returns the viewer of a session's credential, checked again on
	// each request: a revoked or expired key ends its sessions at once. It
	// also applies the key's rate limit.
	Resolve(ctx context.Context, cred Credential) (Viewer, error)
	// List runs an event query. params uses the API's parameter names
	// (tenant, actor, action, target, since, until, outcome, field, text,
	// limit, cursor).
	List(r *http.Request, v Viewer, params url.Values) (Page, error)
	// Event returns one event, or an *Error with status 404 when it does not
	// exist or belongs to a tenant the viewer may not read (the two answers
	// are the same).
	Event(r *http.Request, v Viewer, id uuid.UUID) (Detail, error)
	// Evidence returns what the detail page checks d's event against (see
	// Evidence). It is called with what Event returned, which read the
	// event, checked its scope and recorded the read: it does none of these.
	Evidence(r *http.Request, v Viewer, d *Detail) (Evidence, error)
	// Proof answers as the API's GET /v1/events/{id}/proof does for the
	// viewer's key: the inclusion proof's JSON, the same scope, the same
	// problems (409 while not sealed or not checkpointed) and an audit.read
	// record.
	Proof(w http.ResponseWriter, r *http.Request, v Viewer, id uuid.UUID)
	// History returns the changes of one object, newest first. params takes
	// tenant, since, until, limit and cursor.
	History(r *http.Request, v Viewer, typ, id string, params url.Values) (Page, error)
	// Export streams the API export (format csv or jsonl) for params.
	Export(w http.ResponseWriter, r *http.Request, v Viewer, params url.Values)
	// Tail streams the API's live tail (Server-Sent Events) for params.
	Tail(w http.ResponseWriter, r *http.Request, v Viewer, params url.Values)
	// Stats counts the events per UTC day and action for params (tenant,
	// action, since, until: the filters the store counts by), as GET
	// /v1/stats does. The list page calls it as a FollowUp of its List, so
	// it records no access event of its own then.
	Stats(r *http.Request, v Viewer, params url.Values) ([]trail.Count, error)
	// Tenants suggests tenants for an all-tenant viewer's picker (those that
	// have keys); it may be empty.
	Tenants(ctx context.Context) ([]string, error)
	// Facets suggests values for the filter form's pickers from the events
	// v may read in tenant ("" for every tenant v may read), as GET
	// /v1/facets does. It is part of the page view that lists the events,
	// so it records no access event of its own.
	Facets(r *http.Request, v Viewer, tenant string) (Facets, error)
}

// Facets are the values the filter form's pickers offer (<datalist>s).
type Facets struct {
	Tenants, Actions, ActorTypes, TargetTypes []string
}

// Credential is the backend's opaque handle on a signed-in key (the hash of
// its secret in trailserver). It stays on the server.
type Credential any

// Viewer is who is looking: an API key's identity, role and tenant scope.
type Viewer struct {
	KeyID  string
	Name   string
	Role   string
	Tenant string // empty: every tenant and the platform events
	// Handle is the backend's own record of the key, passed back to it.
	Handle any
}

// AllTenants reports whether the viewer may read every tenant.
func (v Viewer) AllTenants() bool { return v.Tenant == "" }

// Page is one page of events.
type Page struct {
	Events []trail.Event
	// Next continues with older events; empty on the last page.
	Next string
}

// Detail is one event, revealed for display. Its integrity state is the
// UI's own check of Evidence (verify.go), never the backend's word.
type Detail struct {
	Event trail.Event
	// Stored is the same event exactly as stored, not revealed: what
	// Evidence checks. It is never shown.
	Stored trail.Event
}

// Evidence is what the detail page verifies an event with. The backend only
// reads it; the UI checks it (verify.go) the way `trail verify` and
// examples/verifyproof do: the stored event's leaf hash is recomputed, and
// the checkpoint's signature and the inclusion proof are checked here, so a
// row, leaf, tree or checkpoint edited in the database shows as a mismatch.
type Evidence struct {
	// Enabled is false when the server does not seal its log; nothing else
	// is set then.
	Enabled bool
	// Stored is the event exactly as stored, not revealed: the privacy
	// layer's ciphertext and hashes as they are in the database. Its
	// canonical encoding is what its leaf hashes.
	Stored trail.Event
	// Leaf is the event's leaf row (log, seq, hash); nil while the event is
	// not sealed.
	Leaf *trailseal.Leaf
	// Proof is the inclusion proof of Leaf against the latest checkpoint of
	// its log, as the API's proof endpoint answers it; nil while no
	// checkpoint covers the leaf.
	Proof *trailseal.InclusionProof
	// CheckpointTime is when that checkpoint was made (stored beside it,
	// not signed).
	CheckpointTime time.Time
	// Unreadable, when set, says why the leaf or the proof could not be read
	// from the store's seal tables (a hash of the tree missing, say): a
	// check that cannot be made has failed.
	Unreadable string
	// Origin is the deployment's checkpoint origin (checkpoints of log L
	// are for Origin/L); PublicKey its checkpoint verifier key, in note
	// format (name+hash+key).
	Origin    string
	PublicKey string
}

// Error is a client error the UI shows as a page with its status.
type Error struct {
	Status int
	Field  string // the parameter at fault, if any
	Detail string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Detail
	}
	return e.Detail
}

// ErrRateLimited is returned by Resolve when the key made too many requests.
var ErrRateLimited = errors.New("trailui: rate limited")

// ErrBadKey is returned by SignIn and Resolve for a key that is unknown,
// revoked, expired or may not read.
var ErrBadKey = errors.New("trailui: this key cannot sign in")

type followUpKey struct{}

// FollowUp reports whether a backend read is the second read of one page
// view (the history page reads its timeline page and the object's state):
// one page view records one access event, so the backend records the first
// read and not this one. Only the UI's own handlers mark a read so; nothing
// in the request can.
func FollowUp(ctx context.Context) bool { return ctx.Value(followUpKey{}) != nil }

func followUp(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), followUpKey{}, true))
}

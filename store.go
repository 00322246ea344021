package trail

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Store is where events live. Every store (the embedded SQLite store, the
// PostgreSQL store, the in-memory one in trailtest) passes the same
// conformance suite, trailstoretest, so code written against Store behaves
// the same on each.
//
// A Store does no authorization: the caller decides which tenants a reader may
// see and sets Query.Tenant accordingly.
type Store interface {
	// Append stores normalized, valid events in one atomic write and returns
	// one result per event, in order. An event whose ID is already stored (or
	// appears earlier in the same batch) for the same event — the same
	// tenant, action, actor, target and outcome (SameEvent): a retry — stores
	// nothing and is reported as a duplicate. An ID stored for any other
	// event, in this tenant or another, is an *IDConflictError and nothing of
	// the batch is written: event IDs are idempotency keys scoped to their
	// event, and one tenant's ID can neither hide another tenant's event nor
	// tell it apart from a conflict in its own tenant. A zero RecordedAt is
	// set to the store's clock.
	Append(ctx context.Context, events []Event) ([]Result, error)
	// Get returns the event with id, or an error matching ErrNotFound.
	Get(ctx context.Context, id uuid.UUID) (Event, error)
	// Query returns the events matching q, newest first (by OccurredAt, then
	// ID), one page at a time.
	Query(ctx context.Context, q Query) (Page, error)
	// Counts returns the number of events per UTC day and action.
	Counts(ctx context.Context, q CountQuery) ([]Count, error)
	// Close releases the store's resources.
	Close() error
}

// TenantLister is a Store that lists the tenants that have events: the
// all-tenant reader's tenant picker. Both SQL stores implement it with one
// index probe per tenant (a skip scan), so it stays cheap on big stores.
type TenantLister interface {
	// Tenants returns up to limit tenants in name order, after the tenant
	// after ("" from the start); the platform's "" is not listed.
	Tenants(ctx context.Context, after string, limit int) ([]string, error)
}

// TxStore is a Store that can also write inside a transaction the caller owns,
// so that an event exists if and only if the caller's transaction commits.
// TTx is the driver's transaction type: *sql.Tx, pgx.Tx.
type TxStore[TTx any] interface {
	Store
	// AppendTx is Append inside tx. It neither commits nor rolls back.
	AppendTx(ctx context.Context, tx TTx, events []Event) ([]Result, error)
}

// CheckStorable rejects an event no store may write: one without an ID, a
// time, an action, an actor type, an outcome or a schema version. Append's
// contract is normalized, valid events (Client guarantees it); stores call
// this cheap check so that a caller skipping Normalize gets an error naming the
// field instead of a corrupt row. The error is a *ValidationError.
func CheckStorable(ev *Event) error {
	switch {
	case ev.ID == uuid.Nil:
		return invalid("id", "required")
	case ev.OccurredAt.IsZero():
		return invalid("occurred_at", "required")
	case ev.Action == "":
		return invalid("action", "required")
	case ev.Actor.Type == "":
		return invalid("actor.type", "required")
	case ev.Outcome == "":
		return invalid("outcome", "required (normalize the event first)")
	case ev.SchemaVersion == 0:
		return invalid("schema_version", "required (normalize the event first)")
	}
	return nil
}

// Result reports what happened to one appended event.
type Result struct {
	ID         uuid.UUID `json:"id"`
	RecordedAt time.Time `json:"recorded_at"`
	// Duplicate is true when an event with this ID was already stored; nothing
	// new was written and RecordedAt is the zero time.
	Duplicate bool `json:"duplicate,omitempty"`
}

// SameEvent reports whether b is a retry of a: the same ID, tenant, action,
// actor (type and ID), target (type and ID) and outcome. Stores use it to
// tell a duplicate from an ID conflict. It compares only fields kept in the
// clear in the stored form, so that a retry transformed again (encryption
// uses fresh nonces) is still recognized; the first copy stored wins.
func SameEvent(a, b *Event) bool {
	return a.ID == b.ID && a.Tenant == b.Tenant && a.Action == b.Action &&
		a.Actor.Type == b.Actor.Type && a.Actor.ID == b.Actor.ID &&
		a.Target.Type == b.Target.Type && a.Target.ID == b.Target.ID &&
		a.Outcome == b.Outcome
}

// IDConflictError reports an event whose ID is stored for another event
// (see Store.Append). It matches ErrIDConflict and says nothing of the
// event that has the ID.
type IDConflictError struct {
	Index int // the event's position in the batch
	ID    uuid.UUID
}

func (e *IDConflictError) Error() string {
	return fmt.Sprintf("trail: event %d: id %s is already in use by another event: give this event a new ID", e.Index, e.ID)
}

// Is makes errors.Is(err, ErrIDConflict) true.
func (e *IDConflictError) Is(target error) bool { return target == ErrIDConflict }

// CheckDuplicates is the duplicate rule of Append for stores: dup[i]
// marks events[i] as not written because its ID was stored already or
// earlier in the batch, and stored(ids) returns the stored events (at least
// their identity fields, see SameEvent) of the IDs not first written in this
// batch. It returns an *IDConflictError for the first event that is not the
// same event as the one holding its ID.
func CheckDuplicates(events []Event, dup []bool, stored func(ids []uuid.UUID) (map[uuid.UUID]Event, error)) error {
	first := make(map[uuid.UUID]int, len(events))
	var missing []uuid.UUID
	for i := range events {
		id := events[i].ID
		if _, seen := first[id]; seen {
			continue
		}
		first[id] = i
		if dup[i] {
			missing = append(missing, id)
		}
	}
	var held map[uuid.UUID]Event
	if len(missing) > 0 {
		var err error
		if held, err = stored(missing); err != nil {
			return err
		}
	}
	for i := range events {
		if !dup[i] {
			continue
		}
		ev := &events[i]
		j := first[ev.ID]
		var other *Event
		if j != i {
			other = &events[j]
		} else if h, ok := held[ev.ID]; ok {
			other = &h
		}
		if other == nil || !SameEvent(other, ev) {
			return &IDConflictError{Index: i, ID: ev.ID}
		}
	}
	return nil
}

// Errors callers branch on.
var (
	// ErrIDConflict is matched by an *IDConflictError.
	ErrIDConflict = errors.New("trail: event ID already in use")
	// ErrNotFound is returned by Get for an unknown ID.
	ErrNotFound = errors.New("trail: event not found")
	// ErrInvalidCursor is returned by Query for a cursor it did not issue.
	ErrInvalidCursor = errors.New("trail: invalid cursor")
	// ErrInvalidQuery is wrapped by errors about a malformed Query.
	ErrInvalidQuery = errors.New("trail: invalid query")
)

// Query selects events. Zero fields do not filter. All string filters are
// exact matches, except Action (an action filter: patterns with *, any-of
// lists, negation; see ParseActionFilter) and Text.
type Query struct {
	// Tenant limits results to one tenant. A query must name one, or set
	// AllTenants: an empty Tenant alone is an error, so that a tenant lost on
	// the way (an unset variable, a missing context value) never turns into
	// a read of every tenant.
	Tenant string
	// AllTenants reads every tenant and the platform events: only all-tenant
	// readers should get such a query. It cannot be combined with Tenant.
	AllTenants bool
	// ActorType and ActorID match the actor; either may be set alone.
	ActorType ActorType
	ActorID   string
	// ActorName and ActorEmail match the actor's stored name or e-mail
	// exactly (case and all): they find events whose field is in plaintext.
	// Where the privacy layer encrypted the field, match its pseudonym with
	// ActorNameDigest and ActorEmailDigest instead (Event.Lookup;
	// trailprivacy's Privacy.Digest computes it for a tenant and a value).
	ActorName, ActorEmail             string
	ActorNameDigest, ActorEmailDigest Digest
	// Action is an action filter (ParseActionFilter): an exact action
	// (user.delete), a pattern where * matches any run of characters
	// (subscription.* matches subscription.plan.change, *.delete every
	// deletion), a comma-separated any-of list of them, and patterns led by
	// ! that exclude ("!audit.*" hides the access events).
	Action string
	// TargetType and TargetID match the target; object history sets both.
	TargetType string
	TargetID   string
	// Since (inclusive) and Until (exclusive) bound OccurredAt.
	Since, Until time.Time
	// Outcome matches one outcome.
	Outcome Outcome
	// Field matches events whose Changes include this field path.
	Field string
	// Text matches words in the description (full-text, all words must match).
	Text string
	// Metadata matches events whose metadata holds this text in a key or a
	// value, ignoring ASCII letter case: "OPS-311" finds {"ticket":
	// "OPS-311"}. It is a word or a value, not JSON: the characters " \ < >
	// & { } : and , are refused (stores keep JSON text in different forms).
	// Values the privacy layer encrypted do not match.
	Metadata string
	// Limit is the page size: 0 means DefaultLimit, at most MaxLimit.
	Limit int
	// Cursor continues after the page that returned it as Page.Next.
	Cursor string
}

// Page sizes.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Page is one page of query results.
type Page struct {
	Events []Event
	// Next is the cursor for the following (older) page; empty on the last page.
	Next string
}

// Validate checks q and reports the first problem, wrapping ErrInvalidQuery.
// Stores call it before running a query.
func (q *Query) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidQuery, field, fmt.Sprintf(format, args...))
	}
	if err := checkScope(q.Tenant, q.AllTenants); err != nil {
		return err
	}
	if q.ActorType != "" && !q.ActorType.Valid() {
		return bad("actor", "type %q must be user, service, system or anonymous", clip(string(q.ActorType)))
	}
	if _, err := ParseActionFilter(q.Action); err != nil {
		return err
	}
	if q.Outcome != "" && !q.Outcome.Valid() {
		return bad("outcome", "%q must be success, failure or denied", clip(string(q.Outcome)))
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		return bad("until", "must be after since")
	}
	if q.Limit < 0 || q.Limit > MaxLimit {
		return bad("limit", "%d out of range 1-%d", q.Limit, MaxLimit)
	}
	if strings.ContainsAny(q.Metadata, "\"\\<>&{}:,") || strings.ContainsFunc(q.Metadata, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return bad("metadata", "%q must be a word or a value, without \" \\ < > & { } : , or control characters", clip(q.Metadata))
	}
	for _, s := range []struct{ name, v string }{{"actor", q.ActorID}, {"actor_name", q.ActorName}, {"actor_email", q.ActorEmail}, {"target", q.TargetType + q.TargetID}, {"field", q.Field}, {"text", q.Text}, {"metadata", q.Metadata}} {
		if len(s.v) > 2*MaxIDLen {
			return bad(s.name, "too long")
		}
		if strings.IndexByte(s.v, 0) >= 0 {
			return bad(s.name, "contains a NUL byte")
		}
		if !utf8.ValidString(s.v) {
			return bad(s.name, "not valid UTF-8")
		}
	}
	if q.Cursor != "" {
		if _, err := DecodeCursor(q.Cursor); err != nil {
			return err
		}
	}
	return nil
}

// EffectiveLimit returns the page size a store should use for q.
func (q *Query) EffectiveLimit() int {
	if q.Limit <= 0 {
		return DefaultLimit
	}
	return min(q.Limit, MaxLimit)
}

// MetadataPattern is q.Metadata as a LIKE pattern with \ as the escape
// character, ASCII letters lower-cased: stores match it against the
// metadata's JSON text with ASCII letters lower-cased.
func (q *Query) MetadataPattern() string {
	var b strings.Builder
	b.WriteByte('%')
	for _, r := range q.Metadata {
		switch {
		case r == '%' || r == '_':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r + 'a' - 'A')
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('%')
	return b.String()
}

// checkScope is the tenant rule of Query and CountQuery: one tenant, or all
// of them said explicitly.
func checkScope(tenant string, all bool) error {
	switch {
	case tenant == "" && !all:
		return fmt.Errorf("%w: tenant: required: name a tenant (Query.Tenant), or set AllTenants to read every tenant and the platform events", ErrInvalidQuery)
	case tenant != "" && all:
		return fmt.Errorf("%w: tenant: %q given with AllTenants: choose one", ErrInvalidQuery, clip(tenant))
	case tenant != "" && !ValidTenant(tenant):
		return fmt.Errorf("%w: tenant: %q is not a valid tenant", ErrInvalidQuery, clip(tenant))
	}
	return nil
}

// CountQuery selects the events to count. Like Query, it names a tenant or
// sets AllTenants. Its filters are those of Query, with the same meaning.
type CountQuery struct {
	Tenant       string // one tenant; required unless AllTenants
	AllTenants   bool   // every tenant and the platform events
	Action       string // an action filter, as in Query
	Since, Until time.Time

	ActorType                         ActorType
	ActorID, ActorName, ActorEmail    string
	ActorNameDigest, ActorEmailDigest Digest
	TargetType, TargetID              string
	Outcome                           Outcome
	Field, Text, Metadata             string

	// Zone, when set, makes the days local days in that zone (a page that
	// shows times in Los Angeles counts Los Angeles days); nil is UTC.
	Zone *time.Location
}

// Query returns q's filters as a Query (no limit, no cursor): stores
// validate and match a CountQuery through it.
func (q CountQuery) Query() Query {
	return Query{Tenant: q.Tenant, AllTenants: q.AllTenants, Action: q.Action, Since: q.Since, Until: q.Until,
		ActorType: q.ActorType, ActorID: q.ActorID, ActorName: q.ActorName, ActorEmail: q.ActorEmail,
		ActorNameDigest: q.ActorNameDigest, ActorEmailDigest: q.ActorEmailDigest,
		TargetType: q.TargetType, TargetID: q.TargetID, Outcome: q.Outcome,
		Field: q.Field, Text: q.Text, Metadata: q.Metadata}
}

// Counts returns the CountQuery of q's filters (its limit and cursor
// dropped): the events q pages through, to count.
func (q Query) Counts() CountQuery {
	return CountQuery{Tenant: q.Tenant, AllTenants: q.AllTenants, Action: q.Action, Since: q.Since, Until: q.Until,
		ActorType: q.ActorType, ActorID: q.ActorID, ActorName: q.ActorName, ActorEmail: q.ActorEmail,
		ActorNameDigest: q.ActorNameDigest, ActorEmailDigest: q.ActorEmailDigest,
		TargetType: q.TargetType, TargetID: q.TargetID, Outcome: q.Outcome,
		Field: q.Field, Text: q.Text, Metadata: q.Metadata}
}

// Count is the number of events of one action on one day: a UTC day, or a
// day in CountQuery.Zone.
type Count struct {
	Day    time.Time `json:"day"` // midnight UTC, or midnight in CountQuery.Zone
	Action string    `json:"action"`
	N      int64     `json:"count"`
}

// MergeCounts adds up the counts of the same day and action and orders
// them by day, then action, as Store.Counts returns them: a store that
// counts in smaller buckets (quarter hours for CountQuery.Zone) folds them
// into days with it. It reuses counts' array.
func MergeCounts(counts []Count) []Count {
	slices.SortFunc(counts, func(a, b Count) int {
		return cmp.Or(a.Day.Compare(b.Day), strings.Compare(a.Action, b.Action))
	})
	out := counts[:0]
	for _, c := range counts {
		if n := len(out); n > 0 && out[n-1].Day.Equal(c.Day) && out[n-1].Action == c.Action {
			out[n-1].N += c.N
			continue
		}
		out = append(out, c)
	}
	return out
}

// Cursor is a position in the newest-first order: the last event of a page.
type Cursor struct {
	OccurredAt time.Time
	ID         uuid.UUID
}

// A cursor is base64url (unpadded) of 29 bytes: version 2, OccurredAt in
// Unix microseconds (8 bytes, big-endian), the ID (16 bytes), and the CRC-32C
// of those 25 bytes (4 bytes, big-endian). The checksum makes a cursor
// self-checking: a cursor copied with a character changed, cut short or run
// together with other text is refused rather than read as another position.
// CRC-32C detects every error of up to 32 consecutive bits, so every changed
// bit of the bytes and every changed character of the text is caught; it is
// no signature (anyone can make a cursor, which only names a position that
// the query's own filters and the caller's scope still apply to). Version 1
// cursors, without the checksum, are refused: cursors live for one listing.
const cursorVersion = 2

const cursorLen = 1 + 8 + 16 + 4

var cursorCRC = crc32.MakeTable(crc32.Castagnoli)

// EncodeCursor returns the opaque cursor that continues after c.
func EncodeCursor(c Cursor) string {
	var b [cursorLen]byte
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(c.OccurredAt.UnixMicro()))
	copy(b[9:25], c.ID[:])
	binary.BigEndian.PutUint32(b[25:], crc32.Checksum(b[:25], cursorCRC))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// DecodeCursor parses a cursor made by EncodeCursor. Any other string,
// including one with a changed character and a cursor of version 1, is an
// error matching ErrInvalidCursor.
func DecodeCursor(s string) (Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != cursorLen || b[0] != cursorVersion ||
		binary.BigEndian.Uint32(b[25:]) != crc32.Checksum(b[:25], cursorCRC) {
		return Cursor{}, ErrInvalidCursor
	}
	var c Cursor
	c.OccurredAt = time.UnixMicro(int64(binary.BigEndian.Uint64(b[1:9]))).UTC()
	copy(c.ID[:], b[9:25])
	// base64 decoding ignores newlines and the unused low bits of the last
	// character: only the exact string EncodeCursor makes is a cursor.
	if EncodeCursor(c) != s {
		return Cursor{}, ErrInvalidCursor
	}
	return c, nil
}

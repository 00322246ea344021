package trailarchive

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/trailhq/trail"
)

// Hold is a legal hold: while it exists, no event of Tenant (or, with
// Subject, no event whose actor or target is Subject, "type:id") is purged.
// MinKeep, when set, is a retention no policy of the tenant may go below.
// Tenant and Subject name the hold: placing a hold on the same pair
// replaces it (keeping its Since).
type Hold struct {
	Tenant  string        `json:"tenant"`
	Subject string        `json:"subject,omitempty"`
	Reason  string        `json:"reason,omitempty"`
	MinKeep time.Duration `json:"min_keep,omitempty"`
	Since   time.Time     `json:"since"`
}

// MaxHoldReason bounds a hold's Reason, in bytes.
const MaxHoldReason = 1024

// subjectTypeRE is a subject's type: a lower-case word, as actor and target
// types are written.
var subjectTypeRE = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,63}$`)

// InvalidHoldError is a malformed hold. Field names the input at fault
// (tenant, subject, reason) as the retention API's problems do; it matches
// ErrInvalidPolicy.
type InvalidHoldError struct {
	Field  string
	Detail string
}

func (e *InvalidHoldError) Error() string { return ErrInvalidPolicy.Error() + ": hold: " + e.Detail }

// Is makes errors.Is(err, ErrInvalidPolicy) true.
func (e *InvalidHoldError) Is(target error) bool { return target == ErrInvalidPolicy }

// Validate checks h's fields, with the rules of `trail retention hold` and
// of POST /v1/retention/holds (both call it): a valid tenant; a subject
// empty or type:id (a lower-case type, an ID of at most trail.MaxIDLen
// bytes without control characters); a reason of one line (CheckHoldReason).
// Its error is an *InvalidHoldError naming the field.
func (h Hold) Validate() error {
	if !trail.ValidTenant(h.Tenant) {
		return &InvalidHoldError{Field: "tenant", Detail: "tenant is not a valid tenant"}
	}
	if h.Subject != "" {
		typ, id, ok := strings.Cut(h.Subject, ":")
		if !ok || !subjectTypeRE.MatchString(typ) || id == "" || len(id) > trail.MaxIDLen || !utf8.ValidString(id) ||
			strings.ContainsFunc(id, unicode.IsControl) {
			return &InvalidHoldError{Field: "subject", Detail: fmt.Sprintf(
				"subject must be type:id (user:42): a lower-case type, then an ID of at most %d bytes without control characters", trail.MaxIDLen)}
		}
	}
	if err := CheckHoldReason(h.Reason); err != nil {
		return err
	}
	return nil
}

// CheckHoldReason reports why s cannot be a hold's reason: a reason is one
// line of UTF-8 text of at most MaxHoldReason bytes, without a line break
// (\n, \r, U+0085, U+2028, U+2029) or any other control character. It is
// shown on one line by `trail retention show` and recorded in the hold's
// events.
func CheckHoldReason(s string) error {
	if len(s) > MaxHoldReason || !utf8.ValidString(s) ||
		strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' }) {
		return &InvalidHoldError{Field: "reason", Detail: fmt.Sprintf(
			"reason must be one line of UTF-8 text of at most %d bytes, without a line break or control character", MaxHoldReason)}
	}
	return nil
}

// ErrWeakensHold is matched by PutHold's refusal, under OnlyStrengthen, of
// a change that would not strengthen the hold in force (a *WeakenError).
var ErrWeakensHold = errors.New("trailarchive: would weaken a legal hold")

// WeakenError is the refusal of a change that would weaken or otherwise
// change the hold in force (Hold.CheckStrengthens). Field names what:
// min_keep or reason. It matches ErrWeakensHold.
type WeakenError struct {
	Field  string
	Detail string
}

func (e *WeakenError) Error() string { return "trailarchive: " + e.Detail }

// Is makes errors.Is(err, ErrWeakensHold) true.
func (e *WeakenError) Is(target error) bool { return target == ErrWeakensHold }

// CheckStrengthens reports whether h, replacing old (the hold in force on
// the same tenant and subject), strengthens it: h keeps old's reason, and a
// MinKeep at least as long as old's. No MinKeep is the weakest (it holds no
// policy of the tenant back: once the hold is released, a policy of one day
// may purge what it kept); any period is stronger, a longer one stronger
// still. Re-placing the same hold strengthens it (it changes nothing). Its
// error is a *WeakenError naming the field.
//
// Placing a hold where none is adds one, which never weakens anything,
// whatever it covers: a tenant-wide hold beside subject holds covers more.
func (h Hold) CheckStrengthens(old Hold) error {
	on := "the legal hold on " + holdName(old)
	switch {
	case h.MinKeep < old.MinKeep:
		return &WeakenError{Field: "min_keep", Detail: fmt.Sprintf("min_keep %s would weaken %s, which keeps at least %s",
			keepOrNone(h.MinKeep), on, FormatKeep(old.MinKeep))}
	case h.Reason != old.Reason:
		return &WeakenError{Field: "reason", Detail: fmt.Sprintf("another reason would change %s (send its reason unchanged to lengthen min_keep)", on)}
	}
	return nil
}

// holdName is "tenant T" or "tenant T, subject S".
func holdName(h Hold) string {
	s := "tenant " + h.Tenant
	if h.Subject != "" {
		s += ", subject " + h.Subject
	}
	return s
}

func keepOrNone(d time.Duration) string {
	if d <= 0 {
		return "none"
	}
	return FormatKeep(d)
}

type onlyStrengthenKey struct{}

// OnlyStrengthen returns a context under which PutHold places a new hold
// but replaces one only to strengthen it (Hold.CheckStrengthens): the
// retention API passes it for a tenant's administrator, who may add a legal
// hold on its tenant but neither weaken nor release one, whoever placed it.
// A refused replace fails with a *WeakenError, leaves the hold as it was,
// and is recorded as a denied retention.hold.place event.
func OnlyStrengthen(ctx context.Context) context.Context {
	return context.WithValue(ctx, onlyStrengthenKey{}, true)
}

// onlyStrengthen reports whether ctx is OnlyStrengthen's.
func onlyStrengthen(ctx context.Context) bool {
	v, _ := ctx.Value(onlyStrengthenKey{}).(bool)
	return v
}

// checkReplace is PutHold's check of h against old, the hold in force on
// its tenant and subject (nil: none): under OnlyStrengthen, a replace that
// does not strengthen old is refused, with the denied event that records
// the refusal.
func checkReplace(ctx context.Context, h, old *Hold) (*trail.Event, error) {
	if old == nil || !onlyStrengthen(ctx) {
		return nil, nil
	}
	var we *WeakenError
	if !errors.As(h.CheckStrengthens(*old), &we) {
		return nil, nil
	}
	ev := holdEvent(h, old)
	ev.Outcome = trail.OutcomeDenied
	ev.Description = "Refused: " + we.Detail
	ev.Metadata["refused"] = we.Field
	delete(ev.Metadata, "weakened")
	return &ev, we
}

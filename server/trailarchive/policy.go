package trailarchive

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trailhq/trail"
)

// DefaultKeep is how long events stay hot when no policy says otherwise.
const DefaultKeep = 365 * Day

// Day and Year are the units of Keep ("90d", "7y"). A year is 365 days: a
// retention period is a legal minimum, and rounding down a leap day would
// delete a day early, so Year errs on the short side only by the leap days
// that a 7-year period at most spans (policies are stated in days when that
// matters).
const (
	Day  = 24 * time.Hour
	Year = 365 * Day
)

// Then is what happens to an event once its hot period is over.
type Then string

// Thens.
const (
	ThenArchive Then = "archive" // written to the archive, then purged
	ThenDelete  Then = "delete"  // purged without an archive
)

// Policy is one retention rule. Tenant "" applies to every tenant (and the
// platform events); Action "" to every action, else an exact action or a
// prefix pattern ("auth.*"). The most specific rule applies: tenant and
// action, then action, then tenant, then the default; among action patterns
// the longest.
type Policy struct {
	Tenant string        `json:"tenant,omitempty"`
	Action string        `json:"action,omitempty"`
	Keep   time.Duration `json:"keep"`
	Then   Then          `json:"then"`
}

// Errors callers branch on.
var (
	// ErrInvalidPolicy is wrapped by errors about a malformed policy or hold.
	ErrInvalidPolicy = errors.New("trailarchive: invalid policy")
	// ErrConflict is wrapped by errors about policies that contradict each
	// other or a hold.
	ErrConflict = errors.New("trailarchive: conflicting policy")
)

var durRE = regexp.MustCompile(`^([0-9]{1,6})(h|d|w|m|y)$`)

// ParseKeep parses a retention period: 36h, 90d, 2w, 6m (30 days), 7y (365
// days).
func ParseKeep(s string) (time.Duration, error) {
	m := durRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%w: keep %q: want a number and a unit h, d, w, m or y (90d, 7y)", ErrInvalidPolicy, s)
	}
	n, _ := strconv.Atoi(m[1])
	unit := map[string]time.Duration{"h": time.Hour, "d": Day, "w": 7 * Day, "m": 30 * Day, "y": Year}[m[2]]
	d := time.Duration(n) * unit
	if d <= 0 {
		return 0, fmt.Errorf("%w: keep %q must be positive", ErrInvalidPolicy, s)
	}
	if d > 200*Year {
		return 0, fmt.Errorf("%w: keep %q is longer than 200 years", ErrInvalidPolicy, s)
	}
	return d, nil
}

// FormatKeep writes d the way ParseKeep reads it, in the largest exact unit.
func FormatKeep(d time.Duration) string {
	for _, u := range []struct {
		s string
		d time.Duration
	}{{"y", Year}, {"w", 7 * Day}, {"d", Day}} {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.s
		}
	}
	return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
}

// Validate checks p's fields.
func (p Policy) Validate() error {
	if p.Tenant != "" && !trail.ValidTenant(p.Tenant) {
		return fmt.Errorf("%w: tenant %q", ErrInvalidPolicy, p.Tenant)
	}
	if p.Action != "" {
		// The events the policy covers: its tenant's, or every tenant's.
		q := trail.Query{Tenant: p.Tenant, AllTenants: p.Tenant == "", Action: p.Action}
		// Policies resolve by exact action or prefix only, not by the
		// queries' wider filters (lists, negation, * elsewhere).
		pre, isPrefix := trail.PatternPrefix(p.Action)
		exactOrPrefix := trail.ValidAction(p.Action) || isPrefix && strings.HasSuffix(pre, ".") && !strings.ContainsAny(p.Action, ",!")
		if err := q.Validate(); err != nil || !exactOrPrefix {
			return fmt.Errorf("%w: action %q must be an action (user.delete) or a prefix (auth.*)", ErrInvalidPolicy, p.Action)
		}
	}
	if p.Keep <= 0 {
		return fmt.Errorf("%w: keep must be positive", ErrInvalidPolicy)
	}
	if p.Then != ThenArchive && p.Then != ThenDelete {
		return fmt.Errorf("%w: then %q must be archive or delete", ErrInvalidPolicy, p.Then)
	}
	return nil
}

// Set is the policies and holds in force.
type Set struct {
	Policies []Policy
	Holds    []Hold
}

// matches reports whether pattern matches action, and how specifically
// (longer is more specific; 0 for the empty pattern).
func matches(pattern, action string) (bool, int) {
	if pattern == "" {
		return true, 0
	}
	if p, ok := strings.CutSuffix(pattern, ".*"); ok {
		return strings.HasPrefix(action, p+"."), len(p)
	}
	return pattern == action, len(pattern) + 1
}

// MinKeep is the shortest keep of any policy, or of the default: no event
// recorded within it of now is past retention.
func (s *Set) MinKeep() time.Duration {
	m := DefaultKeep
	for _, p := range s.Policies {
		m = min(m, p.Keep)
	}
	return m
}

// Resolve returns the policy that applies to an event of tenant with action:
// the most specific one, or the default (DefaultKeep, archive).
func (s *Set) Resolve(tenant, action string) Policy {
	best, bestRank := Policy{Keep: DefaultKeep, Then: ThenArchive}, -1
	for _, p := range s.Policies {
		if p.Tenant != "" && p.Tenant != tenant {
			continue
		}
		ok, spec := matches(p.Action, action)
		if !ok {
			continue
		}
		// Rank: tenant and action, then action, then tenant; longer patterns first.
		class := 0
		switch {
		case p.Tenant != "" && p.Action != "":
			class = 3
		case p.Action != "":
			class = 2
		case p.Tenant != "":
			class = 1
		}
		rank := class<<20 + spec
		if rank > bestRank {
			best, bestRank = p, rank
		}
	}
	return best
}

// Held reports whether a hold covers ev, and which.
func (s *Set) Held(ev *trail.Event) (Hold, bool) {
	for _, h := range s.Holds {
		if h.Tenant != ev.Tenant {
			continue
		}
		if h.Subject == "" || h.Subject == string(ev.Actor.Type)+":"+ev.Actor.ID ||
			h.Subject == ev.Target.Type+":"+ev.Target.ID {
			return h, true
		}
	}
	return Hold{}, false
}

// CheckSet reports why adding p to s would leave policies that contradict
// each other or a hold. The set p would replace (same tenant and action) is
// not counted.
//
//   - A tenant-wide rule and an all-tenant action rule that both apply to an
//     event of that tenant disagree: which one the operator meant is
//     unclear, so Trail asks for a rule naming both (--tenant T --action P).
//   - A rule for a tenant keeps events less than a hold's MinKeep.
func (s *Set) CheckSet(p Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	others := slices.DeleteFunc(slices.Clone(s.Policies), func(o Policy) bool { return o.Tenant == p.Tenant && o.Action == p.Action })
	for _, o := range others {
		var tw, ar Policy
		switch {
		case p.Tenant != "" && p.Action == "" && o.Tenant == "" && o.Action != "":
			tw, ar = p, o
		case o.Tenant != "" && o.Action == "" && p.Tenant == "" && p.Action != "":
			tw, ar = o, p
		default:
			continue
		}
		if tw.Keep == ar.Keep && tw.Then == ar.Then {
			continue
		}
		if hasRule(others, tw.Tenant, ar.Action) {
			continue // resolved explicitly
		}
		return fmt.Errorf("%w: tenant %s keeps %s then %s, but %s events keep %s then %s: say which applies with --tenant %s --action %s",
			ErrConflict, tw.Tenant, FormatKeep(tw.Keep), tw.Then, ar.Action, FormatKeep(ar.Keep), ar.Then, tw.Tenant, ar.Action)
	}
	for _, h := range s.Holds {
		if h.MinKeep > 0 && (p.Tenant == "" || p.Tenant == h.Tenant) && p.Keep < h.MinKeep {
			who := "tenant " + h.Tenant
			if h.Subject != "" {
				who += " subject " + h.Subject
			}
			return fmt.Errorf("%w: keep %s is shorter than the legal hold on %s (at least %s): release the hold or keep longer",
				ErrConflict, FormatKeep(p.Keep), who, FormatKeep(h.MinKeep))
		}
	}
	return nil
}

func hasRule(ps []Policy, tenant, action string) bool {
	return slices.ContainsFunc(ps, func(o Policy) bool { return o.Tenant == tenant && o.Action == action })
}

package trail

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// Action filters are the language of Query.Action and CountQuery.Action:
// one pattern, or an any-of list of patterns separated by commas. A pattern
// is an action (user.delete) in which * stands for any run of characters,
// dots included: *.delete matches user.delete and api_key.delete,
// subscription.* matches subscription.update and subscription.plan.change,
// user.*.delete matches user.profile.delete. A pattern led by ! excludes
// what it matches: "*.delete,!user.delete" is every deletion but a user's,
// "!audit.*" everything but the access events. An action matches a filter
// when it matches one of its plain patterns (or there are none) and none of
// its negated ones.
//
// Every store translates the filter into its own SQL (an index range for a
// prefix, GLOB or LIKE otherwise); ActionFilter.Match is the reference the
// in-memory matchers use.

// MaxActionPatterns bounds the patterns of one action filter.
const MaxActionPatterns = 16

// AccessActions is the action filter of the access events: the reads Trail
// records of its own log (audit.read) and any other audit.* action. Lists
// and exports hide them unless asked for (the API's include_access=true);
// the UI shows them in its Access log.
const AccessActions = "audit.*"

// ActionFilter is a parsed action filter.
type ActionFilter struct {
	Include []string // any of these (none: every action)
	Exclude []string // none of these
}

// actionGlobRE is a pattern with at least one star: dot-separated segments
// of lower-case letters, digits, _ and - and stars, no two stars together.
var actionGlobRE = regexp.MustCompile(`^[a-z0-9_*-]+(\.[a-z0-9_*-]+)*$`)

// ParseActionFilter parses an action filter; "" is the empty filter, which
// matches every action. The error wraps ErrInvalidQuery and names the field
// "action".
func ParseActionFilter(s string) (ActionFilter, error) {
	var f ActionFilter
	if s == "" {
		return f, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > MaxActionPatterns {
		return f, fmt.Errorf("%w: action: %d patterns, at most %d", ErrInvalidQuery, len(parts), MaxActionPatterns)
	}
	for _, p := range parts {
		p = strings.TrimSpace(p)
		neg := strings.HasPrefix(p, "!")
		if neg {
			p = p[1:]
		}
		if !validActionPattern(p) {
			return ActionFilter{}, fmt.Errorf("%w: action: %q must be an action (user.delete), a pattern with * (*.delete, subscription.*), a comma-separated list of them, each negated with a leading ! (!audit.*)", ErrInvalidQuery, clip(p))
		}
		if neg {
			f.Exclude = append(f.Exclude, p)
		} else {
			f.Include = append(f.Include, p)
		}
	}
	return f, nil
}

func validActionPattern(p string) bool {
	if !strings.Contains(p, "*") {
		return ValidAction(p)
	}
	return len(p) <= MaxActionLen && !strings.Contains(p, "**") &&
		strings.Trim(p, "*.") != "" && actionGlobRE.MatchString(p)
}

// Match reports whether action passes the filter.
func (f ActionFilter) Match(action string) bool {
	for _, p := range f.Exclude {
		if MatchActionPattern(p, action) {
			return false
		}
	}
	if len(f.Include) == 0 {
		return true
	}
	for _, p := range f.Include {
		if MatchActionPattern(p, action) {
			return true
		}
	}
	return false
}

// String returns the filter in the form ParseActionFilter reads.
func (f ActionFilter) String() string {
	parts := append([]string(nil), f.Include...)
	for _, p := range f.Exclude {
		parts = append(parts, "!"+p)
	}
	return strings.Join(parts, ",")
}

// PatternPrefix reports whether a pattern is a plain prefix (one star, at
// the end: subscription.*) and returns the prefix before the star, which
// stores can match with an index range.
func PatternPrefix(p string) (string, bool) {
	pre, ok := strings.CutSuffix(p, "*")
	if !ok || strings.Contains(pre, "*") {
		return "", false
	}
	return pre, true
}

// MatchActionPattern reports whether action matches one pattern (no !):
// * matches any run of characters.
func MatchActionPattern(pattern, action string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == action
	}
	parts := strings.Split(pattern, "*")
	first, last := parts[0], parts[len(parts)-1]
	if len(action) < len(first)+len(last) || !strings.HasPrefix(action, first) || !strings.HasSuffix(action, last) {
		return false
	}
	s := action[len(first) : len(action)-len(last)]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return true
}

// WithoutAccess returns the action filter s with the access events
// excluded, unless s already names them: an explicit ask for audit.read (or
// any plain pattern starting with "audit.") is honoured.
func WithoutAccess(s string) string {
	f, err := ParseActionFilter(s)
	if err != nil {
		return s // the store refuses it with the right message
	}
	for _, p := range f.Include {
		if strings.HasPrefix(p, "audit.") {
			return s
		}
	}
	if s == "" {
		return "!" + AccessActions
	}
	return s + ",!" + AccessActions
}

// MetadataContains is the reference of Query.Metadata for in-memory
// matchers: whether the JSON text of metadata holds text, ASCII letters
// compared without case.
func MetadataContains(metadata map[string]any, text string) bool {
	if len(metadata) == 0 {
		return false
	}
	b, err := json.Marshal(metadata)
	if err != nil {
		return false
	}
	return strings.Contains(asciiLower(string(b)), asciiLower(text))
}

func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

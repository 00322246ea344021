package trailcli

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailprivacy"
)

// policyError is the message of a --policy file that does not parse: the
// file, where (a line, or a rule of the JSON form) and what the policy
// syntax wants there — never the file's text. --policy may name the wrong
// file (.env, .netrc, a cloud credentials file), and the message lands on
// terminals and in CI logs: trailprivacy's own errors quote the offending
// line or token, so the CLI keeps their position and their kind only.
func policyError(path string, err error) error {
	if !errors.Is(err, trailprivacy.ErrPolicy) {
		return fmt.Errorf("%s: not a valid policy (see docs/privacy.md)", path)
	}
	msg := strings.TrimPrefix(err.Error(), trailprivacy.ErrPolicy.Error()+": ")
	where, detail, _ := strings.Cut(msg, ": ")
	if !policyWhere(where) {
		where = "policy"
	}
	return fmt.Errorf("%s: %s: %s (see docs/privacy.md)", path, where, policyReason(detail))
}

var (
	policyLineRE = regexp.MustCompile(`^(line \d+|policy|rules\[\d+\]|tenants)$`)
	policyRuleRE = regexp.MustCompile(`^tenants\.([^.]+)(\.rules\[\d+\])?$`)
)

// policyWhere reports whether where is a position ParsePolicy names: a
// line, a rule index, or a tenant (a valid tenant name) of the JSON form.
func policyWhere(where string) bool {
	if policyLineRE.MatchString(where) {
		return true
	}
	m := policyRuleRE.FindStringSubmatch(where)
	return m != nil && trail.ValidTenant(m[1])
}

// policyReason maps ParsePolicy's detail to a fixed phrase. A pattern's
// problem keeps the words after the quoted pattern, which are the parser's.
func policyReason(detail string) string {
	switch {
	case strings.Contains(detail, "want PATTERN ACTION"):
		return `not a policy rule: want PATTERN ACTION, e.g. "password redact"`
	case strings.HasPrefix(detail, "unknown action"):
		return "unknown action: want omit, redact, hmac, pii or keep"
	case strings.Contains(detail, "want [tenant NAME]"):
		return "not a section header: want [tenant NAME]"
	case strings.HasSuffix(detail, "is not a valid tenant"):
		return "not a valid tenant name"
	case strings.HasSuffix(detail, "has a second section"):
		return "a tenant's second section"
	case strings.HasPrefix(detail, "defaults "):
		return "defaults: want on or off"
	case detail == "not valid UTF-8", detail == "more than one JSON value", detail == "null", detail == "empty pattern":
		return detail
	case strings.HasPrefix(detail, "invalid JSON"):
		return `not a JSON policy: want {"rules": [{"match": "password", "action": "redact"}]}`
	case strings.HasPrefix(detail, "pattern "):
		rest := detail[len("pattern "):]
		if q, err := strconv.QuotedPrefix(rest); err == nil {
			return "pattern" + rest[len(q):]
		}
	}
	return "not a valid policy"
}

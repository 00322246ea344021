package trailprivacy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/denylist"
)

// Action is what a policy does to a field.
type Action string

// Actions. The zero Action is not valid in a rule; ActionFor returns
// ActionKeep when no rule matches.
const (
	// ActionKeep stores the value as it is. In a rule it overrides a broader
	// rule of a lower level, e.g. a tenant keeping "session_count" that the
	// default deny-list would redact.
	ActionKeep Action = "keep"
	// ActionOmit drops the field: the change, or the metadata key, is not stored.
	ActionOmit Action = "omit"
	// ActionRedact records that the field changed, not its values: the change
	// is kept with Redacted set; a metadata value becomes "[redacted]".
	ActionRedact Action = "redact"
	// ActionHMAC stores a keyed HMAC-SHA256 of the value ("hmac:v1:…"):
	// searchable by equality with HashFor, not reversible.
	ActionHMAC Action = "hmac"
	// ActionPII stores the value encrypted under the subject's data key
	// ("enc:v1:…"), so that Forget erases it.
	ActionPII Action = "pii"
)

// Valid reports whether a is a known action.
func (a Action) Valid() bool {
	switch a {
	case ActionKeep, ActionOmit, ActionRedact, ActionHMAC, ActionPII:
		return true
	}
	return false
}

// ErrPolicy is matched by every error of ParsePolicy.
var ErrPolicy = errors.New("trailprivacy: invalid policy")

// DefaultDenyList returns the built-in list of sensitive names that every
// policy redacts unless turned off with "defaults off". Each entry matches
// a path segment that contains its words, case-insensitively, with the
// usual separators (_ - space, camelCase): "password" matches
// "user_password" and "newPassword"; "api_key" matches "X-Api-Key" and
// "apiKey". See docs/privacy.md.
func DefaultDenyList() []string { return denylist.Names() }

// MaxPatternLen bounds one rule's pattern.
const MaxPatternLen = 256

// Rule applies Action to the fields that Match.
//
// Match is either a name or a dotted path glob:
//   - a name (no dot, no *) matches any path segment containing its words,
//     exactly as the deny-list does: "email" matches "email",
//     "user.email" and "metadata.contact_email";
//   - a glob is matched against the whole dotted path, case-insensitively,
//     segment by segment: "*" inside a segment matches any characters,
//     a segment "*" matches one segment, a segment "**" any number of them.
//     Metadata paths start with "metadata." ("metadata.card.*"); change
//     paths are the change's field ("address.city").
//
// A rule that matches a path also covers everything below it.
type Rule struct {
	Match  string `json:"match"`
	Action Action `json:"action"`

	m matcher
}

// Policy decides what happens to each field of an event: deployment-wide
// rules, per-tenant rules that take precedence, and the default deny-list
// under both. A Policy is immutable and safe for concurrent use; build one
// with ParsePolicy or DefaultPolicy.
type Policy struct {
	defaults bool
	rules    []Rule
	tenants  map[string]*tenantPolicy
}

type tenantPolicy struct {
	defaults *bool // nil: as the deployment
	rules    []Rule
}

// DefaultPolicy returns the policy with no rules of its own: the default
// deny-list, redacting.
func DefaultPolicy() *Policy { return &Policy{defaults: true} }

// keyedRule returns the pattern of the first rule that needs keys (hmac or
// pii), deployment-wide or of a tenant, or "".
func (p *Policy) keyedRule() string {
	all := [][]Rule{p.rules}
	for _, tp := range p.tenants {
		all = append(all, tp.rules)
	}
	for _, rules := range all {
		for _, r := range rules {
			if r.Action == ActionHMAC || r.Action == ActionPII {
				return r.Match
			}
		}
	}
	return ""
}

// ActionFor returns the action the policy applies to a value at path for
// tenant. The path is read from its first segment down; at each node:
//
//   - the tenant's rules, then the deployment's, are tried in order, and the
//     first that matches decides for the node and everything below it (keep
//     included: below a kept node, rules are tried again);
//   - otherwise, if the node's name is on the deny-list (and defaults are
//     on), the node and what is below it are redacted, but rules deeper down
//     still apply: with "metadata.card.* hmac", metadata.card.number is
//     hashed although "card" is on the deny-list, and metadata.card.brand is
//     redacted.
//
// ActionKeep when nothing applies.
func (p *Policy) ActionFor(tenant, path string) Action {
	segs := splitPath(path)
	tp := p.tenants[tenant]
	inherited := ActionKeep
	for i := 1; i <= len(segs); i++ {
		a, whole := p.step(tp, segs[:i], inherited)
		if whole {
			return a
		}
		inherited = a
	}
	return inherited
}

// step decides for the node segs, below a node that decided inherited.
// whole is true when a rule matched the node: its action covers the whole
// subtree. Otherwise act is inherited, or redact from the deny-list, and
// applies to the node's scalar values while rules below are still tried.
func (p *Policy) step(tp *tenantPolicy, segs []string, inherited Action) (act Action, whole bool) {
	defaults := p.defaults
	if tp != nil {
		for i := range tp.rules {
			if tp.rules[i].m.match(segs) {
				return tp.rules[i].Action, tp.rules[i].Action != ActionKeep
			}
		}
		if tp.defaults != nil {
			defaults = *tp.defaults
		}
	}
	for i := range p.rules {
		if p.rules[i].m.match(segs) {
			return p.rules[i].Action, p.rules[i].Action != ActionKeep
		}
	}
	if defaults && denylist.Match(segs[len(segs)-1]) {
		return ActionRedact, false
	}
	return inherited, false
}

// usesKeys reports whether some rule needs key material (hmac or pii).
func (p *Policy) usesKeys() bool {
	for _, r := range p.rules {
		if r.Action == ActionHMAC || r.Action == ActionPII {
			return true
		}
	}
	for _, tp := range p.tenants {
		for _, r := range tp.rules {
			if r.Action == ActionHMAC || r.Action == ActionPII {
				return true
			}
		}
	}
	return false
}

// String returns the policy in the text form ParsePolicy reads.
func (p *Policy) String() string {
	var b strings.Builder
	if !p.defaults {
		b.WriteString("defaults off\n")
	}
	for _, r := range p.rules {
		fmt.Fprintf(&b, "%s %s\n", r.Match, r.Action)
	}
	names := make([]string, 0, len(p.tenants))
	for t := range p.tenants {
		names = append(names, t)
	}
	slices.Sort(names)
	for _, t := range names {
		tp := p.tenants[t]
		fmt.Fprintf(&b, "\n[tenant %s]\n", t)
		if tp.defaults != nil {
			if *tp.defaults {
				b.WriteString("defaults on\n")
			} else {
				b.WriteString("defaults off\n")
			}
		}
		for _, r := range tp.rules {
			fmt.Fprintf(&b, "%s %s\n", r.Match, r.Action)
		}
	}
	return b.String()
}

// policyJSON is the JSON form of a policy.
type policyJSON struct {
	Defaults *bool                  `json:"defaults,omitempty"`
	Rules    []Rule                 `json:"rules,omitempty"`
	Tenants  map[string]*tenantJSON `json:"tenants,omitempty"`
}

type tenantJSON struct {
	Defaults *bool  `json:"defaults,omitempty"`
	Rules    []Rule `json:"rules,omitempty"`
}

// MarshalJSON writes the JSON form ParsePolicy reads.
func (p *Policy) MarshalJSON() ([]byte, error) {
	d := p.defaults
	j := policyJSON{Defaults: &d, Rules: p.rules}
	if len(p.tenants) > 0 {
		j.Tenants = make(map[string]*tenantJSON, len(p.tenants))
		for t, tp := range p.tenants {
			j.Tenants[t] = &tenantJSON{Defaults: tp.defaults, Rules: tp.rules}
		}
	}
	return json.Marshal(j)
}

// ParsePolicy reads a policy in its text or JSON form (JSON when the first
// non-blank character is '{'). The text form has one rule per line,
// "PATTERN ACTION"; "defaults off" (or on) turns the deny-list off for the
// scope; "[tenant NAME]" starts the rules of one tenant; '#' starts a
// comment:
//
//	defaults on
//	password         redact
//	*.password       omit
//	metadata.card.*  hmac
//	email            pii
//
//	[tenant acme]
//	session_count    keep
//
// The JSON form is {"defaults": true, "rules": [{"match": "password",
// "action": "redact"}], "tenants": {"acme": {"rules": [...]}}}.
//
// A malformed rule, an unknown action or tenant is an error matching
// ErrPolicy that names the line (or rule) and the problem.
func ParsePolicy(src string) (*Policy, error) {
	if s := strings.TrimLeftFunc(src, unicode.IsSpace); strings.HasPrefix(s, "{") {
		return parsePolicyJSON([]byte(s))
	}
	return parsePolicyText(src)
}

func policyErr(where, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrPolicy, where, fmt.Sprintf(format, args...))
}

func parsePolicyText(src string) (*Policy, error) {
	if !utf8.ValidString(src) {
		return nil, policyErr("policy", "not valid UTF-8")
	}
	p := &Policy{defaults: true}
	var tp *tenantPolicy // current tenant section; nil: deployment
	sc := bufio.NewScanner(strings.NewReader(src))
	sc.Buffer(nil, 1<<20)
	line := 0
	for sc.Scan() {
		line++
		where := fmt.Sprintf("line %d", line)
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		if strings.HasPrefix(text, "[") {
			if !strings.HasSuffix(text, "]") {
				return nil, policyErr(where, "section %q: want [tenant NAME]", clip(text))
			}
			f := strings.Fields(text[1 : len(text)-1])
			if len(f) != 2 || f[0] != "tenant" {
				return nil, policyErr(where, "section %q: want [tenant NAME]", clip(text))
			}
			if !trail.ValidTenant(f[1]) {
				return nil, policyErr(where, "%q is not a valid tenant", clip(f[1]))
			}
			if p.tenants == nil {
				p.tenants = map[string]*tenantPolicy{}
			}
			if _, dup := p.tenants[f[1]]; dup {
				return nil, policyErr(where, "tenant %q has a second section", f[1])
			}
			tp = &tenantPolicy{}
			p.tenants[f[1]] = tp
			continue
		}
		f := strings.Fields(text)
		if len(f) != 2 {
			return nil, policyErr(where, "%q: want PATTERN ACTION, e.g. \"password redact\"", clip(text))
		}
		if f[0] == "defaults" {
			var on bool
			switch f[1] {
			case "on":
				on = true
			case "off":
			default:
				return nil, policyErr(where, "defaults %q: want on or off", clip(f[1]))
			}
			if tp == nil {
				p.defaults = on
			} else {
				tp.defaults = &on
			}
			continue
		}
		r, err := compileRule(f[0], Action(f[1]))
		if err != nil {
			return nil, policyErr(where, "%v", err)
		}
		if tp == nil {
			p.rules = append(p.rules, r)
		} else {
			tp.rules = append(tp.rules, r)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, policyErr(fmt.Sprintf("line %d", line+1), "%v", err)
	}
	return p, nil
}

func parsePolicyJSON(b []byte) (*Policy, error) {
	var j policyJSON
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&j); err != nil {
		return nil, policyErr("policy", "invalid JSON: %v", err)
	}
	if d.More() {
		return nil, policyErr("policy", "more than one JSON value")
	}
	p := &Policy{defaults: j.Defaults == nil || *j.Defaults}
	var err error
	if p.rules, err = compileRules("rules", j.Rules); err != nil {
		return nil, err
	}
	for t, tj := range j.Tenants {
		if !trail.ValidTenant(t) {
			return nil, policyErr("tenants", "%q is not a valid tenant", clip(t))
		}
		if tj == nil {
			return nil, policyErr("tenants."+t, "null")
		}
		tp := &tenantPolicy{defaults: tj.Defaults}
		if tp.rules, err = compileRules("tenants."+t+".rules", tj.Rules); err != nil {
			return nil, err
		}
		if p.tenants == nil {
			p.tenants = map[string]*tenantPolicy{}
		}
		p.tenants[t] = tp
	}
	return p, nil
}

func compileRules(where string, rules []Rule) ([]Rule, error) {
	out := make([]Rule, 0, len(rules))
	for i, r := range rules {
		c, err := compileRule(r.Match, r.Action)
		if err != nil {
			return nil, policyErr(fmt.Sprintf("%s[%d]", where, i), "%v", err)
		}
		out = append(out, c)
	}
	return out, nil
}

func compileRule(pattern string, a Action) (Rule, error) {
	if !a.Valid() {
		return Rule{}, fmt.Errorf("unknown action %q for %q (want omit, redact, hmac, pii or keep)", clip(string(a)), clip(pattern))
	}
	m, err := compilePattern(pattern)
	if err != nil {
		return Rule{}, err
	}
	return Rule{Match: pattern, Action: a, m: m}, nil
}

// clip shortens user input quoted in an error.
func clip(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "…"
}

// WithoutDefaults returns a copy of p with the deployment's default
// deny-list turned off (`trail --no-default-redaction`). Tenant sections that
// say `defaults on` themselves keep it; the others follow the deployment.
// A nil p is the default policy.
func (p *Policy) WithoutDefaults() *Policy {
	if p == nil {
		p = DefaultPolicy()
	}
	q := *p
	q.defaults = false
	return &q
}

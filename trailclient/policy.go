package trailclient

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/trailhq/trail"
)

// Policy says what Enqueue promises when it returns without error: what a
// caller may rely on if the process, the network or the server fails next.
type Policy string

const (
	// Strict: Enqueue returns once the server has committed the event (or
	// reported it a duplicate), as Record does. A caller that gets an error
	// can refuse its own operation: the event may still arrive later (it
	// stays queued in memory and is re-sent with the same ID), never the
	// other way round.
	Strict Policy = "strict"
	// Durable: Enqueue returns once the event is written and fsynced in the
	// local spool (Config.Spool). It is sent in the background, retried
	// until delivered, and survives a crash or SIGKILL of the process and a
	// restart of the server: the next client opened on the same directory
	// sends it. ErrSpoolFull when the spool is at Config.SpoolBytes.
	Durable Policy = "durable"
	// BestEffort: Enqueue returns once the event is in memory. It is
	// retried like the others, but lost if the process ends first; when the
	// memory queue (Config.QueueSize) is full it is dropped and counted
	// (Stats.Dropped), never blocking the caller.
	BestEffort Policy = "best-effort"
)

func (p Policy) valid() bool { return p == Strict || p == Durable || p == BestEffort }

// ParsePolicy reads "strict", "durable" or "best-effort".
func ParsePolicy(s string) (Policy, error) {
	p := Policy(strings.TrimSpace(s))
	if !p.valid() {
		return "", fmt.Errorf("trailclient: policy %q: want strict, durable or best-effort", s)
	}
	return p, nil
}

// policies picks the policy of an action: an exact entry first, else the
// longest matching pattern (trail.MatchActionPattern: * matches any run),
// else the default.
type policies struct {
	def   Policy
	exact map[string]Policy
	globs []policyGlob // longest first
}

type policyGlob struct {
	pattern string
	p       Policy
}

func newPolicies(def Policy, m map[string]Policy) (policies, error) {
	ps := policies{def: def, exact: map[string]Policy{}}
	for pat, p := range m {
		if !p.valid() {
			return ps, fmt.Errorf("trailclient: Config.Policies[%q]: policy %q: want strict, durable or best-effort", pat, p)
		}
		if strings.ContainsAny(pat, ",!") {
			return ps, fmt.Errorf("trailclient: Config.Policies[%q]: one action or pattern per entry", pat)
		}
		if _, err := trail.ParseActionFilter(pat); err != nil {
			return ps, fmt.Errorf("trailclient: Config.Policies[%q]: %w", pat, err)
		}
		if strings.Contains(pat, "*") {
			ps.globs = append(ps.globs, policyGlob{pat, p})
		} else {
			ps.exact[pat] = p
		}
	}
	// Longest pattern first; equal lengths in a fixed order.
	slices.SortFunc(ps.globs, func(a, b policyGlob) int {
		return cmp.Or(cmp.Compare(len(b.pattern), len(a.pattern)), strings.Compare(a.pattern, b.pattern))
	})
	return ps, nil
}

func (ps policies) of(action string) Policy {
	if p, ok := ps.exact[action]; ok {
		return p
	}
	for _, g := range ps.globs {
		if trail.MatchActionPattern(g.pattern, action) {
			return g.p
		}
	}
	return ps.def
}

// uses reports whether any action may get policy p.
func (ps policies) uses(p Policy) bool {
	if ps.def == p {
		return true
	}
	for _, q := range ps.exact {
		if q == p {
			return true
		}
	}
	for _, g := range ps.globs {
		if g.p == p {
			return true
		}
	}
	return false
}

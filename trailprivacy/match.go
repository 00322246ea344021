package trailprivacy

import (
	"github.com/trailhq/trail/internal/denylist"

	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// matcher decides whether a rule matches the node at path segs (the last
// segment is the node's own name).
type matcher interface {
	match(segs []string) bool
}

func splitPath(path string) []string { return strings.Split(path, ".") }

// compilePattern turns a rule's pattern into a matcher:
//   - no dot and no '*': a name, matched by words against the last segment
//     (at any depth, since every prefix of a path is checked);
//   - no dot with '*': a glob on the last segment, at any depth;
//   - dots: a glob anchored on the whole path.
func compilePattern(p string) (matcher, error) {
	switch {
	case p == "":
		return nil, errors.New("empty pattern")
	case len(p) > MaxPatternLen:
		return nil, fmt.Errorf("pattern %q longer than %d bytes", clip(p), MaxPatternLen)
	case !utf8.ValidString(p):
		return nil, fmt.Errorf("pattern %q is not valid UTF-8", clip(p))
	case strings.ContainsFunc(p, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return nil, fmt.Errorf("pattern %q contains white space or control characters", clip(p))
	}
	segs := splitPath(p)
	for _, s := range segs {
		if s == "" {
			return nil, fmt.Errorf("pattern %q has an empty path segment", clip(p))
		}
		if strings.Contains(s, "**") && s != "**" {
			return nil, fmt.Errorf("pattern %q: ** must be a whole segment", clip(p))
		}
	}
	if len(segs) == 1 {
		if !strings.Contains(p, "*") {
			n := denylist.NameOf(p)
			if n == "" {
				return nil, fmt.Errorf("pattern %q has no letters or digits", clip(p))
			}
			return nameMatcher(n), nil
		}
		if p == "**" {
			return nil, fmt.Errorf("pattern %q would match everything; write * or a path", p)
		}
		return lastSegMatcher{compileSeg(p)}, nil
	}
	g := make(pathMatcher, len(segs))
	for i, s := range segs {
		g[i] = compileSeg(s)
	}
	return g, nil
}

// segGlob matches one path segment, case-insensitively.
type segGlob struct {
	any   bool     // "**": any number of segments
	lit   string   // no '*': the literal
	parts []string // with '*': the lower-cased pieces between stars
}

func compileSeg(s string) segGlob {
	if s == "**" {
		return segGlob{any: true}
	}
	if !strings.Contains(s, "*") {
		return segGlob{lit: s}
	}
	return segGlob{parts: strings.Split(strings.ToLower(s), "*")}
}

func (g *segGlob) matchSeg(s string) bool {
	if g.parts == nil {
		return strings.EqualFold(g.lit, s)
	}
	s = strings.ToLower(s)
	first, last := g.parts[0], g.parts[len(g.parts)-1]
	if !strings.HasPrefix(s, first) {
		return false
	}
	s = s[len(first):]
	for _, mid := range g.parts[1 : len(g.parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return strings.HasSuffix(s, last)
}

type lastSegMatcher struct{ g segGlob }

func (m lastSegMatcher) match(segs []string) bool { return m.g.matchSeg(segs[len(segs)-1]) }

type pathMatcher []segGlob

func (m pathMatcher) match(segs []string) bool { return matchGlob(m, segs) }

func matchGlob(pat []segGlob, segs []string) bool {
	for len(pat) > 0 {
		if pat[0].any {
			for i := 0; i <= len(segs); i++ {
				if matchGlob(pat[1:], segs[i:]) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 || !pat[0].matchSeg(segs[0]) {
			return false
		}
		pat, segs = pat[1:], segs[1:]
	}
	return len(segs) == 0
}

// nameMatcher matches a name by words against the last segment.
type nameMatcher denylist.Name

func (m nameMatcher) match(segs []string) bool { return denylist.Name(m).Match(segs[len(segs)-1]) }

package trailprivacy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
			w := lowerWords(p)
			if len(w) == 0 {
				return nil, fmt.Errorf("pattern %q has no letters or digits", clip(p))
			}
			return nameMatcher(strings.Join(w, "")), nil
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

// nameMatcher is a name's lower-cased words joined; it matches a segment
// whose consecutive words spell it.
type nameMatcher string

func (m nameMatcher) match(segs []string) bool {
	seg := segs[len(segs)-1]
	if !mayContain(seg, string(m)) {
		return false
	}
	var buf [16]span
	return containsWords(seg, wordSpans(seg, buf[:0]), string(m))
}

// mayContain is a quick filter for containsWords: for an ASCII segment, the
// name can only be spelled by its words if it occurs in the segment's
// letters and digits, lower-cased, with everything else removed.
func mayContain(seg, name string) bool {
	var buf [64]byte
	if len(seg) > len(buf) {
		return true
	}
	n := 0
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case c >= 0x80:
			return true // non-ASCII: let the full match decide
		case 'A' <= c && c <= 'Z':
			buf[n] = c + 'a' - 'A'
			n++
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			buf[n] = c
			n++
		}
	}
	return strings.Contains(string(buf[:n]), name)
}

// span is a word of a segment: s[start:end].
type span struct{ start, end int }

// wordSpans splits s into words: runs of letters and digits, also split
// where a lower-case letter is followed by an upper-case one ("userPassword")
// and before the last capital of a run followed by a lower-case letter
// ("APIKey" is API, Key).
func wordSpans(s string, out []span) []span {
	start := -1
	var prev, prev2 rune
	for i, r := range s {
		word := unicode.IsLetter(r) || unicode.IsDigit(r)
		switch {
		case !word:
			if start >= 0 {
				out = append(out, span{start, i})
				start = -1
			}
		case start < 0:
			start = i
		case unicode.IsUpper(r) && unicode.IsLower(prev):
			out = append(out, span{start, i})
			start = i
		case unicode.IsLower(r) && unicode.IsUpper(prev) && unicode.IsUpper(prev2):
			// "APIKey": the K starts the new word.
			j := i - utf8.RuneLen(prev)
			if j > start {
				out = append(out, span{start, j})
				start = j
			}
		}
		prev2, prev = prev, r
		if !word {
			prev2, prev = 0, 0
		}
	}
	if start >= 0 {
		out = append(out, span{start, len(s)})
	}
	return out
}

func lowerWords(s string) []string {
	spans := wordSpans(s, nil)
	w := make([]string, len(spans))
	for i, sp := range spans {
		w[i] = strings.ToLower(s[sp.start:sp.end])
	}
	return w
}

// containsWords reports whether a run of consecutive words of s (its spans)
// spells target, the concatenation of a name's lower-cased words, ignoring
// case: "password" is found in "user_password", "newPassword" and
// "PassWord"; "apikey" (from api_key or apikey) in "X-Api-Key" and "APIKEY".
func containsWords(s string, spans []span, target string) bool {
	for i := range spans {
		pos := 0
		for _, sp := range spans[i:] {
			w := s[sp.start:sp.end]
			if len(w) > len(target)-pos || !strings.EqualFold(target[pos:pos+len(w)], w) {
				break
			}
			pos += len(w)
			if pos == len(target) {
				return true
			}
		}
	}
	return false
}

// denyWords is the deny-list split into words, built once.
var denyWords = func() []string {
	out := make([]string, 0, len(defaultDenyList))
	for _, d := range defaultDenyList {
		w := strings.Join(lowerWords(d), "")
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}()

// denyCache remembers denyMatch for the segment names seen most: field and
// metadata names repeat from event to event. It stops growing at
// denyCacheMax entries, so hostile input cannot make it grow without bound.
var (
	denyCache  sync.Map // string -> bool
	denyCached atomic.Int64
)

const denyCacheMax = 1 << 14

// denyMatch reports whether the segment seg hits the default deny-list.
func denyMatch(seg string) bool {
	if v, ok := denyCache.Load(seg); ok {
		return v.(bool)
	}
	hit := denyMatchSlow(seg)
	if denyCached.Load() < denyCacheMax && len(seg) <= 64 {
		if _, loaded := denyCache.LoadOrStore(strings.Clone(seg), hit); !loaded {
			denyCached.Add(1)
		}
	}
	return hit
}

func denyMatchSlow(seg string) bool {
	var buf [16]span
	spans := wordSpans(seg, buf[:0])
	for _, w := range denyWords {
		if containsWords(seg, spans, w) {
			return true
		}
	}
	return false
}

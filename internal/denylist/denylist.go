// Package denylist is the default deny-list of sensitive names (password,
// token, api_key, card, …) and the word matching that decides whether a
// field name hits it. The root package's built-in redaction, trailprivacy's
// policies and trigger capture share it, so that a name redacted on one write
// path is redacted on every other.
package denylist

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
)

// Names returns the built-in list of sensitive names.
func Names() []string { return slices.Clone(names) }

var names = []string{
	"password", "passwd", "pwd", "passphrase",
	"secret", "token",
	"api_key", "apikey", "access_key", "private_key",
	"authorization", "cookie", "session",
	"credential", "credentials",
	"card", "card_number", "cardnumber", "pan", "cvv", "cvc",
	"ssn", "iban",
}

// Words returns the lower-cased words of each name joined ("api_key" is
// "apikey"), without repeats: the strings Match looks for.
func Words() []string { return slices.Clone(denyWords) }

// Name is a name's lower-cased words joined: it matches a segment whose
// consecutive words spell it.
type Name string

// NameOf returns the Name of s, or "" when s has no letters or digits.
func NameOf(s string) Name { return Name(strings.Join(LowerWords(s), "")) }

// Match reports whether the segment seg spells n with consecutive words.
func (n Name) Match(seg string) bool {
	if !mayContain(seg, string(n)) {
		return false
	}
	var buf [16]span
	return containsWords(seg, wordSpans(seg, buf[:0]), string(n))
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

// LowerWords splits s into its lower-cased words.
func LowerWords(s string) []string {
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
	out := make([]string, 0, len(names))
	for _, d := range names {
		w := strings.Join(LowerWords(d), "")
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

// Match reports whether the segment seg (a field or key name, not a dotted
// path) hits the deny-list.
func Match(seg string) bool {
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

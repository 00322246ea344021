package trailcli

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trailhq/trail"
)

// refTypeRE matches the type of a type:id reference: the rule trail uses for
// target types (actor types are a subset).
var refTypeRE = regexp.MustCompile(`^[a-z][a-z0-9_.-]*$`)

const maxRefTypeLen = 64

// ParseRef parses an object reference written "type:id", e.g. "user:42" or
// "subscription:sub_acme". The ID is everything after the first colon, so
// IDs may contain colons ("order:2026:17"). A bare "type" without a colon
// returns an empty id; "type:" with nothing after the colon is an error.
func ParseRef(s string) (typ, id string, err error) {
	if s == "" {
		return "", "", errors.New("empty; write type:id, e.g. user:42")
	}
	if !utf8.ValidString(s) {
		return "", "", errors.New("not valid UTF-8")
	}
	typ, id, hasColon := strings.Cut(s, ":")
	if len(typ) > maxRefTypeLen || !refTypeRE.MatchString(typ) {
		return "", "", fmt.Errorf("%q: type must be a lower-case word (user, subscription…); write type:id, e.g. user:42", clip(s))
	}
	if hasColon && id == "" {
		return "", "", fmt.Errorf("%q: the id after the colon is empty; write type:id, e.g. user:42", clip(s))
	}
	if len(id) > trail.MaxIDLen {
		return "", "", fmt.Errorf("id is %d bytes, at most %d", len(id), trail.MaxIDLen)
	}
	if strings.ContainsFunc(id, isControl) {
		return "", "", fmt.Errorf("%q: id contains control characters", clip(s))
	}
	return typ, id, nil
}

// ParseActor parses an actor reference "type:id" (or a bare type, e.g.
// "system") whose type is one of trail's actor types.
func ParseActor(s string) (trail.ActorType, string, error) {
	typ, id, err := ParseRef(s)
	if err != nil {
		return "", "", err
	}
	t := trail.ActorType(typ)
	if !t.Valid() {
		return "", "", fmt.Errorf("%q: actor type must be user, service, system or anonymous", clip(s))
	}
	return t, id, nil
}

// ParseTarget parses a target reference "type:id"; both parts are required.
func ParseTarget(s string) (typ, id string, err error) {
	typ, id, err = ParseRef(s)
	if err == nil && id == "" {
		err = fmt.Errorf("%q: missing id; write type:id, e.g. subscription:sub_acme", clip(s))
	}
	return typ, id, err
}

// durationRE matches relative times: one or more <number><unit> groups with
// units s, m, h, d (24 h) and w (7 d), e.g. "30d", "1d12h", "90m".
var durationRE = regexp.MustCompile(`^([0-9]{1,9}[smhdw])+$`)

var durationPartRE = regexp.MustCompile(`([0-9]+)([smhdw])`)

// maxAgo bounds relative times: beyond it, the result would predate 1970 or
// overflow time.Duration.
const maxAgo = 100 * 365 * 24 * time.Hour

var unitDur = map[string]time.Duration{
	"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour,
}

// ParseAgo parses a relative duration such as "30d", "12h" or "1w2d".
func ParseAgo(s string) (time.Duration, error) {
	if !durationRE.MatchString(s) {
		return 0, fmt.Errorf("%q is not a duration such as 30d, 12h, 90m or 2w", clip(s))
	}
	var total time.Duration
	for _, m := range durationPartRE.FindAllStringSubmatch(s, -1) {
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q: %w", clip(s), err)
		}
		u := unitDur[m[2]]
		if n > int64(maxAgo/u) {
			return 0, fmt.Errorf("%q is longer than 100 years", clip(s))
		}
		total += time.Duration(n) * u
		if total > maxAgo {
			return 0, fmt.Errorf("%q is longer than 100 years", clip(s))
		}
	}
	return total, nil
}

// Layouts ParseTime accepts for absolute times without a zone; they are read
// in the caller's location.
var localLayouts = []string{
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04",
	"2006-01-02 15:04",
	"2006-01-02",
}

// ParseTime parses the times the CLI's --since, --until and --occurred-at
// take: "now"; a duration ago ("30d", "12h", see ParseAgo); an RFC 3339 time
// ("2026-01-02T15:04:05Z", "…+02:00"); or a date or date-time without a zone
// ("2026-01-02", "2026-01-02 15:04"), read in loc (the local zone for people
// at a terminal).
func ParseTime(s string, now time.Time, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.Local
	}
	switch {
	case s == "":
		return time.Time{}, errors.New("empty; give a duration (30d, 12h) or a time (RFC 3339, 2026-01-02)")
	case s == "now":
		return now, nil
	case s[0] >= '0' && s[0] <= '9' && durationRE.MatchString(s):
		d, err := ParseAgo(s)
		if err != nil {
			return time.Time{}, err
		}
		return now.Add(-d), nil
	}
	var t time.Time
	var err error
	if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
		ok := false
		for _, layout := range localLayouts {
			if t, err = time.ParseInLocation(layout, s, loc); err == nil {
				ok = true
				break
			}
		}
		if !ok {
			return time.Time{}, fmt.Errorf("%q is not a duration (30d, 12h) or a time (RFC 3339 such as 2026-01-02T15:04:05Z, or 2026-01-02)", clip(s))
		}
	}
	if y := t.UTC().Year(); y < 1970 || y > 9999 {
		return time.Time{}, fmt.Errorf("%q: year %d out of range 1970-9999", clip(s), y)
	}
	return t, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// clip shortens and sanitizes a bad value for a one-line error message.
func clip(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if isControl(r) {
			return '\uFFFD'
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) <= 64 {
		return s
	}
	return string([]rune(s)[:64]) + "…"
}

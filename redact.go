package trail

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/trailhq/trail/internal/denylist"
)

// Redacted is the stored form of a value withheld by redaction: a metadata
// value, or a key inside a change's value. A redacted change keeps its field
// and sets Change.Redacted instead.
const Redacted = "[redacted]"

// DefaultDenyList returns the names the default redaction withholds
// (password, token, secret, api_key, cookie, card numbers, …). A name matches
// a field or metadata key that contains its words, case-insensitively, with
// the usual separators and camelCase: "password" matches "password_hash" and
// "newPassword"; "api_key" matches "X-Api-Key". Package trailprivacy and
// trigger capture apply the same list.
func DefaultDenyList() []string { return denylist.Names() }

// RedactSecrets applies the default deny-list to ev in place: a change whose
// field path has a deny-listed segment keeps its field with Redacted set and
// no values; keys inside change values and metadata (at any depth) that are
// deny-listed have their values replaced by "[redacted]". ev must be
// normalized. It is what a Client without a Transform does to every event
// (unless Config.NoDefaultRedaction), so that a secret never reaches the
// store by default; trailprivacy applies the same list within its policies.
func RedactSecrets(ev *Event) error {
	var changes []Change
	for i, c := range ev.Changes {
		nc, changed, err := redactChange(c)
		if err != nil {
			return invalid("changes["+c.Field+"]", "%v", err)
		}
		if !changed {
			continue
		}
		if changes == nil {
			// Never modify the caller's array.
			changes = make([]Change, len(ev.Changes))
			copy(changes, ev.Changes)
		}
		changes[i] = nc
	}
	if changes != nil {
		ev.Changes = changes
	}
	if ev.Metadata != nil {
		ev.Metadata = redactMap(ev.Metadata)
	}
	return nil
}

func redactChange(c Change) (Change, bool, error) {
	if c.Redacted {
		return c, false, nil
	}
	for seg := range strings.SplitSeq(c.Field, ".") {
		if denylist.Match(seg) {
			return Change{Field: c.Field, Redacted: true}, true, nil
		}
	}
	changed := false
	for _, v := range []*json.RawMessage{&c.Old, &c.New} {
		nv, ok, err := redactRaw(*v)
		if err != nil {
			return c, false, err
		}
		if ok {
			*v, changed = nv, true
		}
	}
	return c, changed, nil
}

// redactRaw redacts deny-listed keys inside a JSON object or array value.
// Values that cannot hold a deny-listed key are returned untouched without
// being parsed.
func redactRaw(raw json.RawMessage) (json.RawMessage, bool, error) {
	if len(raw) == 0 || (raw[0] != '{' && raw[0] != '[') || !mayHoldDenied(raw) {
		return raw, false, nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return raw, false, err
	}
	nv, changed := redactAny(v)
	if !changed {
		return raw, false, nil
	}
	b, err := json.Marshal(nv)
	if err != nil {
		return raw, false, err
	}
	b, err = CanonicalJSON(b)
	return b, err == nil, err
}

// mayHoldDenied is a quick filter: a deny-listed key spells one of the
// deny-list's words in its letters, so raw JSON whose lower-cased letters
// contain none of them holds no such key.
func mayHoldDenied(raw []byte) bool {
	lower := bytes.ToLower(raw)
	for _, w := range denyWords {
		if bytes.Contains(lower, []byte(w)) {
			return true
		}
	}
	// Keys with separators or escapes between the words ("api-key",
	// "pass\u0077ord") spell them only without those: check that form too.
	var letters []byte
	for _, c := range lower {
		if 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c >= 0x80 || c == '\\' {
			letters = append(letters, c)
		}
	}
	for _, w := range denyWords {
		if bytes.Contains(letters, []byte(w)) {
			return true
		}
	}
	return bytes.Contains(lower, []byte(`\u`))
}

var denyWords = denylist.Words()

func redactAny(v any) (any, bool) {
	switch x := v.(type) {
	case map[string]any:
		return redactMapChanged(x)
	case []any:
		var out []any
		for i, e := range x {
			ne, ok := redactAny(e)
			if !ok {
				continue
			}
			if out == nil {
				out = make([]any, len(x))
				copy(out, x)
			}
			out[i] = ne
		}
		if out == nil {
			return x, false
		}
		return out, true
	}
	return v, false
}

func redactMap(m map[string]any) map[string]any {
	nm, _ := redactMapChanged(m)
	return nm
}

func redactMapChanged(m map[string]any) (map[string]any, bool) {
	var out map[string]any
	set := func(k string, v any) {
		if out == nil {
			out = make(map[string]any, len(m))
			for k2, v2 := range m {
				out[k2] = v2
			}
		}
		out[k] = v
	}
	for k, v := range m {
		if denylist.Match(k) {
			if s, ok := v.(string); ok && s == Redacted {
				continue
			}
			set(k, Redacted)
			continue
		}
		if nv, ok := redactAny(v); ok {
			set(k, nv)
		}
	}
	if out == nil {
		return m, false
	}
	return out, true
}

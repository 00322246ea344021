package trailprivacy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/trailhq/trail"
)

// Reveal turns a stored event back into a readable one, in place: it
// decrypts every enc:v1 value whose key is live, and writes "[erased]" for
// those whose subject was forgotten. hmac:v1 values and "[redacted]" stay as
// they are: they cannot be reversed. A value that does not authenticate
// (edited, or moved from another field, event or subject) is left as stored
// and reported: the error matches ErrTampered and names the fields, and the
// rest of the event is still revealed. Other errors (the key store is
// unreachable) are returned as they are.
//
// Reveal gives ev its own Changes, OnBehalfOf and Metadata: the stored
// event it was copied from is not modified.
func (p *Privacy) Reveal(ctx context.Context, ev *trail.Event) error {
	t := &walker{p: p, ctx: ctx, ev: ev, reveal: true}
	if err := t.personal(); err != nil {
		return err
	}
	if len(ev.Changes) > 0 {
		changes := make([]trail.Change, len(ev.Changes))
		copy(changes, ev.Changes)
		for i := range changes {
			c := &changes[i]
			for _, sv := range sides(c) {
				nv, err := t.revealRaw(*sv.v, c.Field, sv.name)
				if err != nil {
					return err
				}
				*sv.v = nv
			}
		}
		ev.Changes = changes
	}
	if len(ev.Metadata) > 0 {
		t.aadPrefix, t.base = nil, 0
		ev.Metadata = cloneJSON(ev.Metadata).(map[string]any)
		if err := t.walkMap(ev.Metadata, []string{"metadata"}, ActionKeep); err != nil {
			return err
		}
	}
	if len(t.bad) > 0 {
		return fmt.Errorf("%w: %s", ErrTampered, strings.Join(t.bad, ", "))
	}
	return nil
}

// revealRaw reveals one side of a change.
func (t *walker) revealRaw(raw json.RawMessage, field, side string) (json.RawMessage, error) {
	if len(raw) == 0 {
		return raw, nil
	}
	path := []string{"changes", field, side}
	switch raw[0] {
	case '"':
		if !bytes.HasPrefix(raw, []byte(`"`+EncPrefix)) {
			return raw, nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return raw, nil
		}
		subject, err := t.dataSubject()
		if err != nil {
			return nil, err
		}
		pt, erased, ok, err := t.open(s, subject, path, "changes["+field+"]."+side)
		switch {
		case err != nil:
			return nil, err
		case erased:
			return jsonString(Erased), nil
		case ok:
			return pt, nil
		}
		return raw, nil
	case '{', '[':
		return t.walkRaw(raw, splitPath(field), path)
	}
	return raw, nil
}

// revealAny reveals a metadata value or a value inside a change.
func (t *walker) revealAny(v any, segs []string) (any, error) {
	switch x := v.(type) {
	case string:
		if !strings.HasPrefix(x, EncPrefix) {
			return v, nil
		}
		subject, err := t.dataSubject()
		if err != nil {
			return nil, err
		}
		path := t.aadPath(segs)
		pt, erased, ok, err := t.open(x, subject, path, strings.Join(path, "."))
		switch {
		case err != nil:
			return nil, err
		case erased:
			return Erased, nil
		case ok:
			d := json.NewDecoder(bytes.NewReader(pt))
			d.UseNumber()
			var out any
			if err := d.Decode(&out); err != nil {
				t.bad = append(t.bad, strings.Join(path, "."))
				return v, nil
			}
			return out, nil
		}
		return v, nil
	case map[string]any:
		return v, t.walkMap(x, segs, ActionKeep)
	case []any:
		return v, t.walkArray(x, segs, ActionKeep)
	}
	return v, nil
}

// open decrypts an enc:v1 value of subject stored at path. ok is false (and
// the field recorded as bad) when the value is malformed or does not
// authenticate; erased is true when the subject's key was destroyed. A
// string that is not an enc:v1 value is returned as it is, with ok.
func (t *walker) open(s, subject string, path []string, fieldName string) (pt []byte, erased, ok bool, err error) {
	if !strings.HasPrefix(s, EncPrefix) {
		return []byte(s), false, true, nil
	}
	if t.p.plaintext {
		return nil, false, false, fmt.Errorf("%w: %s is encrypted and this privacy layer is Plaintext (no keys)", ErrNoMasterKey, fieldName)
	}
	st, perr := ParseStored(s)
	if perr != nil {
		t.bad = append(t.bad, fieldName)
		return nil, false, false, nil
	}
	k, erased, err := t.p.keyForValue(t.ctx, t.ev.Tenant, subject, st.KeyID)
	switch {
	case err == ErrTampered:
		t.bad = append(t.bad, fieldName)
		return nil, false, false, nil
	case err != nil:
		return nil, false, false, err
	case erased:
		return nil, true, false, nil
	}
	pt, oerr := k.aead.Open(nil, st.Data[:nonceLen], st.Data[nonceLen:], valueAAD(t.ev.Tenant, subject, st.KeyID, path))
	if oerr != nil {
		t.bad = append(t.bad, fieldName)
		return nil, false, false, nil
	}
	return pt, false, true, nil
}

// cloneJSON deep-copies a decoded JSON value.
func cloneJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = cloneJSON(e)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = cloneJSON(e)
		}
		return a
	}
	return v
}

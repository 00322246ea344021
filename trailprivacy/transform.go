package trailprivacy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/trailhq/trail"
)

// maxIPLen is the plaintext limit trail.Validate puts on actor.ip.
const maxIPLen = 64

// Transform puts ev in its stored form: it applies the policy (omit, redact,
// hmac, pii) to the changes and the metadata, then encrypts the personal
// fields — the actor's (and on_behalf_of's) name, email, IP and user agent
// under the actor's key, the target's name under the target's key. It is the
// trail.Transformer of a Client (Config.Transform) and of the server's
// ingest.
//
// A value already in a stored form (hmac:v1, enc:v1, "[redacted]") is left
// as it is, so that transforming twice — in a library, then at ingest — is
// the same as once. Encryption uses random nonces: the result is not the
// same bytes twice, so it must be computed once, before the event is stored
// and hashed, and the store must keep it as given.
//
// ev must be normalized (trail.Event.Normalize: the Client does it first),
// so that change values are canonical JSON. Transform never modifies the
// caller's Changes array or OnBehalfOf actor; it may modify the maps of
// ev.Metadata in place (Normalize gives the event its own).
func (p *Privacy) Transform(ctx context.Context, ev *trail.Event) error {
	if ev.Tenant != "" && !trail.ValidTenant(ev.Tenant) {
		return &trail.ValidationError{Field: "tenant", Reason: "not a valid tenant"}
	}
	t := &walker{p: p, ctx: ctx, ev: ev, tp: p.policy.tenants[ev.Tenant]}
	t.keys = t.keyBuf[:0]
	if len(ev.Changes) > 0 {
		if err := t.changes(); err != nil {
			return err
		}
	}
	if len(ev.Metadata) > 0 {
		t.aadPrefix, t.base = nil, 0
		if err := t.walkMap(ev.Metadata, []string{"metadata"}, ActionKeep); err != nil {
			return err
		}
	}
	if p.plaintext {
		return nil
	}
	t.lookup()
	return t.personal()
}

// lookup sets the pseudonyms of the actor's name and e-mail that search
// matches (trail.Lookup), before they are encrypted. A field already in a
// stored form keeps the digest it was given (if any): its plaintext is gone.
func (t *walker) lookup() {
	ev := t.ev
	if ev.Actor.Name != "" && !protectedString(ev.Actor.Name) {
		ev.Lookup.ActorName = t.p.Digest(ev.Tenant, ev.Actor.Name)
	}
	if ev.Actor.Email != "" && !protectedString(ev.Actor.Email) {
		ev.Lookup.ActorEmail = t.p.Digest(ev.Tenant, ev.Actor.Email)
	}
}

// walker carries the state of one Transform or Reveal.
type walker struct {
	p      *Privacy
	ctx    context.Context
	ev     *trail.Event
	tp     *tenantPolicy
	reveal bool
	bad    []string     // Reveal: fields that did not authenticate
	keys   []subjectKey // Transform: the event's subjects' keys
	keyBuf [3]subjectKey

	// The AAD path of a value is aadPrefix followed by segs[base:].
	aadPrefix []string
	base      int
}

func (t *walker) aadPath(segs []string) []string {
	if t.aadPrefix == nil {
		return segs
	}
	return append(slices.Clip(t.aadPrefix), segs[t.base:]...)
}

// dataSubject is the subject of pii changes and metadata: the target, or the
// actor when the event has no target.
func (t *walker) dataSubject() (string, error) {
	if !t.ev.Target.IsZero() {
		return t.ev.Target.String(), nil
	}
	if s := t.ev.Actor.String(); s != "" {
		return s, nil
	}
	return "", &trail.ValidationError{Field: "actor.type", Reason: "required"}
}

func protectedString(s string) bool { return s == Redacted || IsStored(s) }

// protectedRaw reports whether a change value needs nothing more: absent,
// null, or a string already in a stored form.
func protectedRaw(raw json.RawMessage) bool {
	if raw == nil || string(raw) == "null" {
		return true
	}
	if !bytes.HasPrefix(raw, []byte(`"`+EncPrefix)) && !bytes.HasPrefix(raw, []byte(`"`+HMACPrefix)) &&
		string(raw) != `"`+Redacted+`"` {
		return false
	}
	var s string
	return json.Unmarshal(raw, &s) == nil && protectedString(s)
}

// fieldAction walks the policy down a change's field path.
func (t *walker) fieldAction(segs []string) Action {
	act := ActionKeep
	for i := 1; i <= len(segs); i++ {
		a, whole := t.p.policy.step(t.tp, segs[:i], act)
		act = a
		if whole {
			break
		}
	}
	return act
}

func (t *walker) changes() error {
	ev := t.ev
	out := make([]trail.Change, 0, len(ev.Changes))
	for i, c := range ev.Changes {
		segs := splitPath(c.Field)
		act := t.fieldAction(segs)
		if c.Protect != "" {
			// A struct tag's marker (trail.Diff): applied unless the policy
			// keeps even less (omit, redact).
			mark := Action(c.Protect)
			if mark != ActionHMAC && mark != ActionPII {
				return &trail.ValidationError{Field: fmt.Sprintf("changes[%d].protect", i), Reason: fmt.Sprintf("%q must be hmac or pii", clip(c.Protect))}
			}
			if act != ActionOmit && act != ActionRedact {
				act = mark
			}
			c.Protect = ""
		}
		switch act {
		case ActionOmit:
			continue
		case ActionRedact:
			if !c.Redacted && !(protectedRaw(c.Old) && protectedRaw(c.New)) {
				c = trail.Change{Field: c.Field, Redacted: true}
			}
		case ActionHMAC, ActionPII:
			for _, sv := range sides(&c) {
				side, v := sv.name, sv.v
				if protectedRaw(*v) {
					continue
				}
				s, err := t.protectRaw(act, *v, []string{"changes", c.Field, side})
				if err != nil {
					return fmt.Errorf("changes %q: %w", c.Field, err)
				}
				*v = jsonString(s)
			}
		case ActionKeep:
			for _, sv := range sides(&c) {
				side, v := sv.name, sv.v
				if len(*v) == 0 || ((*v)[0] != '{' && (*v)[0] != '[') {
					continue
				}
				nv, err := t.walkRaw(*v, segs, []string{"changes", c.Field, side})
				if err != nil {
					return fmt.Errorf("changes %q: %w", c.Field, err)
				}
				*v = nv
			}
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		out = nil
	}
	ev.Changes = out
	return nil
}

// walkRaw applies the policy (or Reveal) inside a change's object or array
// value.
func (t *walker) walkRaw(raw json.RawMessage, segs, aadPrefix []string) (json.RawMessage, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	t.aadPrefix, t.base = aadPrefix, len(segs)
	if err := t.walkChild(v, slices.Clip(segs), ActionKeep); err != nil {
		return nil, err
	}
	return canonical(v)
}

func isContainer(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return true
	}
	return false
}

// walkMap applies the policy to the members of m, at path segs, below a
// node that decided inherited (see Policy.step). In Reveal it decrypts.
func (t *walker) walkMap(m map[string]any, segs []string, inherited Action) error {
	for k, v := range m {
		s := append(segs, k)
		if t.reveal {
			nv, err := t.revealAny(v, s)
			if err != nil {
				return err
			}
			m[k] = nv
			continue
		}
		act, whole := t.p.policy.step(t.tp, s, inherited)
		if act == ActionKeep || (!whole && isContainer(v)) {
			if err := t.walkChild(v, s, act); err != nil {
				return err
			}
			continue
		}
		nv, del, err := t.apply(act, v, s)
		if err != nil {
			return err
		}
		if del {
			delete(m, k)
		} else {
			m[k] = nv
		}
	}
	return nil
}

func (t *walker) walkChild(v any, segs []string, inherited Action) error {
	switch x := v.(type) {
	case map[string]any:
		return t.walkMap(x, segs, inherited)
	case []any:
		return t.walkArray(x, segs, inherited)
	}
	return nil
}

// walkArray walks the elements of an array: they share the array's path.
func (t *walker) walkArray(a []any, segs []string, inherited Action) error {
	for i, v := range a {
		if t.reveal {
			nv, err := t.revealAny(v, segs)
			if err != nil {
				return err
			}
			a[i] = nv
			continue
		}
		if inherited == ActionKeep || isContainer(v) {
			if err := t.walkChild(v, segs, inherited); err != nil {
				return err
			}
			continue
		}
		nv, del, err := t.apply(inherited, v, segs)
		if err != nil {
			return err
		}
		if del {
			nv = Redacted // an array keeps its length
		}
		a[i] = nv
	}
	return nil
}

// apply returns what act makes of the metadata value v at segs; del means
// remove it.
func (t *walker) apply(act Action, v any, segs []string) (nv any, del bool, err error) {
	str, isStr := v.(string)
	switch act {
	case ActionOmit:
		return nil, true, nil
	case ActionRedact:
		if isStr && protectedString(str) {
			return v, false, nil
		}
		return Redacted, false, nil
	case ActionHMAC, ActionPII:
		if v == nil || isStr && protectedString(str) {
			return v, false, nil
		}
		b, err := canonical(v)
		if err != nil {
			return nil, false, err
		}
		out, err := t.protectRaw(act, b, t.aadPath(segs))
		return out, false, err
	}
	return v, false, nil
}

// protectRaw returns the stored form of one canonical JSON value (the
// values of a normalized event are) under an hmac or pii action. A JSON
// string is hashed as its text (so HashFor finds it); any other value as its
// canonical JSON. pii encrypts the canonical JSON, so that Reveal gives back
// the value with its type.
func (t *walker) protectRaw(act Action, raw []byte, path []string) (string, error) {
	if t.p.plaintext {
		return "", fmt.Errorf("%w: %s needs a master key (this privacy layer is Plaintext)", ErrNoMasterKey, act)
	}
	if act == ActionHMAC {
		if len(raw) > 0 && raw[0] == '"' {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return "", err
			}
			return t.p.HashFor(t.ev.Tenant, s), nil
		}
		return t.p.hashBytes(t.ev.Tenant, raw), nil
	}
	subject, err := t.dataSubject()
	if err != nil {
		return "", err
	}
	return t.encrypt(subject, raw, path)
}

func (t *walker) encrypt(subject string, plaintext []byte, path []string) (string, error) {
	k, err := t.key(subject)
	if err != nil {
		return "", err
	}
	return sealValue(k, t.ev.Tenant, subject, plaintext, path)
}

// key returns the subject's live data key, creating it if needed; an event
// has few subjects, so the walker keeps them at hand.
func (t *walker) key(subject string) (*dataKey, error) {
	for _, sk := range t.keys {
		if sk.subject == subject {
			return sk.k, nil
		}
	}
	k, err := t.p.liveKey(t.ctx, t.ev.Tenant, subject, true)
	if err != nil {
		return nil, err
	}
	t.keys = append(t.keys, subjectKey{subject, k})
	return k, nil
}

type subjectKey struct {
	subject string
	k       *dataKey
}

// sealValue encrypts plaintext and returns its enc:v1 form. Scratch space
// comes from a pool: the result string is the only allocation.
func sealValue(k *dataKey, tenant, subject string, plaintext []byte, path []string) (string, error) {
	sp := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sp)
	sealed := append(sp.sealed[:0], make([]byte, nonceLen)...)
	if err := randNonce(sealed); err != nil {
		return "", err
	}
	sp.aad = appendValueAAD(sp.aad[:0], tenant, subject, k.id, path)
	sealed = k.aead.Seal(sealed, sealed, plaintext, sp.aad)
	sp.sealed = sealed
	out := append(sp.out[:0], EncPrefix...)
	out = append(out, k.id...)
	out = append(out, ':')
	out = b64.AppendEncode(out, sealed)
	sp.out = out
	return string(out), nil
}

type scratch struct{ sealed, aad, out []byte }

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// personal encrypts (or, in a reveal, decrypts) the actor's and target's
// personal fields. A reveal does not check the length limits.
func (t *walker) personal() error {
	ev := t.ev
	if err := t.actor(&ev.Actor, false); err != nil {
		return err
	}
	if ev.Actor.OnBehalfOf != nil {
		obo := *ev.Actor.OnBehalfOf
		ev.Actor.OnBehalfOf = &obo
		if err := t.actor(&obo, true); err != nil {
			return err
		}
	}
	if ev.Target.Name != "" {
		return t.field(&ev.Target.Name, ev.Target.String(), trail.MaxNameLen, "target", "name")
	}
	return nil
}

// actor encrypts (or reveals) the personal fields of the actor, or of the
// actor's on_behalf_of. Their AAD paths are actor.<field> and
// actor.on_behalf_of.<field>.
func (t *walker) actor(a *trail.Actor, obo bool) error {
	if a.Name == "" && a.Email == "" && a.IP == "" && a.UserAgent == "" {
		return nil
	}
	if a.Type == "" {
		f := "actor.type"
		if obo {
			f = "actor.on_behalf_of.type"
		}
		return &trail.ValidationError{Field: f, Reason: "required"}
	}
	subject := a.String()
	for _, f := range [...]struct {
		v    *string
		name string
		max  int
	}{{&a.Name, "name", trail.MaxNameLen}, {&a.Email, "email", trail.MaxNameLen}, {&a.IP, "ip", maxIPLen}, {&a.UserAgent, "user_agent", trail.MaxUserAgentLen}} {
		var err error
		if obo {
			err = t.field(f.v, subject, f.max, "actor", "on_behalf_of", f.name)
		} else {
			err = t.field(f.v, subject, f.max, "actor", f.name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// field encrypts (or reveals) one personal string field at path, its JSON
// field name joined with dots.
func (t *walker) field(v *string, subject string, max int, path ...string) error {
	if *v == "" {
		return nil
	}
	if t.reveal {
		pt, erased, ok, err := t.open(*v, subject, path, strings.Join(path, "."))
		switch {
		case err != nil:
			return err
		case erased:
			*v = Erased
		case ok:
			*v = string(pt)
		}
		return nil
	}
	if IsStored(*v) {
		return nil
	}
	if len(*v) > max {
		return &trail.ValidationError{Field: strings.Join(path, "."), Reason: fmt.Sprintf("%d bytes, at most %d", len(*v), max)}
	}
	if !utf8.ValidString(*v) || strings.IndexByte(*v, 0) >= 0 {
		return &trail.ValidationError{Field: strings.Join(path, "."), Reason: "not valid UTF-8 text"}
	}
	s, err := t.encrypt(subject, stringBytes(*v), path)
	if err != nil {
		return err
	}
	*v = s
	return nil
}

// stringBytes returns the bytes of s without copying; the caller must not
// modify them (Seal only reads its plaintext).
func stringBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

type side struct {
	name string
	v    *json.RawMessage
}

func sides(c *trail.Change) [2]side {
	return [2]side{{"old", &c.Old}, {"new", &c.New}}
}

func jsonString(s string) json.RawMessage {
	// Stored forms use only [A-Za-z0-9:_-]: no escaping needed.
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func canonical(v any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return trail.CanonicalJSON(bytes.TrimRight(b.Bytes(), "\n"))
}

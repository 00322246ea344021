package trailprivacy

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

// ForgetAction is the action of the event that records an erasure (`trail
// forget`, POST /v1/forget). A destroyed key without one, or one without a
// destroyed key, is what KeyAudit reports: an application that calls
// Privacy.Forget itself must record it too.
const ForgetAction = "privacy.forget"

// KeyProblemKind classifies a KeyProblem.
type KeyProblemKind string

// Kinds of key problems KeyAudit finds.
const (
	// KeyErasedWithoutForget: a subject's key is destroyed (more often than
	// its privacy.forget events say): an erasure nobody recorded, e.g. a
	// key row marked destroyed by hand.
	KeyErasedWithoutForget KeyProblemKind = "erased_without_forget"
	// KeyForgetNotErased: a privacy.forget event whose subject has no
	// destroyed key to match it (the tombstone was deleted, or the key
	// brought back).
	KeyForgetNotErased KeyProblemKind = "forget_not_erased"
	// KeyDoesNotUnwrap: a live key does not unwrap under the master key for
	// its tenant, subject and ID (the binding is the AEAD's additional
	// data): wrapped keys swapped between subjects, moved, or edited.
	KeyDoesNotUnwrap KeyProblemKind = "key_does_not_unwrap"
	// KeyMissing: events hold values encrypted under a key ID that no row
	// of the tenant has, live or destroyed: the row was deleted.
	KeyMissing KeyProblemKind = "key_missing"
	// KeyWrongSubject: events of one subject hold values under a key ID the
	// table gives to another subject (rows re-labelled).
	KeyWrongSubject KeyProblemKind = "key_wrong_subject"
)

// KeyProblem is one breach of the key table's integrity, named by tenant,
// subject and kind.
type KeyProblem struct {
	Tenant  string         `json:"tenant"`
	Subject string         `json:"subject"`
	Kind    KeyProblemKind `json:"kind"`
	KeyID   string         `json:"key_id,omitempty"`
	// EventID is the first event concerned (a forget event, or an event
	// whose values need the key); Events counts them.
	EventID uuid.UUID `json:"event_id,omitzero"`
	Events  int64     `json:"events,omitempty"`
	Detail  string    `json:"detail,omitempty"`
}

// KeyWalker is a key store that can list every key, destroyed ones too:
// SQLKeyStore and MemoryKeyStore.
type KeyWalker interface {
	WalkKeys(ctx context.Context, fn func(SubjectKey) error) error
}

type keyRef struct {
	subject string
	first   uuid.UUID
	n       int64
}

type forgetRef struct {
	first uuid.UUID
	n     int64
}

// KeyAudit checks a key table against the events it protects. Feed it
// every stored event (AddEvent, in any order), then Check: every destroyed
// key has its privacy.forget event and every such event its destroyed key,
// every live key unwraps under the master key for its own tenant, subject
// and ID, and every key ID the events use has its row, of the right
// subject.
type KeyAudit struct {
	// KMS is the master key. Without it the unwrap check is skipped
	// (Unwrapped reports false) and the others still run.
	KMS KMS

	forgets map[[2]string]*forgetRef // tenant, subject
	refs    map[[2]string]*keyRef    // tenant, key ID
	buf     []byte
}

// AddEvent notes what the stored event ev needs of the key table.
func (a *KeyAudit) AddEvent(ev *trail.Event) {
	if a.refs == nil {
		a.refs = map[[2]string]*keyRef{}
		a.forgets = map[[2]string]*forgetRef{}
	}
	if ev.Action == ForgetAction {
		if s := forgottenSubject(ev); s != "" {
			k := [2]string{ev.Tenant, s}
			f := a.forgets[k]
			if f == nil {
				f = &forgetRef{first: ev.ID}
				a.forgets[k] = f
			}
			f.n++
		}
	}
	// Each protected place has its subject, as Transform chose it.
	a.addString(ev, ev.Actor.String(), ev.Actor.Name, ev.Actor.Email, ev.Actor.IP, ev.Actor.UserAgent)
	if o := ev.Actor.OnBehalfOf; o != nil {
		a.addString(ev, o.String(), o.Name, o.Email, o.IP, o.UserAgent)
	}
	data := ev.Target.String()
	if data == "" {
		data = ev.Actor.String()
	}
	a.addString(ev, data, ev.Target.Name)
	for _, c := range ev.Changes {
		a.addRaw(ev, data, c.Old)
		a.addRaw(ev, data, c.New)
	}
	if len(ev.Metadata) > 0 {
		a.addAny(ev, data, ev.Metadata)
	}
}

// addAny finds every enc:v1 value in decoded JSON (metadata).
func (a *KeyAudit) addAny(ev *trail.Event, subject string, v any) {
	switch x := v.(type) {
	case string:
		a.addString(ev, subject, x)
	case map[string]any:
		for _, e := range x {
			a.addAny(ev, subject, e)
		}
	case []any:
		for _, e := range x {
			a.addAny(ev, subject, e)
		}
	}
}

// forgottenSubject is the subject a privacy.forget event erased: its
// target (a bare type is written as target subject:TYPE), as both the CLI
// and the API record it.
func forgottenSubject(ev *trail.Event) string {
	if ev.Target.Type == "subject" && ev.Target.ID != "" {
		return ev.Target.ID
	}
	if s := ev.Target.String(); s != "" {
		return s
	}
	if s, ok := ev.Metadata["subject"].(string); ok && !strings.HasPrefix(s, EncPrefix) {
		return s
	}
	return ""
}

func (a *KeyAudit) addString(ev *trail.Event, subject string, vals ...string) {
	for _, v := range vals {
		if strings.HasPrefix(v, EncPrefix) {
			if st, err := ParseStored(v); err == nil {
				a.ref(ev, subject, st.KeyID)
			}
		}
	}
}

// addRaw finds every enc:v1 value in JSON text (a change side, metadata).
func (a *KeyAudit) addRaw(ev *trail.Event, subject string, raw []byte) {
	pre := []byte(`"` + EncPrefix)
	for {
		i := bytes.Index(raw, pre)
		if i < 0 {
			return
		}
		raw = raw[i+len(pre):]
		end := bytes.IndexByte(raw, ':')
		if end < 0 {
			return
		}
		if kid := string(raw[:end]); validKeyID(kid) {
			a.ref(ev, subject, kid)
		}
	}
}

func (a *KeyAudit) ref(ev *trail.Event, subject, kid string) {
	k := [2]string{ev.Tenant, kid}
	r := a.refs[k]
	if r == nil {
		r = &keyRef{subject: subject, first: ev.ID}
		a.refs[k] = r
	}
	r.n++
}

// Check compares the events added with every key of ks and returns the
// problems, ordered by tenant, subject and kind. An error means the check
// could not run.
func (a *KeyAudit) Check(ctx context.Context, ks KeyWalker) ([]KeyProblem, error) {
	var out []KeyProblem
	destroyed := map[[2]string]int64{}
	rows := map[[2]string][]string{} // tenant, key ID → subjects
	err := ks.WalkKeys(ctx, func(k SubjectKey) error {
		rows[[2]string{k.Tenant, k.ID}] = append(rows[[2]string{k.Tenant, k.ID}], k.Subject)
		if k.Destroyed() {
			destroyed[[2]string{k.Tenant, k.Subject}]++
			return nil
		}
		if a.KMS == nil {
			return nil
		}
		if p, ok := a.unwraps(ctx, k); !ok {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for k, n := range destroyed {
		if k[1] == rootSubject {
			continue
		}
		f := a.forgets[k]
		var have int64
		if f != nil {
			have = f.n
		}
		if n > have {
			out = append(out, KeyProblem{Tenant: k[0], Subject: k[1], Kind: KeyErasedWithoutForget,
				Detail: fmt.Sprintf("%d destroyed key(s), %d %s event(s)", n, have, ForgetAction)})
		}
	}
	for k, f := range a.forgets {
		if n := destroyed[k]; f.n > n {
			out = append(out, KeyProblem{Tenant: k[0], Subject: k[1], Kind: KeyForgetNotErased, EventID: f.first, Events: f.n,
				Detail: fmt.Sprintf("%d %s event(s), %d destroyed key(s)", f.n, ForgetAction, n)})
		}
	}
	for k, r := range a.refs {
		subjects := rows[k]
		switch {
		case len(subjects) == 0:
			out = append(out, KeyProblem{Tenant: k[0], Subject: r.subject, Kind: KeyMissing, KeyID: k[1], EventID: r.first, Events: r.n,
				Detail: "no row of the key table holds this key, live or destroyed (deleted?)"})
		case !slices.Contains(subjects, r.subject):
			out = append(out, KeyProblem{Tenant: k[0], Subject: r.subject, Kind: KeyWrongSubject, KeyID: k[1], EventID: r.first, Events: r.n,
				Detail: fmt.Sprintf("the key table gives this key to %s", strings.Join(subjects, ", "))})
		}
	}
	slices.SortFunc(out, func(x, y KeyProblem) int {
		return cmp.Or(cmp.Compare(x.Tenant, y.Tenant), cmp.Compare(x.Subject, y.Subject), cmp.Compare(x.Kind, y.Kind), cmp.Compare(x.KeyID, y.KeyID))
	})
	return out, nil
}

// unwraps checks that the live key k unwraps under the master key bound to
// its own tenant, subject and ID.
func (a *KeyAudit) unwraps(ctx context.Context, k SubjectKey) (KeyProblem, bool) {
	p := KeyProblem{Tenant: k.Tenant, Subject: k.Subject, Kind: KeyDoesNotUnwrap, KeyID: k.ID}
	if k.KEKID != a.KMS.KeyID() {
		p.Detail = fmt.Sprintf("wrapped by master key %s, the configured one is %s", k.KEKID, a.KMS.KeyID())
		return p, false
	}
	raw, err := a.KMS.Unwrap(ctx, k.Wrapped, wrapAAD(k.Tenant, k.Subject, k.ID))
	if err != nil {
		p.Detail = "the wrapped key does not open for this tenant, subject and key ID (swapped, moved or edited)"
		return p, false
	}
	clear(raw)
	return p, true
}

// WalkKeys calls fn with every key of the table, destroyed ones too, in
// (tenant, subject, key ID) order.
func (s *SQLKeyStore) WalkKeys(ctx context.Context, fn func(SubjectKey) error) error {
	if err := s.resolveSchema(ctx); err != nil {
		return err
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+keyCols+` FROM trail_subject_keys ORDER BY tenant, subject, key_id`))
	if err != nil {
		return fmt.Errorf("trailprivacy: list data keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		k, err := scanKey(rows)
		if errors.Is(err, ErrKeyNotFound) {
			continue
		}
		if err != nil {
			// A wrapped key that is not base64 is reported, not fatal.
			k = SubjectKey{Wrapped: []byte{}}
			if serr := rows.Scan(&k.Tenant, &k.Subject, &k.ID, &k.KEKID, new(any), new(int64), new(any)); serr != nil {
				return err
			}
		}
		if err := fn(k); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("trailprivacy: list data keys: %w", err)
	}
	return nil
}

// WalkKeys calls fn with every key, destroyed ones too.
func (m *MemoryKeyStore) WalkKeys(_ context.Context, fn func(SubjectKey) error) error {
	m.mu.Lock()
	var all []SubjectKey
	for _, ks := range m.keys {
		for _, k := range ks {
			all = append(all, cloneKey(k))
		}
	}
	m.mu.Unlock()
	slices.SortFunc(all, func(x, y SubjectKey) int {
		return cmp.Or(cmp.Compare(x.Tenant, y.Tenant), cmp.Compare(x.Subject, y.Subject), cmp.Compare(x.ID, y.ID))
	})
	for _, k := range all {
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}

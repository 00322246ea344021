package trailprivacy

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// SubjectKey is one data key of a subject, wrapped by the master key.
// A subject has at most one live key; destroyed keys stay as tombstones (no
// key material) so that Reveal can tell an erased value from a forged one.
type SubjectKey struct {
	Tenant  string // "" for platform events
	Subject string // "type:id" of an actor or target
	ID      string // the key ID written into enc:v1 values
	KEKID   string // the master key that wrapped it (KMS.KeyID)
	Wrapped []byte // nil once destroyed
	// CreatedAt and DestroyedAt (zero while live), microsecond precision, UTC.
	CreatedAt   time.Time
	DestroyedAt time.Time
}

// Destroyed reports whether the key was destroyed.
func (k SubjectKey) Destroyed() bool { return !k.DestroyedAt.IsZero() }

// Errors of a KeyStore.
var (
	// ErrKeyNotFound: the subject has no such key (Current: no live key).
	ErrKeyNotFound = errors.New("trailprivacy: data key not found")
	// ErrUnknownSubject: Forget of a subject that never had a key; nothing changed.
	ErrUnknownSubject = errors.New("trailprivacy: unknown subject")
	// ErrAlreadyForgotten: Forget of a subject whose keys are all destroyed.
	ErrAlreadyForgotten = errors.New("trailprivacy: subject already forgotten")
)

// KeyStore keeps the wrapped data keys, one live key per tenant and subject.
// Implementations: NewMemoryKeyStore for tests, NewSQLKeyStore over
// database/sql (SQLite and PostgreSQL). They must be safe for concurrent use.
type KeyStore interface {
	// Current returns the live key of the subject, or ErrKeyNotFound.
	Current(ctx context.Context, tenant, subject string) (SubjectKey, error)
	// Get returns the subject's key with this ID, live or destroyed, or
	// ErrKeyNotFound.
	Get(ctx context.Context, tenant, subject, id string) (SubjectKey, error)
	// Create stores k as the subject's live key unless the subject already
	// has one, and returns the live key: k, or the one another writer
	// created first.
	Create(ctx context.Context, k SubjectKey) (SubjectKey, error)
	// Destroy permanently deletes the key material of the subject's live key,
	// leaving a tombstone stamped at. It returns ErrUnknownSubject when the
	// subject never had a key and ErrAlreadyForgotten when it has no live one,
	// changing nothing.
	Destroy(ctx context.Context, tenant, subject string, at time.Time) error
	// List returns up to limit live keys ordered by (tenant, subject),
	// starting after (afterTenant, afterSubject); ("", "") starts at the
	// beginning. Rewrap pages through every key with it.
	List(ctx context.Context, afterTenant, afterSubject string, limit int) ([]SubjectKey, error)
	// Replace sets the Wrapped and KEKID of the live key k.ID of k's subject,
	// if it is still wrapped by oldKEK; it reports whether it did.
	Replace(ctx context.Context, k SubjectKey, oldKEK string) (bool, error)
}

// MemoryKeyStore is a KeyStore in memory, for tests and examples: its keys
// die with the process.
type MemoryKeyStore struct {
	mu   sync.Mutex
	keys map[[2]string][]SubjectKey // every key of a subject, oldest first
}

// NewMemoryKeyStore returns an empty MemoryKeyStore.
func NewMemoryKeyStore() *MemoryKeyStore {
	return &MemoryKeyStore{keys: map[[2]string][]SubjectKey{}}
}

func cloneKey(k SubjectKey) SubjectKey {
	k.Wrapped = slices.Clone(k.Wrapped)
	return k
}

func (m *MemoryKeyStore) Current(_ context.Context, tenant, subject string) (SubjectKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range m.keys[[2]string{tenant, subject}] {
		if !k.Destroyed() {
			return cloneKey(k), nil
		}
	}
	return SubjectKey{}, ErrKeyNotFound
}

func (m *MemoryKeyStore) Get(_ context.Context, tenant, subject, id string) (SubjectKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range m.keys[[2]string{tenant, subject}] {
		if k.ID == id {
			return cloneKey(k), nil
		}
	}
	return SubjectKey{}, ErrKeyNotFound
}

// HasKeyID reports whether any subject of any tenant has the key id.
func (m *MemoryKeyStore) HasKeyID(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, keys := range m.keys {
		for _, k := range keys {
			if k.ID == id {
				return true, nil
			}
		}
	}
	return false, nil
}

func (m *MemoryKeyStore) Create(_ context.Context, k SubjectKey) (SubjectKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	name := [2]string{k.Tenant, k.Subject}
	for _, old := range m.keys[name] {
		if !old.Destroyed() {
			return cloneKey(old), nil
		}
		if old.ID == k.ID {
			return SubjectKey{}, errors.New("trailprivacy: data key ID reused")
		}
	}
	k = cloneKey(k)
	k.DestroyedAt = time.Time{}
	m.keys[name] = append(m.keys[name], k)
	return cloneKey(k), nil
}

func (m *MemoryKeyStore) Destroy(_ context.Context, tenant, subject string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ks := m.keys[[2]string{tenant, subject}]
	if len(ks) == 0 {
		return ErrUnknownSubject
	}
	for i := range ks {
		if !ks[i].Destroyed() {
			clear(ks[i].Wrapped)
			ks[i].Wrapped = nil
			ks[i].DestroyedAt = at.UTC().Truncate(time.Microsecond)
			return nil
		}
	}
	return ErrAlreadyForgotten
}

func (m *MemoryKeyStore) List(_ context.Context, afterTenant, afterSubject string, limit int) ([]SubjectKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []SubjectKey
	for name, ks := range m.keys {
		if cmp.Or(cmp.Compare(name[0], afterTenant), cmp.Compare(name[1], afterSubject)) <= 0 {
			continue
		}
		for _, k := range ks {
			if !k.Destroyed() {
				out = append(out, cloneKey(k))
			}
		}
	}
	slices.SortFunc(out, func(a, b SubjectKey) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Subject, b.Subject))
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (m *MemoryKeyStore) Replace(_ context.Context, k SubjectKey, oldKEK string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ks := m.keys[[2]string{k.Tenant, k.Subject}]
	for i := range ks {
		if ks[i].ID == k.ID && !ks[i].Destroyed() && ks[i].KEKID == oldKEK {
			ks[i].Wrapped = slices.Clone(k.Wrapped)
			ks[i].KEKID = k.KEKID
			return true, nil
		}
	}
	return false, nil
}

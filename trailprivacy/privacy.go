package trailprivacy

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trailhq/trail"
)

// Errors callers branch on.
var (
	// ErrWrongMasterKey: the configured master key did not wrap the stored
	// data keys. A startup error: Trail never falls back to plaintext.
	ErrWrongMasterKey = errors.New("trailprivacy: wrong master key")
	// ErrTampered: an encrypted value does not authenticate where it is
	// stored (edited, or moved from another field, event or subject).
	ErrTampered = errors.New("trailprivacy: encrypted value does not authenticate")
)

// hmacRoot names the key from which the per-tenant HMAC keys are derived.
// It is kept like a subject's data key (wrapped by the master key, rewrapped
// on rotation) so that pseudonyms survive master-key rotation. The "!" makes
// it a subject no actor or target can have, and that Forget refuses.
const (
	rootTenant  = ""
	rootSubject = "!hmac"
)

// Config configures a Privacy. KMS and Keys are required, unless Plaintext.
type Config struct {
	// Policy decides what happens to changes and metadata. Default:
	// DefaultPolicy(), the deny-list redacting.
	Policy *Policy
	// Plaintext builds a Privacy without keys: the policy's omit and redact
	// rules (and the deny-list) still apply, but personal fields are stored
	// as given, in plaintext, and nothing can be forgotten. It is the
	// explicit opt-out of encryption; KMS and Keys must then be nil, and a
	// policy with hmac or pii rules is refused.
	Plaintext bool
	// KMS holds the master key that wraps the data keys.
	KMS KMS
	// Keys stores the wrapped data keys.
	Keys KeyStore
	// CacheSize bounds the unwrapped data keys kept in memory. Default 10,000.
	CacheSize int
	// CacheTTL is how long an unwrapped live key is used without asking the
	// key store again. It bounds how long another process that has the key
	// cached can still read a subject after Forget. Default 1 minute.
	CacheTTL time.Duration
	// Now is the clock for key creation and destruction times. Default time.Now.
	Now func() time.Time
}

// Privacy applies a policy to events and encrypts their personal fields
// (Transform), reads them back (Reveal), computes pseudonyms (HashFor) and
// erases subjects (Forget). It is safe for concurrent use.
type Privacy struct {
	policy *Policy
	keys   KeyStore
	kms    atomic.Pointer[kmsBox]
	now    func() time.Time
	ttl    time.Duration

	root     []byte   // HMAC root key
	macKeys  sync.Map // tenant -> *tenantMAC
	macCount atomic.Int64

	cache keyCache

	// plaintext: Config.Plaintext, no keys: the policy's omit and redact
	// rules (the deny-list) apply, personal fields are stored as given.
	plaintext bool
}

type kmsBox struct{ KMS }

// New returns a Privacy. It checks the master key against the stored keys
// (CheckMasterKey) and, on first use of the key store, creates the HMAC
// root key: a wrong master key is an error here, at startup.
func New(ctx context.Context, cfg Config) (*Privacy, error) {
	if cfg.Plaintext {
		if cfg.KMS != nil || cfg.Keys != nil {
			return nil, errors.New("trailprivacy: Config.Plaintext takes no KMS or Keys: with a master key, personal data is encrypted")
		}
		p := &Privacy{policy: cfg.Policy, plaintext: true}
		if p.policy == nil {
			p.policy = DefaultPolicy()
		}
		if r := p.policy.keyedRule(); r != "" {
			return nil, fmt.Errorf("trailprivacy: policy rule %q needs a master key (hmac and pii rules hash or encrypt under it): set TRAIL_MASTER_KEY, or drop the rule", r)
		}
		return p, nil
	}
	if cfg.KMS == nil {
		return nil, errors.New("trailprivacy: Config.KMS is required (see OpenMasterKey)")
	}
	if cfg.Keys == nil {
		return nil, errors.New("trailprivacy: Config.Keys is required")
	}
	p := &Privacy{policy: cfg.Policy, keys: cfg.Keys, now: cfg.Now, ttl: cfg.CacheTTL}
	if p.policy == nil {
		p.policy = DefaultPolicy()
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.ttl <= 0 {
		p.ttl = time.Minute
	}
	p.cache.max = cfg.CacheSize
	if p.cache.max <= 0 {
		p.cache.max = 10_000
	}
	p.kms.Store(&kmsBox{cfg.KMS})
	if err := CheckMasterKey(ctx, cfg.Keys, cfg.KMS); err != nil {
		return nil, err
	}
	root, err := p.liveKey(ctx, rootTenant, rootSubject, true)
	if err != nil {
		return nil, err
	}
	p.root = root.raw
	return p, nil
}

// Policy returns the policy in force.
func (p *Privacy) Policy() *Policy { return p.policy }

// CheckMasterKey reports whether kms is the master key that wrapped the
// keys in ks, by unwrapping the HMAC root key. An empty key store passes.
// The error matches ErrWrongMasterKey and names both key IDs.
func CheckMasterKey(ctx context.Context, ks KeyStore, kms KMS) error {
	k, err := ks.Current(ctx, rootTenant, rootSubject)
	if errors.Is(err, ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("trailprivacy: check master key: %w", err)
	}
	if k.KEKID != kms.KeyID() {
		return fmt.Errorf("%w: the stored data keys are wrapped by master key %s, the configured one is %s (check TRAIL_MASTER_KEY or the key file; after a rotation, finish it with rewrap)",
			ErrWrongMasterKey, k.KEKID, kms.KeyID())
	}
	if _, err := kms.Unwrap(ctx, k.Wrapped, wrapAAD(k.Tenant, k.Subject, k.ID)); err != nil {
		return fmt.Errorf("%w: master key %s does not unwrap the stored data keys: %v", ErrWrongMasterKey, kms.KeyID(), err)
	}
	return nil
}

// wrapAAD binds a wrapped data key to its row.
func wrapAAD(tenant, subject, id string) []byte {
	return aad("trail wrap v1", tenant, subject, id)
}

// aad length-prefixes each part so that no two lists of parts collide.
func aad(parts ...string) []byte {
	n := 0
	for _, s := range parts {
		n += len(s) + binary.MaxVarintLen64
	}
	b := make([]byte, 0, n)
	for _, s := range parts {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// valueAAD binds an encrypted value to tenant, subject, key and field path:
// aad("trail enc v1", tenant, subject, kid, path...).
func valueAAD(tenant, subject, kid string, path []string) []byte {
	return appendValueAAD(nil, tenant, subject, kid, path)
}

func appendValueAAD(b []byte, tenant, subject, kid string, path []string) []byte {
	for _, s := range [...]string{"trail enc v1", tenant, subject, kid} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, s := range path {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// nonces hands out random nonces from a buffer refilled from crypto/rand,
// so that each encryption does not cost a system call.
var nonces struct {
	sync.Mutex
	buf [1024]byte
	off int
}

func init() { nonces.off = len(nonces.buf) }

func randNonce(dst []byte) error {
	nonces.Lock()
	defer nonces.Unlock()
	if nonces.off+len(dst) > len(nonces.buf) {
		if _, err := rand.Read(nonces.buf[:]); err != nil {
			return err
		}
		nonces.off = 0
	}
	copy(dst, nonces.buf[nonces.off:])
	clear(nonces.buf[nonces.off : nonces.off+len(dst)]) // never hand out the same bytes twice
	nonces.off += len(dst)
	return nil
}

// HashFor returns the stored form of value under tenant's HMAC key, exactly
// as an hmac rule stores a string value: search for it by equality. The
// tenant key is HKDF-SHA256(root key, info "trail hmac v1" and tenant).
func (p *Privacy) HashFor(tenant, value string) string {
	if p.plaintext {
		return "" // no key: no pseudonym
	}
	return p.hashBytes(tenant, []byte(value))
}

// Digest returns the pseudonym of value in tenant that search matches
// (trail.Digest): the first 16 bytes of HashFor's HMAC. Transform writes it
// for the actor's name and e-mail (Event.Lookup); a reader computes it for
// the value asked for. Without keys (Config.Plaintext) it is the zero Digest:
// plaintext fields are matched as they are.
func (p *Privacy) Digest(tenant, value string) trail.Digest {
	var d trail.Digest
	if p.plaintext || value == "" {
		return d
	}
	var sum [sha256.Size]byte
	p.mac(tenant, func(m hash.Hash) {
		m.Write([]byte(value))
		m.Sum(sum[:0])
	})
	copy(d[:], sum[:])
	return d
}

// ErrLookupNeedsTenant is LookupActor's answer to a query that names no
// tenant: pseudonyms are per tenant.
var ErrLookupNeedsTenant = errors.New("trailprivacy: encrypted names and e-mails are found through a tenant's pseudonyms: name the tenant")

// LookupActor turns q's plaintext ActorName and ActorEmail into the
// pseudonyms (Digest) stored beside events whose actor fields p encrypted:
// q then matches those, not the ciphertext. In plaintext mode the fields
// are stored as given and q is left to match them as it is.
func (p *Privacy) LookupActor(q *trail.Query) error {
	if q.ActorName == "" && q.ActorEmail == "" || p.plaintext {
		return nil
	}
	if q.Tenant == "" {
		return ErrLookupNeedsTenant
	}
	if q.ActorName != "" {
		q.ActorNameDigest, q.ActorName = p.Digest(q.Tenant, q.ActorName), ""
	}
	if q.ActorEmail != "" {
		q.ActorEmailDigest, q.ActorEmail = p.Digest(q.Tenant, q.ActorEmail), ""
	}
	return nil
}

func (p *Privacy) hashBytes(tenant string, b []byte) string {
	var sum []byte
	p.mac(tenant, func(m hash.Hash) {
		m.Write(b)
		sum = m.Sum(nil)
	})
	return Stored{Kind: "hmac", Data: sum}.String()
}

// tenantMAC is a tenant's HMAC key with a pool of HMACs keyed with it:
// Transform computes two pseudonyms per event, and a fresh hmac.New is
// most of each one's cost and garbage.
type tenantMAC struct {
	key  []byte
	pool sync.Pool // of hash.Hash, reset
}

// mac runs fn with a reset HMAC-SHA256 under tenant's key.
func (p *Privacy) mac(tenant string, fn func(hash.Hash)) {
	tm := p.tenantMAC(tenant)
	m, _ := tm.pool.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, tm.key)
	}
	fn(m)
	m.Reset()
	tm.pool.Put(m)
}

func (p *Privacy) tenantMAC(tenant string) *tenantMAC {
	if k, ok := p.macKeys.Load(tenant); ok {
		return k.(*tenantMAC)
	}
	tm := &tenantMAC{key: tenantMACKey(p.root, tenant)}
	if p.macCount.Load() < 10_000 { // bounded: tenant names may come from requests
		if k, loaded := p.macKeys.LoadOrStore(tenant, tm); loaded {
			return k.(*tenantMAC)
		}
		p.macCount.Add(1)
	}
	return tm
}

func tenantMACKey(root []byte, tenant string) []byte {
	k, err := hkdf.Key(sha256.New, root, nil, "trail hmac v1\x00"+tenant, 32)
	if err != nil {
		panic(err) // only for lengths HKDF cannot produce
	}
	return k
}

// Forget erases a subject of a tenant ("user:42"): its data key is
// destroyed, so its encrypted fields in every stored event, export and
// archive read back as "[erased]". Events are not rewritten and integrity
// proofs still verify. A subject that never had a key is ErrUnknownSubject,
// one already forgotten ErrAlreadyForgotten; neither changes anything.
func (p *Privacy) Forget(ctx context.Context, tenant, subject string) error {
	if p.plaintext {
		return fmt.Errorf("%w: a Plaintext privacy layer has no keys to destroy, so nothing can be forgotten", ErrNoMasterKey)
	}
	if subject == "" || strings.HasPrefix(subject, "!") {
		return fmt.Errorf("%w: %q", ErrUnknownSubject, clip(subject))
	}
	err := p.keys.Destroy(ctx, tenant, subject, p.now())
	p.cache.drop(tenant, subject)
	if err != nil {
		return fmt.Errorf("forget %s in tenant %q: %w", subject, tenant, err)
	}
	return nil
}

// Rewrap re-wraps every live data key from master key old to new and makes
// new this Privacy's master key. Events are not touched. It is resumable:
// keys already wrapped by new are skipped, so a failed run can be repeated.
func (p *Privacy) Rewrap(ctx context.Context, old, new KMS) (int, error) {
	if p.plaintext {
		return 0, fmt.Errorf("%w: a Plaintext privacy layer has no keys", ErrNoMasterKey)
	}
	n, err := RewrapKeys(ctx, p.keys, old, new)
	if err != nil {
		return n, err
	}
	p.kms.Store(&kmsBox{new})
	return n, nil
}

// RewrapKeys re-wraps every live key of ks from old to new, for master-key
// rotation, and returns how many it re-wrapped. A key wrapped by neither is
// an error naming it.
func RewrapKeys(ctx context.Context, ks KeyStore, old, new KMS) (int, error) {
	n := 0
	var afterT, afterS string
	for {
		page, err := ks.List(ctx, afterT, afterS, 500)
		if err != nil {
			return n, err
		}
		if len(page) == 0 {
			return n, nil
		}
		for _, k := range page {
			switch k.KEKID {
			case new.KeyID():
				continue
			case old.KeyID():
			default:
				return n, fmt.Errorf("%w: data key %s of %q in tenant %q is wrapped by %s, neither %s nor %s",
					ErrWrongMasterKey, k.ID, k.Subject, k.Tenant, k.KEKID, old.KeyID(), new.KeyID())
			}
			a := wrapAAD(k.Tenant, k.Subject, k.ID)
			raw, err := old.Unwrap(ctx, k.Wrapped, a)
			if err != nil {
				return n, fmt.Errorf("%w: data key %s of %q: %v", ErrWrongMasterKey, k.ID, k.Subject, err)
			}
			w, err := new.Wrap(ctx, raw, a)
			clear(raw)
			if err != nil {
				return n, err
			}
			oldKEK := k.KEKID
			k.Wrapped, k.KEKID = w, new.KeyID()
			ok, err := ks.Replace(ctx, k, oldKEK)
			if err != nil {
				return n, err
			}
			if ok {
				n++
			}
		}
		last := page[len(page)-1]
		afterT, afterS = last.Tenant, last.Subject
	}
}

// dataKey is an unwrapped data key ready to use.
type dataKey struct {
	id      string
	raw     []byte
	aead    cipher.AEAD
	expires time.Time
}

func newDataKey(id string, raw []byte) (*dataKey, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &dataKey{id: id, raw: raw, aead: aead}, nil
}

// liveKey returns the subject's live key, creating it when create is set
// (Transform) or returning ErrKeyNotFound (Reveal).
func (p *Privacy) liveKey(ctx context.Context, tenant, subject string, create bool) (*dataKey, error) {
	b := batchFrom(ctx, create)
	if k := b.get(tenant, subject); k != nil {
		return k, nil
	}
	if k := p.cache.get(tenant, subject, p.now()); k != nil {
		return k, nil
	}
	kms := p.kms.Load().KMS
	sk, err := p.keys.Current(ctx, tenant, subject)
	if errors.Is(err, ErrKeyNotFound) && create {
		if ks, ok := p.txKeys(ctx); ok {
			// A key created in the caller's transaction exists only if it
			// commits: it is not cached, so that a rollback cannot leave the
			// cache holding a key the store never kept (a batch keeps it for
			// its own events, in the same transaction).
			if sk, err = p.createKeyIn(ctx, ks, kms, tenant, subject); err != nil {
				return nil, err
			}
			k, err := p.unwrapKey(ctx, kms, sk, false)
			if err == nil {
				b.put(tenant, subject, k, nil)
			}
			return k, err
		}
		if b != nil {
			// In a batch the key is stored by its finish, with the batch's
			// other new keys, in one write (batch.go).
			if sk, err = p.newSubjectKey(ctx, kms, tenant, subject); err != nil {
				return nil, err
			}
			k, err := p.unwrapKey(ctx, kms, sk, false)
			if err == nil {
				b.put(tenant, subject, k, &sk)
			}
			return k, err
		}
		sk, err = p.createKey(ctx, kms, tenant, subject)
	}
	if err != nil {
		return nil, err
	}
	k, err := p.unwrap(ctx, kms, sk)
	if err == nil {
		b.put(tenant, subject, k, nil) // the cache may evict it before the batch's next event
	}
	return k, err
}

// TxKeyStore is a KeyStore that can work inside a caller's transaction:
// SQLKeyStore, whose In returns the same table through a *sql.Tx.
type TxKeyStore interface {
	KeyStore
	In(tx DBTX) KeyStore
}

// txKeys returns the key store inside the transaction a RecordTx prepares
// its events in (trail.TxFrom), when there is one it can use.
func (p *Privacy) txKeys(ctx context.Context) (KeyStore, bool) {
	tx, ok := trail.TxFrom(ctx).(DBTX)
	if !ok {
		return nil, false
	}
	ks, ok := p.keys.(TxKeyStore)
	if !ok {
		return nil, false
	}
	return ks.In(tx), true
}

func (p *Privacy) createKey(ctx context.Context, kms KMS, tenant, subject string) (SubjectKey, error) {
	return p.createKeyIn(ctx, p.keys, kms, tenant, subject)
}

func (p *Privacy) createKeyIn(ctx context.Context, ks KeyStore, kms KMS, tenant, subject string) (SubjectKey, error) {
	sk, err := p.newSubjectKey(ctx, kms, tenant, subject)
	if err != nil {
		return SubjectKey{}, err
	}
	return ks.Create(ctx, sk)
}

// newSubjectKey makes a new data key for the subject, wrapped by kms, not
// stored.
func (p *Privacy) newSubjectKey(ctx context.Context, kms KMS, tenant, subject string) (SubjectKey, error) {
	var idb [keyIDBytes]byte
	raw := make([]byte, 32)
	if _, err := rand.Read(idb[:]); err != nil {
		return SubjectKey{}, err
	}
	if _, err := rand.Read(raw); err != nil {
		return SubjectKey{}, err
	}
	id := b64.EncodeToString(idb[:])
	w, err := kms.Wrap(ctx, raw, wrapAAD(tenant, subject, id))
	clear(raw)
	if err != nil {
		return SubjectKey{}, fmt.Errorf("trailprivacy: wrap data key: %w", err)
	}
	return SubjectKey{
		Tenant: tenant, Subject: subject, ID: id, KEKID: kms.KeyID(), Wrapped: w,
		CreatedAt: p.now().UTC().Truncate(time.Microsecond),
	}, nil
}

func (p *Privacy) unwrap(ctx context.Context, kms KMS, sk SubjectKey) (*dataKey, error) {
	return p.unwrapKey(ctx, kms, sk, true)
}

func (p *Privacy) unwrapKey(ctx context.Context, kms KMS, sk SubjectKey, cache bool) (*dataKey, error) {
	if sk.KEKID != kms.KeyID() {
		return nil, fmt.Errorf("%w: data key %s of %q is wrapped by %s, the configured master key is %s",
			ErrWrongMasterKey, sk.ID, sk.Subject, sk.KEKID, kms.KeyID())
	}
	raw, err := kms.Unwrap(ctx, sk.Wrapped, wrapAAD(sk.Tenant, sk.Subject, sk.ID))
	if err != nil {
		return nil, fmt.Errorf("%w: data key %s of %q: %v", ErrWrongMasterKey, sk.ID, sk.Subject, err)
	}
	k, err := newDataKey(sk.ID, raw)
	if err != nil {
		return nil, err
	}
	k.expires = p.now().Add(p.ttl)
	if cache {
		p.cache.put(sk.Tenant, sk.Subject, k)
	}
	return k, nil
}

// keyForValue finds the key of an enc:v1 value of subject with key ID kid:
// the live key, or erased=true for a destroyed one. A key ID the subject
// never had means the value was forged or moved: ErrTampered.
func (p *Privacy) keyForValue(ctx context.Context, tenant, subject, kid string) (k *dataKey, erased bool, err error) {
	now := p.now()
	if k := p.cache.get(tenant, subject, now); k != nil && k.id == kid {
		return k, false, nil
	}
	if p.cache.isDestroyed(tenant, subject, kid) {
		return nil, true, nil
	}
	sk, err := p.keys.Get(ctx, tenant, subject, kid)
	if errors.Is(err, ErrKeyNotFound) {
		// A key ID the store holds for another subject or tenant: the value
		// was moved there, which is tampering. One it holds nowhere: the
		// key table is not the one the data was written with.
		if h, ok := p.keys.(keyIDFinder); ok {
			found, ferr := h.HasKeyID(ctx, kid)
			switch {
			case ferr != nil:
				return nil, false, ferr
			case !found:
				return nil, false, &NoKeyError{Tenant: tenant, Subject: subject, KeyID: kid, Where: where(p.keys)}
			}
		}
		return nil, false, ErrTampered
	}
	if err != nil {
		return nil, false, err
	}
	if sk.Destroyed() {
		p.cache.markDestroyed(tenant, subject, kid)
		return nil, true, nil
	}
	k, err = p.unwrap(ctx, p.kms.Load().KMS, sk)
	return k, false, err
}

// ErrNoMasterKey: an operation that needs keys on a Privacy built with
// Config.Plaintext, or a setup that found no master key.
var ErrNoMasterKey = errors.New("trailprivacy: no master key")

// ErrNoKey is matched by a NoKeyError.
var ErrNoKey = errors.New("trailprivacy: no key for the encrypted value")

// NoKeyError reports an encrypted value whose data key the key store does
// not have at all — neither live nor destroyed: the key table is another one
// than the data was written with (another schema or database, a restored
// backup of the events without the keys) or its row was deleted. It is not
// an erasure (Forget leaves a tombstone) and not tampering with the value:
// the fix is to point the key store at the right table.
type NoKeyError struct {
	Tenant, Subject, KeyID string
	Where                  string // the key store's location, e.g. `schema "trail"`
}

func (e *NoKeyError) Error() string {
	where := e.Where
	if where == "" {
		where = "the key store"
	}
	return fmt.Sprintf("trailprivacy: no key for subject %s of tenant %q (key %s) in %s: open the key store where the data was written (NewSQLKeyStoreIn for another PostgreSQL schema)",
		e.Subject, e.Tenant, e.KeyID, where)
}

func (e *NoKeyError) Is(target error) bool { return target == ErrNoKey }

// keyIDFinder is a key store that can say whether it holds a key ID under
// any tenant and subject: SQLKeyStore and MemoryKeyStore.
type keyIDFinder interface {
	HasKeyID(ctx context.Context, id string) (bool, error)
}

// where asks a key store for its location, if it can tell.
func where(ks KeyStore) string {
	if w, ok := ks.(interface{ Where() string }); ok {
		return w.Where()
	}
	return ""
}

// keyCache keeps unwrapped live keys (until they expire) and the IDs of
// destroyed keys (destruction is permanent, so those never expire).
type keyCache struct {
	mu        sync.RWMutex
	max       int
	live      map[[2]string]*dataKey
	destroyed map[[3]string]struct{}
}

func (c *keyCache) get(tenant, subject string, now time.Time) *dataKey {
	c.mu.RLock()
	defer c.mu.RUnlock()
	k := c.live[[2]string{tenant, subject}]
	if k == nil || now.After(k.expires) {
		return nil
	}
	return k
}

func (c *keyCache) put(tenant, subject string, k *dataKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live == nil {
		c.live = map[[2]string]*dataKey{}
	}
	if len(c.live) >= c.max {
		for name := range c.live { // evict one, arbitrary
			delete(c.live, name)
			break
		}
	}
	c.live[[2]string{tenant, subject}] = k
}

func (c *keyCache) drop(tenant, subject string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.live, [2]string{tenant, subject})
}

func (c *keyCache) isDestroyed(tenant, subject, kid string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.destroyed[[3]string{tenant, subject, kid}]
	return ok
}

func (c *keyCache) markDestroyed(tenant, subject, kid string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.destroyed == nil || len(c.destroyed) >= c.max {
		c.destroyed = map[[3]string]struct{}{}
	}
	c.destroyed[[3]string{tenant, subject, kid}] = struct{}{}
}

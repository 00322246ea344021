package trailprivacy

import (
	"context"
	"sync"

	"github.com/trailhq/trail"
)

// Batch implements trail.BatchTransformer. Under the returned context,
// Transform keeps every key it uses for the batch's later events, and a new
// subject's key is made in memory; finish stores the batch's new keys in one
// write — one transaction on a SQLKeyStore — and caches them. Without it each
// new subject's key was its own commit: a bulk load of events from
// thousands of people spent more time committing keys than storing events.
//
// The events must be stored only after finish returns nil: before it, their
// ciphertexts are under keys no store holds. When finish returns
// trail.ErrRetryBatch, another writer stored a key for one of the batch's new
// subjects first, and the values encrypted under this batch's key would not
// open with the subject's live key: transform the events again, from the
// events as given. Inside a caller's transaction (RecordManyTx) keys are
// created in that transaction as without a batch, and finish has nothing to
// store.
func (p *Privacy) Batch(ctx context.Context) (context.Context, func(context.Context) error) {
	b := &keyBatch{used: map[[2]string]*dataKey{}}
	return context.WithValue(ctx, keyBatchKey{}, b), func(ctx context.Context) error { return p.finishBatch(ctx, b) }
}

var _ trail.BatchTransformer = (*Privacy)(nil)

type keyBatchKey struct{}

// keyBatch holds what one batch's transforms used: every subject's key, and
// the new keys not stored yet, in the order they were made.
type keyBatch struct {
	mu      sync.Mutex
	used    map[[2]string]*dataKey
	pending []SubjectKey
}

// batchFrom returns ctx's batch when keys are being used to encrypt
// (create), nil otherwise: Reveal never uses a batch's keys.
func batchFrom(ctx context.Context, create bool) *keyBatch {
	if !create {
		return nil
	}
	b, _ := ctx.Value(keyBatchKey{}).(*keyBatch)
	return b
}

func (b *keyBatch) get(tenant, subject string) *dataKey {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used[[2]string{tenant, subject}]
}

// put keeps k for the batch's later events of the subject, and sk, when the
// key is new, for finish to store.
func (b *keyBatch) put(tenant, subject string, k *dataKey, sk *SubjectKey) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used[[2]string{tenant, subject}] = k
	if sk != nil {
		b.pending = append(b.pending, *sk)
	}
}

// keyCreator is a KeyStore that stores many new keys in one write
// (SQLKeyStore: one transaction).
type keyCreator interface {
	createAll(ctx context.Context, keys []SubjectKey) ([]SubjectKey, error)
}

func (p *Privacy) finishBatch(ctx context.Context, b *keyBatch) error {
	b.mu.Lock()
	pending := b.pending
	b.pending = nil
	b.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	create := func(ctx context.Context, keys []SubjectKey) ([]SubjectKey, error) {
		return createEach(ctx, p.keys, keys)
	}
	if kc, ok := p.keys.(keyCreator); ok {
		create = kc.createAll
	}
	live, err := create(ctx, pending)
	if err != nil {
		return err
	}
	lost := false
	for i, k := range pending {
		if live[i].ID != k.ID {
			lost = true // another writer's key is the subject's: this one must not be used
			continue
		}
		if dk := b.get(k.Tenant, k.Subject); dk != nil {
			p.cache.put(k.Tenant, k.Subject, dk)
		}
	}
	if lost {
		return trail.ErrRetryBatch
	}
	return nil
}

package trailseal

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"golang.org/x/mod/sumdb/tlog"
)

// MemLog is an in-memory Store, with the events it seals. Tests and examples
// use it; it is the reference for the SQL implementations and passes the
// same suite (package sealtest). Its Tamper methods change the stored data
// behind the sealer's back, as a database administrator could.
//
// Events returned by its methods share maps and slices with the stored
// ones: callers must not modify them.
type MemLog struct {
	// Now is the clock of leases and RecordedAt; nil means time.Now.
	Now func() time.Time

	mu         sync.Mutex
	events     map[uuid.UUID]*trail.Event // never mutated in place: replaced
	order      map[string][]uuid.UUID     // each log's events in append order
	pendingQ   []uuid.UUID                // pending queue; entries not in pendingSet were removed
	pendingSet map[uuid.UUID]bool
	leaves     map[string]map[int64]Leaf
	byEvent    map[uuid.UUID]Leaf
	hashes     map[string]map[int64]tlog.Hash
	sizes      map[string]int64
	cps        map[string][]Checkpoint
	leases     map[string]*memLease
}

type memLease struct {
	holder  string
	epoch   int64
	expires time.Time
}

var (
	_ Store     = (*MemLog)(nil)
	_ LogStater = (*MemLog)(nil)
)

// NewMemLog returns an empty MemLog.
func NewMemLog() *MemLog {
	return &MemLog{
		events:     map[uuid.UUID]*trail.Event{},
		order:      map[string][]uuid.UUID{},
		pendingSet: map[uuid.UUID]bool{},
		leaves:     map[string]map[int64]Leaf{},
		byEvent:    map[uuid.UUID]Leaf{},
		hashes:     map[string]map[int64]tlog.Hash{},
		sizes:      map[string]int64{},
		cps:        map[string][]Checkpoint{},
		leases:     map[string]*memLease{},
	}
}

func (m *MemLog) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// Append stores events and queues them for sealing, atomically, like a
// store's Append: an ID already stored (or repeated in the batch) is a
// duplicate that stores nothing. A zero RecordedAt is set to the clock.
func (m *MemLog) Append(ctx context.Context, events []trail.Event) ([]trail.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	res := make([]trail.Result, len(events))
	seen := map[uuid.UUID]bool{}
	for i, ev := range events {
		if ev.ID == uuid.Nil {
			return nil, fmt.Errorf("trailseal: MemLog.Append: event %d has no ID", i)
		}
		res[i].ID = ev.ID
		if _, dup := m.events[ev.ID]; dup || seen[ev.ID] {
			res[i].Duplicate = true
			continue
		}
		seen[ev.ID] = true
	}
	now := m.now().UTC().Truncate(time.Microsecond)
	for i, ev := range events {
		if res[i].Duplicate {
			continue
		}
		if ev.RecordedAt.IsZero() {
			ev.RecordedAt = now
		}
		res[i].RecordedAt = ev.RecordedAt
		m.events[ev.ID] = &ev
		log := LogName(ev.Tenant)
		m.order[log] = append(m.order[log], ev.ID)
		m.pendingQ = append(m.pendingQ, ev.ID)
		m.pendingSet[ev.ID] = true
	}
	return res, nil
}

// Get returns the stored event id.
func (m *MemLog) Get(_ context.Context, id uuid.UUID) (trail.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ev, ok := m.events[id]
	if !ok {
		return trail.Event{}, trail.ErrNotFound
	}
	return *ev, nil
}

// Lease implements Store.
func (m *MemLog) Lease(ctx context.Context, name, holder string, ttl time.Duration) (int64, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	if name == "" || holder == "" {
		return 0, false, fmt.Errorf("trailseal: lease name and holder must not be empty")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	l := m.leases[name]
	if l == nil {
		l = &memLease{}
		m.leases[name] = l
	}
	held := l.holder != "" && now.Before(l.expires)
	if ttl <= 0 {
		if held && l.holder == holder {
			l.expires = now
		}
		return l.epoch, false, nil
	}
	switch {
	case held && l.holder == holder:
		l.expires = now.Add(ttl)
	case held:
		return l.epoch, false, nil
	default:
		l.holder, l.epoch, l.expires = holder, l.epoch+1, now.Add(ttl)
	}
	return l.epoch, true, nil
}

// fenced reports whether f is not the current epoch. Call with m.mu held.
func (m *MemLog) fenced(f Fence) bool {
	l := m.leases[f.Lease]
	return l == nil || l.epoch != f.Epoch
}

// Pending implements Store.
func (m *MemLog) Pending(ctx context.Context, limit int) ([]trail.Event, error) {
	return m.PendingExcept(ctx, limit, nil)
}

var _ PendingSkipper = (*MemLog)(nil)

// PendingExcept implements PendingSkipper.
func (m *MemLog) PendingExcept(ctx context.Context, limit int, skip []uuid.UUID) ([]trail.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// Drop removed entries at the head so the walk stays short.
	head := 0
	for head < len(m.pendingQ) && !m.pendingSet[m.pendingQ[head]] {
		head++
	}
	m.pendingQ = m.pendingQ[head:]
	skipped := make(map[uuid.UUID]struct{}, len(skip))
	for _, id := range skip {
		skipped[id] = struct{}{}
	}
	var out []trail.Event
	for _, id := range m.pendingQ {
		if len(out) >= limit {
			break
		}
		if _, skipped := skipped[id]; !m.pendingSet[id] || skipped {
			continue
		}
		if ev, ok := m.events[id]; ok { // a pending row without its event is skipped
			out = append(out, *ev)
		}
	}
	return out, nil
}

// Seal implements Store.
func (m *MemLog) Seal(ctx context.Context, fence Fence, b SealBatch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fenced(fence) {
		return ErrFenced
	}
	for _, s := range b.Sizes {
		if m.sizes[s.Log] != s.OldSize {
			return fmt.Errorf("%w: log %q has %d leaves, batch extends %d", ErrConflict, s.Log, m.sizes[s.Log], s.OldSize)
		}
	}
	for _, l := range b.Leaves {
		if _, dup := m.byEvent[l.EventID]; dup {
			return fmt.Errorf("trailseal: event %s is already sealed", l.EventID)
		}
		if _, dup := m.leaves[l.Log][l.Seq]; dup {
			return fmt.Errorf("%w: log %q already has seq %d", ErrConflict, l.Log, l.Seq)
		}
	}
	// Validated: apply.
	for _, l := range b.Leaves {
		if m.leaves[l.Log] == nil {
			m.leaves[l.Log] = map[int64]Leaf{}
		}
		m.leaves[l.Log][l.Seq] = l
		m.byEvent[l.EventID] = l
	}
	for _, h := range b.Hashes {
		if m.hashes[h.Log] == nil {
			m.hashes[h.Log] = map[int64]tlog.Hash{}
		}
		m.hashes[h.Log][h.Index] = h.Hash
	}
	for _, s := range b.Sizes {
		m.sizes[s.Log] = s.NewSize
	}
	for _, id := range b.Done {
		delete(m.pendingSet, id)
	}
	return nil
}

// TreeSize implements Store.
func (m *MemLog) TreeSize(ctx context.Context, log string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sizes[log], nil
}

// ReadHashes implements Store.
func (m *MemLog) ReadHashes(ctx context.Context, log string, indexes []int64) ([]tlog.Hash, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		h, ok := m.hashes[log][x]
		if !ok {
			return nil, fmt.Errorf("trailseal: log %q has no stored hash %d", log, x)
		}
		out[i] = h
	}
	return out, nil
}

// Leaves implements Store.
func (m *MemLog) Leaves(ctx context.Context, log string, from, to int64) ([]SealedEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []SealedEvent
	ls := m.leaves[log]
	if int64(len(ls)) < to-from { // sparse: walk the map
		for seq, l := range ls {
			if seq >= from && seq < to {
				out = append(out, m.sealed(l))
			}
		}
		slices.SortFunc(out, func(a, b SealedEvent) int { return int(a.Seq - b.Seq) })
		return out, nil
	}
	for seq := from; seq < to; seq++ {
		if l, ok := ls[seq]; ok {
			out = append(out, m.sealed(l))
		}
	}
	return out, nil
}

func (m *MemLog) sealed(l Leaf) SealedEvent {
	se := SealedEvent{Leaf: l}
	se.Event = m.events[l.EventID]
	return se
}

// LeafOf implements Store.
func (m *MemLog) LeafOf(ctx context.Context, id uuid.UUID) (Leaf, error) {
	if err := ctx.Err(); err != nil {
		return Leaf{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.byEvent[id]; ok {
		return l, nil
	}
	if _, ok := m.events[id]; ok {
		return Leaf{}, ErrNotSealed
	}
	return Leaf{}, ErrUnknownEvent
}

// Unsealed implements Store.
func (m *MemLog) Unsealed(ctx context.Context, log string) ([]uuid.UUID, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []uuid.UUID
	for _, id := range m.order[log] {
		if _, ok := m.events[id]; !ok || m.pendingSet[id] {
			continue
		}
		if _, sealed := m.byEvent[id]; !sealed {
			out = append(out, id)
		}
	}
	return out, nil
}

// SaveCheckpoint implements Store.
func (m *MemLog) SaveCheckpoint(ctx context.Context, fence Fence, cp Checkpoint) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fenced(fence) {
		return ErrFenced
	}
	m.cps[cp.Log] = append(m.cps[cp.Log], cp)
	return nil
}

// Checkpoints implements Store.
func (m *MemLog) Checkpoints(ctx context.Context, log string) ([]Checkpoint, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.cps[log]), nil
}

// LatestCheckpoint implements Store.
func (m *MemLog) LatestCheckpoint(ctx context.Context, log string) (Checkpoint, error) {
	if err := ctx.Err(); err != nil {
		return Checkpoint{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cps := m.cps[log]
	if len(cps) == 0 {
		return Checkpoint{}, ErrNoCheckpoint
	}
	return cps[len(cps)-1], nil
}

// Logs implements Store.
func (m *MemLog) Logs(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	set := map[string]bool{}
	for l, n := range m.sizes {
		if n > 0 {
			set[l] = true
		}
	}
	for l := range m.leaves {
		set[l] = true
	}
	for l := range m.cps {
		set[l] = true
	}
	out := make([]string, 0, len(set))
	for l := range set {
		out = append(out, l)
	}
	slices.Sort(out)
	return out, nil
}

// LogStates implements LogStater.
func (m *MemLog) LogStates(ctx context.Context) ([]LogState, error) {
	logs, err := m.Logs(ctx)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]LogState, len(logs))
	for i, l := range logs {
		out[i] = LogState{Log: l, Size: m.sizes[l]}
		if cps := m.cps[l]; len(cps) > 0 {
			out[i].CheckpointSize, out[i].CheckpointTime = cps[len(cps)-1].Size, cps[len(cps)-1].Time
		}
	}
	return out, nil
}

// The Tamper methods below implement sealtest.Tamperer: they change stored
// data the way someone with write access to the database could, bypassing
// the sealer.

// TamperEditDescription overwrites the stored description of event id.
func (m *MemLog) TamperEditDescription(_ context.Context, id uuid.UUID, desc string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.events[id]
	if !ok {
		return trail.ErrNotFound
	}
	ev := *old
	ev.Description = desc
	m.events[id] = &ev
	return nil
}

// TamperDeleteEvent deletes the event row id (its leaf stays).
func (m *MemLog) TamperDeleteEvent(_ context.Context, id uuid.UUID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.events[id]; !ok {
		return trail.ErrNotFound
	}
	delete(m.events, id)
	return nil
}

// TamperInsertEvent stores ev directly: no pending row, no leaf.
func (m *MemLog) TamperInsertEvent(_ context.Context, ev trail.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events[ev.ID] = &ev
	log := LogName(ev.Tenant)
	m.order[log] = append(m.order[log], ev.ID)
	return nil
}

// TamperSwapSeqs exchanges the sequence numbers of two leaves of log.
func (m *MemLog) TamperSwapSeqs(_ context.Context, log string, i, j int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, aok := m.leaves[log][i]
	b, bok := m.leaves[log][j]
	if !aok || !bok {
		return fmt.Errorf("no leaf %d or %d in %q", i, j, log)
	}
	a.Seq, b.Seq = j, i
	m.leaves[log][j], m.leaves[log][i] = a, b
	m.byEvent[a.EventID], m.byEvent[b.EventID] = a, b
	return nil
}

// TamperTruncate drops log's tail from seq n on, carefully: leaves, their
// events, the stored hashes they added, and the log size.
func (m *MemLog) TamperTruncate(_ context.Context, log string, n int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for seq, l := range m.leaves[log] {
		if seq >= n {
			delete(m.leaves[log], seq)
			delete(m.byEvent, l.EventID)
			delete(m.events, l.EventID)
		}
	}
	cut := tlog.StoredHashIndex(0, n)
	for x := range m.hashes[log] {
		if x >= cut {
			delete(m.hashes[log], x)
		}
	}
	m.sizes[log] = n
	return nil
}

// TamperReplaceCheckpoint overwrites the signed note of log's checkpoint of
// the given size.
func (m *MemLog) TamperReplaceCheckpoint(_ context.Context, log string, size int64, signedNote string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, cp := range m.cps[log] {
		if cp.Size == size {
			m.cps[log][i].Note = signedNote
			return nil
		}
	}
	return fmt.Errorf("no checkpoint of size %d in %q", size, log)
}

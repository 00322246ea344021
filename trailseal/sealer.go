package trailseal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// DefaultLeaseName is the lease the sealers of one store compete for.
const DefaultLeaseName = "trail.sealer"

// Config configures a Sealer. Zero fields take the documented defaults.
type Config struct {
	// Signer signs checkpoints. Required.
	Signer note.Signer
	// Origin prefixes every checkpoint's origin line: Origin + "/" + log.
	// Default: DefaultOrigin. Verifiers must use the same value.
	Origin string
	// Holder names this sealer in the lease row. Default: host name, process
	// ID and a random suffix.
	Holder string
	// LeaseName is the lease competed for. Default: DefaultLeaseName.
	LeaseName string
	// LeaseTTL is how long the lease lasts without renewal; a crashed leader
	// is replaced after at most this long. Default: 15s.
	LeaseTTL time.Duration
	// BatchSize is the most events sealed in one transaction: a step takes
	// what is pending, up to this, so batches grow with a backlog and the
	// per-step costs (lease, commits, one row per log extended) are shared
	// by more events. Default: 10000.
	BatchSize int
	// PollInterval is how long Run sleeps when nothing is pending, and how
	// often it starts a step while events arrive (a step that took longer is
	// followed at once). Default: 200ms.
	PollInterval time.Duration
	// CheckpointInterval (N seconds) and CheckpointEvents (M events): a log
	// gets a new signed checkpoint when it has grown by CheckpointEvents
	// leaves since its last one, or has grown at all and its last one is
	// CheckpointInterval old. Defaults: 10s and 1000.
	CheckpointInterval time.Duration
	CheckpointEvents   int64
	// Now is the clock of checkpoints and lag. Default: time.Now.
	Now func() time.Time
	// OnStep, when set, is called after every step that sealed something or
	// signed a checkpoint, e.g. to export the sealing lag as a metric.
	OnStep func(Stats)
	// OnError, when set, receives the errors Run survives (it retries).
	OnError func(error)
	// Witnesses receive every checkpoint and deployment head signed
	// (head_sealer.go, witness.go); one that fails is retried at the next
	// step. Default: none.
	Witnesses []Witness
	// HeadInterval is the least time between two deployment heads signed
	// while checkpoints are being signed (SealAll's last step always signs
	// one). A head lists every log (about 60 bytes each, kept in the store
	// and on every witness), so with many tenants it is the head's size
	// times the rate that counts; each checkpoint still reaches the
	// witnesses at once. Default: 1 minute.
	HeadInterval time.Duration
	// WitnessQueue bounds the checkpoints and heads kept for the witnesses
	// while one is down. Past it the sealer drops those a later queued one
	// supersedes (an older checkpoint of the same log, an older head: both
	// are cumulative), then the oldest; it says so through OnError and
	// counts them (WitnessBacklog). The store keeps every one of them, and
	// the next head commits to every log. Default: 10,000.
	WitnessQueue int
}

// Stats describes one Step (or, from SealAll, all of them).
type Stats struct {
	Epoch       int64
	Sealed      int // events sealed
	Logs        int // distinct logs extended
	Checkpoints int // checkpoints signed
	// Lag is how long the oldest event sealed had waited: the sealer's clock
	// minus its RecordedAt. Zero when nothing was sealed.
	Lag time.Duration

	extended []string            // names of the logs this step extended
	seen     map[string]struct{} // across steps, so SealAll counts each log once
}

func (s *Stats) add(o Stats) {
	s.Epoch = o.Epoch
	s.Sealed += o.Sealed
	if s.seen == nil {
		s.seen = make(map[string]struct{})
	}
	for _, name := range o.extended {
		s.seen[name] = struct{}{}
	}
	s.Logs = len(s.seen)
	s.Checkpoints += o.Checkpoints
	s.Lag = max(s.Lag, o.Lag)
}

// Sealer turns pending events into leaves and signs checkpoints. Many
// sealers may run against one store; the lease makes one of them the leader
// and the others wait. Its methods must not be called concurrently.
type Sealer struct {
	store Store
	cfg   Config

	mu    sync.Mutex
	epoch int64
	logs  map[string]*logState // known logs, valid for epoch
	hd    headState            // the deployment head and witness queue (head_sealer.go)
	// next is the batch read ahead while the last step's Seal committed
	// (readAhead), for a step that follows at once; nil when there is none.
	next []trail.Event

	// leadUntil is when the lease last taken by this sealer runs out (unix
	// nanoseconds of Config.Now), 0 when it does not hold it: Leading reads it
	// from other goroutines.
	leadUntil atomic.Int64
}

// Leading reports whether this sealer held the lease at its last step and
// that lease has not run out yet. Work that must run on one replica only,
// on the same leader as the sealer (scheduled retention), asks it.
func (s *Sealer) Leading() bool {
	u := s.leadUntil.Load()
	return u != 0 && s.cfg.Now().UnixNano() < u
}

type logState struct {
	size   int64
	cpSize int64
	cpTime time.Time
	// edge holds, by stored hash index, the hashes of the complete subtrees
	// the log's tree is made of (edgeIndexes(size)): all that extending the
	// tree and computing its root read, so the sealer never reads the tree
	// back. nil until the sealer has read it (readEdges) since it loaded the
	// log's state.
	edge map[int64]tlog.Hash
}

// NewSealer returns a sealer of store.
func NewSealer(store Store, cfg *Config) (*Sealer, error) {
	if store == nil {
		return nil, errors.New("trailseal: NewSealer: store is nil")
	}
	if cfg == nil || cfg.Signer == nil {
		return nil, errors.New("trailseal: NewSealer: Config.Signer is required")
	}
	c := *cfg
	if c.Origin == "" {
		c.Origin = DefaultOrigin
	}
	if !validOrigin(c.Origin) {
		return nil, fmt.Errorf("trailseal: NewSealer: invalid origin %q", clip(c.Origin))
	}
	if c.Holder == "" {
		host, _ := os.Hostname()
		var b [4]byte
		rand.Read(b[:])
		c.Holder = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if c.LeaseName == "" {
		c.LeaseName = DefaultLeaseName
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 15 * time.Second
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 10000
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 200 * time.Millisecond
	}
	if c.WitnessQueue <= 0 {
		c.WitnessQueue = 10_000
	}
	if c.CheckpointInterval <= 0 {
		c.CheckpointInterval = 10 * time.Second
	}
	if c.CheckpointEvents <= 0 {
		c.CheckpointEvents = 1000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.HeadInterval <= 0 {
		c.HeadInterval = time.Minute
	}
	return &Sealer{store: store, cfg: c}, nil
}

// Holder returns the name this sealer holds the lease under.
func (s *Sealer) Holder() string { return s.cfg.Holder }

// Step makes one pass: it takes or renews the lease (ErrNotLeader if another
// sealer holds it), seals up to BatchSize pending events in one transaction,
// and signs the checkpoints that are due.
func (s *Sealer) Step(ctx context.Context) (Stats, error) {
	return s.step(ctx, false, false)
}

// step is Step; with ahead set, the caller runs the next step at once if
// this one finds work (Run while behind, SealAll), so the step seals the
// batch read ahead by the one before, if any, and reads the following one
// while its own commits (PendingSkipper).
func (s *Sealer) step(ctx context.Context, forceCheckpoints, ahead bool) (Stats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	taken := s.cfg.Now()
	epoch, ok, err := s.store.Lease(ctx, s.cfg.LeaseName, s.cfg.Holder, s.cfg.LeaseTTL)
	if err != nil {
		s.leadUntil.Store(0)
		return Stats{}, fmt.Errorf("trailseal: lease: %w", err)
	}
	if !ok {
		s.leadUntil.Store(0)
		s.logs, s.next = nil, nil
		return Stats{}, ErrNotLeader
	}
	s.leadUntil.Store(taken.Add(s.cfg.LeaseTTL).UnixNano())
	if epoch != s.epoch || s.logs == nil {
		s.next = nil // read under another epoch, or before a failed step
		if err := s.load(ctx); err != nil {
			return Stats{}, err
		}
		s.epoch = epoch
		s.hd.loaded = false
	}
	fence := Fence{Lease: s.cfg.LeaseName, Epoch: epoch}
	st, err := s.seal(ctx, fence, ahead)
	if err != nil {
		s.logs = nil // reload on the next step
		return st, err
	}
	n, err := s.checkpoint(ctx, fence, forceCheckpoints)
	st.Checkpoints = n
	if err != nil {
		s.logs = nil
		return st, err
	}
	if err := s.afterCheckpoints(ctx, fence, forceCheckpoints); err != nil {
		return st, err
	}
	if s.cfg.OnStep != nil && (st.Sealed > 0 || st.Checkpoints > 0) {
		s.cfg.OnStep(st)
	}
	return st, nil
}

// load reads every log's size and latest checkpoint: a new leader does not
// know what its predecessor left due.
func (s *Sealer) load(ctx context.Context) error {
	if ls, ok := s.store.(LogStater); ok {
		states, err := ls.LogStates(ctx)
		if err != nil {
			return fmt.Errorf("trailseal: log states: %w", err)
		}
		s.logs = make(map[string]*logState, len(states))
		for _, st := range states {
			s.logs[st.Log] = &logState{size: st.Size, cpSize: st.CheckpointSize, cpTime: st.CheckpointTime}
		}
		return nil
	}
	names, err := s.store.Logs(ctx)
	if err != nil {
		return fmt.Errorf("trailseal: logs: %w", err)
	}
	s.logs = make(map[string]*logState, len(names))
	for _, name := range names {
		if _, err := s.state(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

func (s *Sealer) state(ctx context.Context, log string) (*logState, error) {
	if st, ok := s.logs[log]; ok {
		return st, nil
	}
	size, err := s.store.TreeSize(ctx, log)
	if err != nil {
		return nil, fmt.Errorf("trailseal: tree size of %q: %w", log, err)
	}
	st := &logState{size: size}
	cp, err := s.store.LatestCheckpoint(ctx, log)
	switch {
	case err == nil:
		st.cpSize, st.cpTime = cp.Size, cp.Time
	case !errors.Is(err, ErrNoCheckpoint):
		return nil, fmt.Errorf("trailseal: latest checkpoint of %q: %w", log, err)
	}
	s.logs[log] = st
	return st, nil
}

// edgeReader serves tlog's reads of a log's tree from the edge the sealer
// keeps (logState.edge), and reads what the edge lacks from the store,
// keeping it.
type edgeReader struct {
	ctx   context.Context
	store Store
	log   string
	st    *logState
}

func (r edgeReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var missing []int64
	for i, x := range indexes {
		h, ok := r.st.edge[x]
		if !ok {
			missing = append(missing, x)
		}
		out[i] = h
	}
	if len(missing) == 0 {
		return out, nil
	}
	hs, err := r.store.ReadHashes(r.ctx, r.log, missing)
	if err != nil {
		return nil, err
	}
	if r.st.edge == nil {
		r.st.edge = make(map[int64]tlog.Hash, len(missing))
	}
	for i, x := range missing {
		r.st.edge[x] = hs[i]
	}
	for i, x := range indexes {
		out[i] = r.st.edge[x]
	}
	return out, nil
}

// edgeIndexes returns the stored hash indexes of the complete subtrees a
// tree of n leaves is made of, one per bit set in n: the hashes
// tlog.TreeHash reads for its root, and tlog.StoredHashesForRecordHash
// for leaf n.
func edgeIndexes(n int64) []int64 {
	var out []int64
	for l := 62; l >= 0; l-- {
		if n>>l&1 == 1 {
			out = append(out, tlog.StoredHashIndex(l, n>>l-1))
		}
	}
	return out
}

// extend returns the stored hashes that leaf hash h adds to log's tree of n
// leaves (tlog.StoredHashesForRecordHash), and moves st's edge to n+1
// leaves: the subtrees the new leaf completes merge into one.
func (s *Sealer) extend(ctx context.Context, log string, st *logState, n int64, h tlog.Hash) ([]tlog.Hash, error) {
	hashes, err := tlog.StoredHashesForRecordHash(n, h, edgeReader{ctx, s.store, log, st})
	if err != nil {
		return nil, err
	}
	if st.edge == nil {
		st.edge = map[int64]tlog.Hash{}
	}
	top := len(hashes) - 1 // hashes[l] is the level-l hash; levels below top were merged
	for l := range top {
		delete(st.edge, tlog.StoredHashIndex(l, n>>l-1))
	}
	st.edge[tlog.StoredHashIndex(0, n)+int64(top)] = hashes[top]
	return hashes, nil
}

// readEdges fills, in one query where the store is a BatchReader, the edge
// of each of logs that the sealer has not read since it became leader: a
// new leader extends thousands of logs without one round trip per log.
// Hashes the store lacks are left out; the edge reader then asks for them
// (and reports the store's error).
func (s *Sealer) readEdges(ctx context.Context, logs []string) error {
	br, ok := s.store.(BatchReader)
	if !ok {
		return nil
	}
	var ranges []LogRange
	for _, log := range logs {
		st := s.logs[log]
		if st.edge != nil {
			continue
		}
		st.edge = map[int64]tlog.Hash{}
		for _, x := range edgeIndexes(st.size) {
			ranges = append(ranges, LogRange{Log: log, From: x, To: x + 1})
		}
	}
	if len(ranges) == 0 {
		return nil
	}
	hs, err := br.HashesOf(ctx, ranges)
	if err != nil {
		return fmt.Errorf("trailseal: read tree edges: %w", err)
	}
	for i, r := range ranges {
		if i < len(hs) && len(hs[i]) == 1 {
			s.logs[r.Log].edge[r.From] = hs[i][0]
		}
	}
	return nil
}

func (s *Sealer) seal(ctx context.Context, fence Fence, ahead bool) (Stats, error) {
	st := Stats{Epoch: fence.Epoch}
	evs, err := s.pending(ctx, ahead)
	if err != nil {
		return st, fmt.Errorf("trailseal: pending: %w", err)
	}
	if len(evs) == 0 {
		return st, nil
	}
	leaves := parallelLeafHashes(len(evs), func(i int) *trail.Event { return &evs[i] })
	// The batch's logs, in order of first appearance. A log the sealer did
	// not find when it loaded every log's state is new (any other sealer
	// writing since would have changed the epoch; Seal's size check is the
	// guard): empty, no checkpoint, nothing to read.
	sizes := map[string]*LogSize{}
	var order []string
	for i := range evs {
		log := LogName(evs[i].Tenant)
		if _, ok := sizes[log]; ok {
			continue
		}
		state, ok := s.logs[log]
		if !ok {
			state = &logState{edge: map[int64]tlog.Hash{}}
			s.logs[log] = state
		}
		sizes[log] = &LogSize{Log: log, OldSize: state.size, NewSize: state.size}
		order = append(order, log)
	}
	if err := s.readEdges(ctx, order); err != nil {
		return st, err
	}
	var batch SealBatch
	batch.Leaves = make([]Leaf, 0, len(evs))
	batch.Done = make([]uuid.UUID, 0, len(evs))
	batch.Hashes = make([]StoredHash, 0, 2*len(evs)+len(order))
	now := s.cfg.Now()
	for i := range evs {
		ev := &evs[i]
		log := LogName(ev.Tenant)
		ls := sizes[log]
		if err := leaves[i].err; err != nil {
			return st, err
		}
		h := leaves[i].hash
		hashes, err := s.extend(ctx, log, s.logs[log], ls.NewSize, h)
		if err != nil {
			return st, fmt.Errorf("trailseal: tree of %q: %w", log, err)
		}
		base := tlog.StoredHashIndex(0, ls.NewSize)
		for k, hh := range hashes {
			batch.Hashes = append(batch.Hashes, StoredHash{Log: log, Index: base + int64(k), Hash: hh})
		}
		batch.Leaves = append(batch.Leaves, Leaf{Log: log, Seq: ls.NewSize, EventID: ev.ID, Hash: h, OccurredAt: ev.OccurredAt})
		batch.Done = append(batch.Done, ev.ID)
		ls.NewSize++
		if lag := now.Sub(ev.RecordedAt); lag > st.Lag {
			st.Lag = lag
		}
	}
	for _, log := range order {
		batch.Sizes = append(batch.Sizes, *sizes[log])
	}
	if err := s.commit(ctx, fence, batch, ahead); err != nil {
		return st, fmt.Errorf("trailseal: seal: %w", err)
	}
	for _, log := range order {
		s.logs[log].size = sizes[log].NewSize
	}
	st.Sealed = len(batch.Leaves)
	st.Logs = len(order)
	st.extended = order
	return st, nil
}

// pending returns the batch a step seals: with ahead, what the last step
// read while it committed (s.next), topped up with what was queued since
// (only those events are read from the events table: the read ahead took
// the rest off the step), so that the batch is as fresh as a plain read;
// else the queue's head.
func (s *Sealer) pending(ctx context.Context, ahead bool) ([]trail.Event, error) {
	next := s.next
	s.next = nil
	ps, ok := s.store.(PendingSkipper)
	if !ahead || next == nil || !ok {
		return s.store.Pending(ctx, s.cfg.BatchSize)
	}
	if len(next) >= s.cfg.BatchSize {
		return next, nil
	}
	skip := make([]uuid.UUID, len(next))
	for i := range next {
		skip[i] = next[i].ID
	}
	more, err := ps.PendingExcept(ctx, s.cfg.BatchSize-len(next), skip)
	if err != nil {
		return nil, err
	}
	return append(next, more...), nil
}

// commit writes batch. With ahead, on a store that is a PendingSkipper,
// it reads the next batch meanwhile, without batch's events (still pending
// until the commit, and not after it): s.next, for the next step. What it
// reads is correct whether the read runs before, during or after the
// commit. A failed read ahead is dropped; the next step reads the queue
// itself, and reports the error if it persists.
func (s *Sealer) commit(ctx context.Context, fence Fence, batch SealBatch, ahead bool) error {
	ps, ok := s.store.(PendingSkipper)
	if !ahead || !ok {
		return s.store.Seal(ctx, fence, batch)
	}
	var (
		next    []trail.Event
		nextErr error
		read    sync.WaitGroup
	)
	read.Go(func() { next, nextErr = ps.PendingExcept(ctx, s.cfg.BatchSize, batch.Done) })
	err := s.store.Seal(ctx, fence, batch)
	read.Wait()
	if err == nil && nextErr == nil && len(next) > 0 {
		s.next = next
	}
	return err
}

// checkpoint signs and saves the checkpoints that are due (all logs that
// grew, when force is set): in one transaction where the store is a
// BatchCheckpointSaver. Roots come from the trees' edges, kept in memory.
func (s *Sealer) checkpoint(ctx context.Context, fence Fence, force bool) (int, error) {
	now := s.cfg.Now()
	var due []string
	for log, st := range s.logs {
		if st.size <= st.cpSize {
			continue
		}
		if force || st.size-st.cpSize >= s.cfg.CheckpointEvents || now.Sub(st.cpTime) >= s.cfg.CheckpointInterval {
			due = append(due, log)
		}
	}
	if len(due) == 0 {
		return 0, nil
	}
	slices.Sort(due)
	if err := s.readEdges(ctx, due); err != nil {
		return 0, err
	}
	cps := make([]Checkpoint, 0, len(due))
	for _, log := range due {
		st := s.logs[log]
		root, err := tlog.TreeHash(st.size, edgeReader{ctx, s.store, log, st})
		if err != nil {
			return 0, fmt.Errorf("trailseal: root of %q: %w", log, err)
		}
		cp, err := SignCheckpoint(s.cfg.Signer, s.cfg.Origin, log, st.size, root, now)
		if err != nil {
			return 0, err
		}
		cps = append(cps, cp)
	}
	saved := func(cp Checkpoint) {
		st := s.logs[cp.Log]
		st.cpSize, st.cpTime = cp.Size, cp.Time
		s.checkpointed(cp)
	}
	if bs, ok := s.store.(BatchCheckpointSaver); ok {
		if err := bs.SaveCheckpoints(ctx, fence, cps); err != nil {
			return 0, fmt.Errorf("trailseal: save %d checkpoints: %w", len(cps), err)
		}
		for _, cp := range cps {
			saved(cp)
		}
		return len(cps), nil
	}
	for i, cp := range cps {
		if err := s.store.SaveCheckpoint(ctx, fence, cp); err != nil {
			return i, fmt.Errorf("trailseal: save checkpoint of %q: %w", cp.Log, err)
		}
		saved(cp)
	}
	return len(cps), nil
}

// SealAll seals every pending event and then signs a checkpoint for every
// log that grew since its last one: what `trail seal` does once. It fails
// with ErrNotLeader when another sealer holds the lease.
func (s *Sealer) SealAll(ctx context.Context) (Stats, error) {
	var total Stats
	for {
		st, err := s.step(ctx, false, true)
		total.add(st)
		if err != nil {
			return total, err
		}
		if st.Sealed < s.cfg.BatchSize {
			break
		}
	}
	st, err := s.step(ctx, true, false) // reads the queue afresh: nothing left behind
	total.add(st)
	return total, err
}

// Run seals until ctx is done, then releases the lease so that a successor
// need not wait for it to expire. While events arrive, a step starts every
// PollInterval, or at once when the last one sealed a full batch or took
// longer than that; when nothing is pending it sleeps PollInterval. A step
// that follows the last at once seals the batch the last one read while
// it committed, and reads the next the same way, on a store that is a
// PendingSkipper (a step that follows a wait reads the queue afresh). Errors
// are passed to OnError and retried after PollInterval; Run returns nil
// when ctx is done.
func (s *Sealer) Run(ctx context.Context) error {
	defer s.Release(context.WithoutCancel(ctx))
	defer s.startWitnesses(ctx)() // head_sealer.go: witnesses are written beside the steps
	ahead := false                // the last step was followed at once: the sealer is behind
	for {
		began := time.Now()
		st, err := s.step(ctx, false, ahead)
		wait := s.cfg.PollInterval
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrNotLeader):
			wait = max(s.cfg.PollInterval, s.cfg.LeaseTTL/3)
		case err != nil:
			if s.cfg.OnError != nil {
				s.cfg.OnError(err)
			}
		default:
			wait = nextWait(s.cfg, st, time.Since(began))
		}
		ahead = err == nil && wait == 0
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
	}
}

// nextWait is how long Run waits after a step that sealed st.Sealed events
// in took: PollInterval when nothing was pending; nothing when the batch was
// full (more is waiting); else the rest of PollInterval since the step
// began, so that while events arrive a step starts every PollInterval, and
// at once after a step that took longer than that (a backlog built up
// during it).
func nextWait(cfg Config, st Stats, took time.Duration) time.Duration {
	switch {
	case st.Sealed == 0:
		return cfg.PollInterval
	case st.Sealed >= cfg.BatchSize:
		return 0
	}
	return max(cfg.PollInterval-took, 0)
}

// Release gives up the lease if this sealer holds it.
func (s *Sealer) Release(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s.leadUntil.Store(0)
	_, _, err := s.store.Lease(ctx, s.cfg.LeaseName, s.cfg.Holder, 0)
	return err
}

package trailseal

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// headState is what the sealer knows of the deployment head: every log's
// newest checkpoint (the head's entries), whether one changed since the
// last head, and the objects its witnesses have not taken yet.
type headState struct {
	loaded  bool
	entries map[string]HeadEntry
	dirty   bool
	last    time.Time // when the last head was signed

	// The witness queue: filled by steps, emptied by flushWitnesses, in
	// the step itself or, under Run, by a goroutine of its own (wake), so
	// that a slow witness never holds up sealing.
	qmu     sync.Mutex
	queue   []witnessObject
	dropped int64      // objects dropped from a full queue, ever
	queued  int        // objects enqueued ever
	woken   int        // queued when the goroutine was last woken: a step wakes it only for new objects
	flushMu sync.Mutex // one flush at a time, in queue order
	wake    chan struct{}
}

type witnessObject struct {
	key  string
	body []byte
	log  string // a checkpoint's log; "" for a head
}

// checkpointed records a checkpoint the sealer saved: the head's entry of
// its log moves, and the checkpoint goes to the witnesses.
func (s *Sealer) checkpointed(cp Checkpoint) {
	if s.hd.entries == nil {
		s.hd.entries = map[string]HeadEntry{}
	}
	s.hd.entries[cp.Log] = HeadEntry{Log: cp.Log, Size: cp.Size, Root: cp.Root}
	s.hd.dirty = true
	s.enqueue(witnessObject{WitnessCheckpointKey(cp), []byte(cp.Note), cp.Log})
}

func (s *Sealer) enqueue(o witnessObject) {
	if len(s.cfg.Witnesses) == 0 {
		return
	}
	s.hd.qmu.Lock()
	s.hd.queue = append(s.hd.queue, o)
	s.hd.queued++
	var dropped int
	if len(s.hd.queue) > s.cfg.WitnessQueue {
		s.hd.queue, dropped = shed(s.hd.queue, s.cfg.WitnessQueue)
		s.hd.dropped += int64(dropped)
	}
	s.hd.qmu.Unlock()
	if dropped > 0 && s.cfg.OnError != nil {
		s.cfg.OnError(fmt.Errorf("trailseal: witness queue full (%d objects): dropped %d checkpoints or heads the witnesses will not get; "+
			"the store keeps them, and later checkpoints and heads (cumulative) supersede them", s.cfg.WitnessQueue, dropped))
	}
}

// shed cuts q to at most max objects: first those a later object in q
// supersedes (an older checkpoint of the same log, an older head), then the
// oldest. It returns how many it dropped.
func shed(q []witnessObject, max int) ([]witnessObject, int) {
	n := len(q)
	keep := make([]bool, n)
	seen := map[string]bool{}
	head := false
	kept := 0
	for i := n - 1; i >= 0; i-- {
		switch o := q[i]; {
		case o.log == "" && !head:
			head, keep[i] = true, true
		case o.log != "" && !seen[o.log]:
			seen[o.log], keep[i] = true, true
		}
		if keep[i] {
			kept++
		}
	}
	out := make([]witnessObject, 0, min(kept, max))
	for i, o := range q {
		if keep[i] && kept <= max {
			out = append(out, o)
		} else if keep[i] {
			kept-- // the oldest of those kept go first
		}
	}
	return out, n - len(out)
}

// WitnessBacklog reports the checkpoints and heads waiting for the
// witnesses, and how many a full queue dropped since the sealer started.
func (s *Sealer) WitnessBacklog() (waiting int, dropped int64) {
	s.hd.qmu.Lock()
	defer s.hd.qmu.Unlock()
	return len(s.hd.queue), s.hd.dropped
}

// afterCheckpoints signs and saves a deployment head when a checkpoint was
// signed since the last one (at most every HeadInterval, always when force
// is set), then hands what is queued to the witnesses. A store that keeps
// no heads (not a HeadStore) gets none, but its checkpoints are witnessed.
func (s *Sealer) afterCheckpoints(ctx context.Context, fence Fence, force bool) error {
	hs, ok := s.store.(HeadStore)
	if ok {
		if err := s.loadHead(ctx, hs); err != nil {
			return err
		}
		now := s.cfg.Now()
		if s.hd.dirty && len(s.hd.entries) > 0 && (force || now.Sub(s.hd.last) >= s.cfg.HeadInterval) {
			entries := make([]HeadEntry, 0, len(s.hd.entries))
			for _, e := range s.hd.entries {
				entries = append(entries, e)
			}
			h, err := SignHead(s.cfg.Signer, s.cfg.Origin, entries, now)
			if err != nil {
				return err
			}
			if err := hs.SaveHead(ctx, fence, h); err != nil {
				return fmt.Errorf("trailseal: save head: %w", err)
			}
			s.hd.dirty, s.hd.last = false, now
			s.enqueue(witnessObject{WitnessHeadKey(h), MarshalHead(h), ""})
		}
	}
	if s.hd.wake != nil { // under Run: the witness goroutine delivers
		s.hd.qmu.Lock()
		fresh := s.hd.queued > s.hd.woken
		s.hd.woken = s.hd.queued
		s.hd.qmu.Unlock()
		if !fresh {
			return nil
		}
		select {
		case s.hd.wake <- struct{}{}:
		default:
		}
		return nil
	}
	return s.flushWitnesses(ctx)
}

// startWitnesses starts, for Run, the goroutine that delivers queued
// objects to the witnesses whenever a step queued some; stop makes a last
// attempt (up to 10 s) for what the final steps signed, and waits for it.
func (s *Sealer) startWitnesses(ctx context.Context) (stop func()) {
	if len(s.cfg.Witnesses) == 0 {
		return func() {}
	}
	wake := make(chan struct{}, 1)
	s.mu.Lock()
	s.hd.wake = wake
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		var retry <-chan time.Time // set while a flush failed: try again in 5 s
		for {
			select {
			case <-retry:
			case <-ctx.Done():
				fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				if err := s.flushWitnesses(fctx); err != nil && s.cfg.OnError != nil {
					s.cfg.OnError(err)
				}
				cancel()
				return
			case <-wake:
			}
			retry = nil
			if err := s.flushWitnesses(ctx); err != nil && ctx.Err() == nil {
				if s.cfg.OnError != nil {
					s.cfg.OnError(err)
				}
				retry = time.After(5 * time.Second)
			}
		}
	}()
	return func() {
		<-done
		s.mu.Lock()
		s.hd.wake = nil
		s.mu.Unlock()
	}
}

// loadHead fills the head's entries once per leadership: the store's newest
// head, corrected by the newest checkpoint of every log whose checkpoint
// size differs from its entry (a head the predecessor did not get to sign,
// or a store that had none). The store's newest head goes to the
// witnesses again (Put is idempotent), so that one lost with a crashed
// predecessor's queue still arrives.
func (s *Sealer) loadHead(ctx context.Context, hs HeadStore) error {
	if s.hd.loaded {
		return nil
	}
	s.hd.entries = map[string]HeadEntry{}
	h, err := hs.LatestHead(ctx)
	switch {
	case err == nil:
		for _, e := range h.Entries {
			s.hd.entries[e.Log] = e
		}
		s.hd.last = h.Time
		s.enqueue(witnessObject{WitnessHeadKey(h), MarshalHead(h), ""})
	case !errors.Is(err, ErrNoHead):
		return fmt.Errorf("trailseal: latest head: %w", err)
	}
	for log, st := range s.logs {
		if st.cpSize == 0 || s.hd.entries[log].Size == st.cpSize {
			continue
		}
		cp, err := s.store.LatestCheckpoint(ctx, log)
		if err != nil {
			return fmt.Errorf("trailseal: latest checkpoint of %q: %w", log, err)
		}
		s.hd.entries[log] = HeadEntry{Log: log, Size: cp.Size, Root: cp.Root}
		s.hd.dirty = true
	}
	s.hd.loaded = true
	return nil
}

// flushWitnesses writes every queued object to every witness, in order;
// what a witness refused stays queued for the next step (a conflict is
// dropped: retrying cannot succeed, and verify reports it).
func (s *Sealer) flushWitnesses(ctx context.Context) error {
	s.hd.flushMu.Lock()
	defer s.hd.flushMu.Unlock()
	var errs []string
	for {
		s.hd.qmu.Lock()
		if len(s.hd.queue) == 0 {
			s.hd.qmu.Unlock()
			break
		}
		o := s.hd.queue[0]
		s.hd.qmu.Unlock()
		failed := false
		for _, w := range s.cfg.Witnesses {
			if err := w.Put(ctx, o.key, o.body); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", w, err))
				if !errors.Is(err, ErrWitnessConflict) {
					failed = true
				}
			}
		}
		if failed {
			break
		}
		s.hd.qmu.Lock()
		if len(s.hd.queue) > 0 && s.hd.queue[0].key == o.key { // a full queue may have dropped it meanwhile
			s.hd.queue = s.hd.queue[1:]
		}
		s.hd.qmu.Unlock()
	}
	if len(errs) > 0 {
		s.hd.qmu.Lock()
		n := len(s.hd.queue)
		s.hd.qmu.Unlock()
		return fmt.Errorf("trailseal: witness (%d objects waiting): %s", n, strings.Join(errs, "; "))
	}
	return nil
}

package trailseal

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
	queue   []witnessObject
}

type witnessObject struct {
	key  string
	body []byte
}

// checkpointed records a checkpoint the sealer saved: the head's entry of
// its log moves, and the checkpoint goes to the witnesses.
func (s *Sealer) checkpointed(cp Checkpoint) {
	if s.hd.entries == nil {
		s.hd.entries = map[string]HeadEntry{}
	}
	s.hd.entries[cp.Log] = HeadEntry{Log: cp.Log, Size: cp.Size, Root: cp.Root}
	s.hd.dirty = true
	if len(s.cfg.Witnesses) > 0 {
		s.hd.queue = append(s.hd.queue, witnessObject{WitnessCheckpointKey(cp), []byte(cp.Note)})
	}
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
			if len(s.cfg.Witnesses) > 0 {
				s.hd.queue = append(s.hd.queue, witnessObject{WitnessHeadKey(h), MarshalHead(h)})
			}
		}
	}
	return s.flushWitnesses(ctx)
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
		if len(s.cfg.Witnesses) > 0 {
			s.hd.queue = append(s.hd.queue, witnessObject{WitnessHeadKey(h), MarshalHead(h)})
		}
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
	if len(s.hd.queue) == 0 {
		return nil
	}
	var errs []string
	for len(s.hd.queue) > 0 {
		o := s.hd.queue[0]
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
		s.hd.queue = s.hd.queue[1:]
	}
	if len(errs) > 0 {
		return fmt.Errorf("trailseal: witness (%d objects waiting): %s", len(s.hd.queue), strings.Join(errs, "; "))
	}
	return nil
}

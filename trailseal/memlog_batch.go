package trailseal

import (
	"context"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"
)

// MemLog implements BatchReader by looping over its single-log methods, so
// that the suite covers Verify's grouped read path on the reference store
// (and plain wrappers cover the per-log path).
var (
	_ BatchReader          = (*MemLog)(nil)
	_ BatchCheckpointSaver = (*MemLog)(nil)
)

// SaveCheckpoints implements BatchCheckpointSaver: all or none.
func (m *MemLog) SaveCheckpoints(ctx context.Context, fence Fence, cps []Checkpoint) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fenced(fence) {
		return ErrFenced
	}
	for _, cp := range cps {
		m.cps[cp.Log] = append(m.cps[cp.Log], cp)
	}
	return nil
}

// CheckpointsOf implements BatchReader.
func (m *MemLog) CheckpointsOf(ctx context.Context, logs []string) (map[string][]Checkpoint, error) {
	out := make(map[string][]Checkpoint, len(logs))
	for _, log := range logs {
		cps, err := m.Checkpoints(ctx, log)
		if err != nil {
			return nil, err
		}
		if len(cps) > 0 {
			out[log] = cps
		}
	}
	return out, nil
}

// TreeSizes implements BatchReader.
func (m *MemLog) TreeSizes(ctx context.Context, logs []string) (map[string]int64, error) {
	out := make(map[string]int64, len(logs))
	for _, log := range logs {
		n, err := m.TreeSize(ctx, log)
		if err != nil {
			return nil, err
		}
		out[log] = n
	}
	return out, nil
}

// LeavesOf implements BatchReader.
func (m *MemLog) LeavesOf(ctx context.Context, ranges []LogRange) ([][]SealedEvent, error) {
	out := make([][]SealedEvent, len(ranges))
	for i, r := range ranges {
		ses, err := m.Leaves(ctx, r.Log, r.From, r.To)
		if err != nil {
			return nil, err
		}
		out[i] = ses
	}
	return out, nil
}

// HashesOf implements BatchReader.
func (m *MemLog) HashesOf(ctx context.Context, ranges []LogRange) ([][]tlog.Hash, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([][]tlog.Hash, len(ranges))
	for i, r := range ranges {
		hs := make([]tlog.Hash, 0, r.To-r.From)
		for x := r.From; x < r.To; x++ {
			h, ok := m.hashes[r.Log][x]
			if !ok {
				hs = nil
				break
			}
			hs = append(hs, h)
		}
		out[i] = hs
	}
	return out, nil
}

// UnsealedOf implements BatchReader.
func (m *MemLog) UnsealedOf(ctx context.Context, logs []string) (map[string][]uuid.UUID, error) {
	out := make(map[string][]uuid.UUID, len(logs))
	for _, log := range logs {
		ids, err := m.Unsealed(ctx, log)
		if err != nil {
			return nil, err
		}
		if len(ids) > 0 {
			out[log] = ids
		}
	}
	return out, nil
}

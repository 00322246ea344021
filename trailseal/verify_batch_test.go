package trailseal_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
	"github.com/trailhq/trail/trailseal/sealtest"
)

// purgeMem is a MemLog that records purges, as the SQL stores' retention
// does, so that the many-logs suite covers purged ranges read per group.
type purgeMem struct {
	*trailseal.MemLog
	mu     sync.Mutex
	purged map[string][]trailseal.SeqRange
}

func (p *purgeMem) PurgedRanges(_ context.Context, log string) ([]trailseal.SeqRange, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]trailseal.SeqRange(nil), p.purged[log]...), nil
}

func (p *purgeMem) PurgedRangesOf(ctx context.Context, logs []string) (map[string][]trailseal.SeqRange, error) {
	out := map[string][]trailseal.SeqRange{}
	for _, log := range logs {
		rs, _ := p.PurgedRanges(ctx, log)
		if len(rs) > 0 {
			out[log] = rs
		}
	}
	return out, nil
}

func (p *purgeMem) TamperPurge(ctx context.Context, log string, seqs []int64, ids []uuid.UUID) error {
	for _, id := range ids {
		if err := p.TamperDeleteEvent(ctx, id); err != nil {
			return err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range seqs {
		p.purged[log] = append(p.purged[log], trailseal.SeqRange{From: s, To: s + 1})
	}
	return nil
}

var (
	_ trailseal.BatchReader        = (*purgeMem)(nil)
	_ trailseal.BatchPurgeRecorder = (*purgeMem)(nil)
	_ sealtest.PurgeTamperer       = (*purgeMem)(nil)
)

func TestVerifyManyLogs(t *testing.T) {
	t.Parallel()
	t.Run("MemLog", func(t *testing.T) {
		t.Parallel()
		sealtest.RunManyLogs(t, newMemLog)
	})
	t.Run("purges", func(t *testing.T) {
		t.Parallel()
		sealtest.RunManyLogs(t, func(t *testing.T) sealtest.Instance {
			p := &purgeMem{MemLog: trailseal.NewMemLog(), purged: map[string][]trailseal.SeqRange{}}
			return sealtest.Instance{
				Store: p,
				Append: func(ctx context.Context, evs []trail.Event) error {
					_, err := p.Append(ctx, evs)
					return err
				},
				Tamper: p,
			}
		})
	})
}

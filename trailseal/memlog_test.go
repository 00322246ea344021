package trailseal_test

import (
	"context"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
	"github.com/trailhq/trail/trailseal/sealtest"
)

func newMemLog(t *testing.T) sealtest.Instance {
	m := trailseal.NewMemLog()
	return sealtest.Instance{
		Store: m,
		Append: func(ctx context.Context, evs []trail.Event) error {
			_, err := m.Append(ctx, evs)
			return err
		},
		Tamper: m,
	}
}

func TestMemLogConformance(t *testing.T) {
	t.Parallel()
	sealtest.Run(t, newMemLog)
}

// plainStore hides MemLog's optional interfaces, so the suite also covers
// the sealer's fallback paths.
type plainStore struct{ trailseal.Store }

func TestMemLogConformancePlain(t *testing.T) {
	t.Parallel()
	sealtest.Run(t, func(t *testing.T) sealtest.Instance {
		in := newMemLog(t)
		in.Store = plainStore{in.Store}
		return in
	})
}

package trailseal_test

import (
	"testing"

	"github.com/trailhq/trail/trailseal/sealtest"
)

// TestMemLogSealerScale runs the sealer-scale suite on MemLog, and with its
// optional interfaces hidden (the sealer then reads each tree's edge from
// the store log by log, and saves checkpoints one by one).
func TestMemLogSealerScale(t *testing.T) {
	t.Parallel()
	t.Run("MemLog", func(t *testing.T) {
		t.Parallel()
		sealtest.RunSealerScale(t, newMemLog)
	})
	t.Run("plain", func(t *testing.T) {
		t.Parallel()
		sealtest.RunSealerScale(t, func(t *testing.T) sealtest.Instance {
			in := newMemLog(t)
			in.Store = plainStore{in.Store}
			return in
		})
	})
}

package trailseal_test

import (
	"context"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
	"github.com/trailhq/trail/trailseal/sealtest"
)

// BenchmarkScale grows a MemLog to 100k and 1M events (TRAIL_SCALE_SIZES)
// and times sealing the backlog and verifying everything at each size
// against single-core SHA-256 (sealtest.BenchScale).
//
//	go test -run '^$' -bench Scale -benchtime 1x ./trailseal/
func BenchmarkScale(b *testing.B) {
	m := trailseal.NewMemLog()
	sealtest.BenchScale(b, m, func(ctx context.Context, evs []trail.Event) error {
		_, err := m.Append(ctx, evs)
		return err
	})
}

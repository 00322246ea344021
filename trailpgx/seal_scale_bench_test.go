package trailpgx

import (
	"context"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal/sealtest"
)

// BenchmarkPgxSealScale grows a PostgreSQL store to 100k and 1M events
// (TRAIL_SCALE_SIZES) and times `trail seal` of the backlog and `trail
// verify` of everything at each size against single-core SHA-256
// (sealtest.BenchScale). Wall time includes the server's work; CPU is this
// process's only.
//
//	go test -run '^$' -bench PgxSealScale -benchtime 1x -timeout 2h ./trailpgx/
func BenchmarkPgxSealScale(b *testing.B) {
	s := benchStore(b, benchPool(b))
	sealtest.BenchScale(b, s, func(ctx context.Context, evs []trail.Event) error {
		_, err := s.Append(ctx, evs)
		return err
	})
}

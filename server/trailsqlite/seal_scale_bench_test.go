package trailsqlite_test

import (
	"context"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal/sealtest"
)

// BenchmarkSQLiteSealScale grows a SQLite store to 100k and 1M events
// (TRAIL_SCALE_SIZES) and times `trail seal` of the backlog and `trail
// verify` of everything at each size against single-core SHA-256
// (sealtest.BenchScale).
//
//	cd server && go test -run '^$' -bench SQLiteSealScale -benchtime 1x -timeout 2h ./trailsqlite/
func BenchmarkSQLiteSealScale(b *testing.B) {
	s := openStore(b, nil)
	sealtest.BenchScale(b, s, func(ctx context.Context, evs []trail.Event) error {
		_, err := s.Append(ctx, evs)
		return err
	})
}

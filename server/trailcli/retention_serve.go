package trailcli

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailarchive"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailpgx"
)

// ServeRetentionFlags turn on scheduled retention in `trail serve`.
type ServeRetentionFlags struct {
	ArchiveFlags
	Retention         bool          `name:"retention" env:"TRAIL_RETENTION" help:"Run retention (archive, then purge, by policy) on a schedule in this server; one replica at a time holds its lease."`
	RetentionInterval time.Duration `name:"retention-interval" default:"1h" help:"How often scheduled retention runs."`
}

// startRetention starts the retention scheduler when --retention is set and
// returns what waits for it to stop (after ctx ends) and its counters for
// /metrics (nil when no scheduler runs). It needs the archive
// target and the checkpoint signing key, on either store; the Scheduler's
// lease lives in the store's lease table, so one replica runs it.
func (c *ServeCmd) startRetention(ctx context.Context, e *Env, store trail.Store) (wait func(), stats func() trailserver.RetentionStats, err error) {
	f := &c.ServeRetentionFlags
	if !f.Retention {
		return func() {}, nil, nil
	}
	if f.RetentionInterval <= 0 {
		return nil, nil, Usagef("--retention-interval must be positive")
	}
	var b trailarchive.Backend
	switch st := store.(type) {
	case *trailsqlite.Store:
		sb := trailarchive.NewSQLite(st)
		sb.Now = e.Now
		b = sb
	case *trailpgx.Store:
		pb := trailarchive.NewPostgres(st)
		pb.Now = e.Now
		b = pb
	default:
		fmt.Fprintf(e.Stderr, "trail: --retention: this store (%T) has no retention backend; nothing is purged\n", store)
		return func() {}, nil, nil
	}
	r, err := e.retentionRunner(&c.SigningFlags, &f.ArchiveFlags, true, b)
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	s := &trailarchive.Scheduler{Runner: r, Holder: fmt.Sprintf("%s:%d", host, os.Getpid()), Interval: f.RetentionInterval,
		OnError: func(err error) { fmt.Fprintf(e.Stderr, "trail: retention: %s\n", oneLine(err.Error())) }}
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx) })
	stats = func() trailserver.RetentionStats {
		x := s.Stats()
		return trailserver.RetentionStats{Runs: x.Runs, Archived: x.Archived, Purged: x.Purged, Failures: x.Failures}
	}
	return wg.Wait, stats, nil
}

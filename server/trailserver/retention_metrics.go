package trailserver

import (
	"fmt"
	"io"
)

// RetentionStats are the counters of a retention scheduler (trailarchive's
// Scheduler.Stats), exported at /metrics when Config.RetentionStats is set.
// The struct lives here so that trailserver does not depend on trailarchive.
type RetentionStats struct {
	// Runs is how many scheduled runs this replica started (it held the
	// lease), failed ones included; Failures how many of them failed.
	Runs, Failures int64
	// Archived and Purged count events archived and purged by those runs.
	Archived, Purged int64
}

// writeRetentionMetrics writes the retention counters, when a scheduler is
// configured.
func (s *Server) writeRetentionMetrics(w io.Writer) {
	if s.cfg.RetentionStats == nil {
		return
	}
	st := s.cfg.RetentionStats()
	counter := func(name, help string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
	}
	counter("trail_retention_runs_total", "Scheduled retention runs started by this replica, failed ones included.", st.Runs)
	counter("trail_retention_archived_events_total", "Events archived by scheduled retention.", st.Archived)
	counter("trail_retention_purged_events_total", "Events purged by scheduled retention.", st.Purged)
	counter("trail_retention_failures_total", "Scheduled retention runs that failed.", st.Failures)
}

// writeExtraMetrics writes the optional metrics: the sealer's (integrity.go)
// and the retention scheduler's.
func (s *Server) writeExtraMetrics(w io.Writer) {
	s.writeSealMetrics(w)
	s.writeRetentionMetrics(w)
	s.writeLogStreamMetrics(w) // logstreams.go
}

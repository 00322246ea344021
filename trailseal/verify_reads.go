package trailseal

import "runtime"

// ReadConcurrency is an optional Store interface: how many of Verify's
// reads (each followed by its re-encoding and hashing) may be in flight at
// once. The default, GOMAXPROCS, fits a store whose reads run on this
// process's cores (SQLite). A database server works on a read while this
// process waits for it, so more reads than cores overlap the two: on
// PostgreSQL, four reads against two on two cores cut `trail verify`'s wall
// time by 20–35 % (BENCHMARKS.md, issue 14 item 7). A value under
// GOMAXPROCS is ignored.
type ReadConcurrency interface {
	VerifyReads() int
}

// verifyReads is how many reads Verify keeps in flight over s.
func verifyReads(s Store) int {
	n := runtime.GOMAXPROCS(0)
	if rc, ok := s.(ReadConcurrency); ok {
		n = max(n, rc.VerifyReads())
	}
	return n
}

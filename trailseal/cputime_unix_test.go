//go:build unix

package trailseal_test

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time (user+system) the process has used, so that
// benchmarks on a shared, loaded machine can compare work rather than wall
// time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

//go:build linux

package trail

import (
	"bytes"
	"crypto/sha256"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// threadCPU returns the CPU time the calling OS thread has used
// (clock_gettime(CLOCK_THREAD_CPUTIME_ID), nanosecond resolution).
func threadCPU(b *testing.B) time.Duration {
	const clockThreadCPUTimeID = 3
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		b.Fatal(errno)
	}
	return time.Duration(ts.Nano())
}

// BenchmarkCanonicalCPU measures AppendCanonical (validating), the
// verifier's AppendCanonicalStored, SHA-256 of the same bytes and
// Normalize+Validate, interleaved in one loop, in CPU time of the benchmark's
// own thread rather than wall time, so that the numbers stay close to an idle
// machine's when other processes compete for the cores (the shared 2-core
// build machine).
func BenchmarkCanonicalCPU(b *testing.B) {
	for _, name := range []string{"typical", "large"} {
		ev := benchEvents(b)[name]
		c, err := ev.Canonical()
		if err != nil {
			b.Fatal(err)
		}
		if f, err := ev.AppendCanonicalStored(nil); err != nil || !bytes.Equal(f, c) {
			b.Fatalf("stored encoding differs: %v", err)
		}
		raw := ev
		raw.OccurredAt = raw.OccurredAt.Add(789)
		b.Run(name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			const batch = 256
			var canon, stored, hash, norm time.Duration
			buf := make([]byte, 0, 2*len(c))
			for b.Loop() {
				t0 := threadCPU(b)
				for range batch {
					buf, _ = ev.AppendCanonical(buf[:0])
				}
				t1 := threadCPU(b)
				for range batch {
					buf, _ = ev.AppendCanonicalStored(buf[:0])
				}
				t2 := threadCPU(b)
				for range batch {
					sha256.Sum256(c)
				}
				t3 := threadCPU(b)
				for range batch {
					e := raw
					_ = e.Normalize()
					_ = e.Validate()
				}
				t4 := threadCPU(b)
				canon += t1 - t0
				stored += t2 - t1
				hash += t3 - t2
				norm += t4 - t3
			}
			n := float64(b.N * batch)
			b.ReportMetric(float64(canon.Nanoseconds())/n, "canonical-cpu-ns")
			b.ReportMetric(float64(len(c))*n/canon.Seconds()/1e6, "canonical-MB/s")
			b.ReportMetric(float64(stored.Nanoseconds())/n, "stored-cpu-ns")
			b.ReportMetric(float64(hash.Nanoseconds())/n, "sha256-cpu-ns")
			b.ReportMetric(float64(norm.Nanoseconds())/n, "normalize+validate-cpu-ns")
			b.ReportMetric(float64(canon)/float64(hash), "canonical/sha256")
			b.ReportMetric(float64(stored)/float64(hash), "stored/sha256")
		})
	}
}

//go:build linux

package trail

import (
	"bytes"
	"crypto/sha256"
	"runtime"
	"testing"
	"time"
)

// BenchmarkCanonicalStoredCPU compares, in CPU time of the benchmark's own
// thread and interleaved in the same loop, AppendCanonical (validating),
// AppendCanonicalStored (the verifier's encoder) and SHA-256 of the same
// bytes.
func BenchmarkCanonicalStoredCPU(b *testing.B) {
	for _, name := range []string{"typical", "large"} {
		ev := benchEvents(b)[name]
		c, err := ev.Canonical()
		if err != nil {
			b.Fatal(err)
		}
		if f, err := ev.AppendCanonicalStored(nil); err != nil || !bytes.Equal(f, c) {
			b.Fatalf("stored encoding differs: %v", err)
		}
		b.Run(name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			const batch = 256
			var canon, stored, hash time.Duration
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
				canon += t1 - t0
				stored += t2 - t1
				hash += t3 - t2
			}
			n := float64(b.N * batch)
			b.ReportMetric(float64(canon.Nanoseconds())/n, "canonical-cpu-ns")
			b.ReportMetric(float64(stored.Nanoseconds())/n, "stored-cpu-ns")
			b.ReportMetric(float64(hash.Nanoseconds())/n, "sha256-cpu-ns")
			b.ReportMetric(float64(canon)/float64(hash), "canonical/sha256")
			b.ReportMetric(float64(stored)/float64(hash), "stored/sha256")
		})
	}
}

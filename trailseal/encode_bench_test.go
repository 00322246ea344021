package trailseal_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/tlog"
)

// BenchmarkEncodeHash is issue 14 item 7's in-memory ratio: re-encoding
// already-decoded events into their leaf preimages and hashing them, against
// single-core SHA-256 over the same preimage bytes, interleaved in one run
// (each iteration times all three, so machine load hits them alike). The
// leaf work runs as the sealer and verifier run it, on every core
// (GOMAXPROCS workers), and on one core for reference. Metrics:
// x-sha256 (wall, every core; the target is >= 0.5), x-sha256-1core (wall),
// x-sha256-cpu (CPU time of the parallel run: what one core's work costs).
// "verify" uses the non-validating encoder of verification, "seal" the
// validating one of the write path.
//
//	go test -run '^$' -bench EncodeHash -count 5 ./trailseal/
func BenchmarkEncodeHash(b *testing.B) {
	evs, raw, total := benchData(b)
	for _, mode := range []struct {
		name   string
		stored bool
	}{{"verify", true}, {"seal", false}} {
		b.Run(mode.name, func(b *testing.B) {
			if n := trailseal.LeafHashesParallel(evs, mode.stored); n != total {
				b.Fatalf("hashed %d bytes, the preimages are %d", n, total)
			}
			var shaT, parT, oneT, shaC, parC time.Duration
			var buf []byte
			one := evs[:len(evs)/runtime.GOMAXPROCS(0)] // one worker's share
			for b.Loop() {
				c0, t0 := cpuTime(), time.Now()
				sha256All(raw)
				shaT += time.Since(t0)
				shaC += cpuTime() - c0
				c1, t1 := cpuTime(), time.Now()
				trailseal.LeafHashesParallel(evs, mode.stored)
				parT += time.Since(t1)
				parC += cpuTime() - c1
				t2 := time.Now()
				for i := range one { // on this goroutine only
					var err error
					if mode.stored {
						buf, err = one[i].AppendCanonicalStored(buf[:0])
					} else {
						buf, err = one[i].AppendCanonical(buf[:0])
					}
					if err != nil {
						b.Fatal(err)
					}
					tlog.RecordHash(buf)
				}
				oneT += time.Since(t2) * time.Duration(len(evs)) / time.Duration(len(one))
			}
			b.SetBytes(total)
			b.ReportMetric(float64(shaT)/float64(parT), "x-sha256")
			b.ReportMetric(float64(shaT)/float64(oneT), "x-sha256-1core")
			if parC > 0 {
				b.ReportMetric(float64(shaC)/float64(parC), "x-sha256-cpu")
			}
			b.ReportMetric(float64(len(evs))*float64(b.N)/parT.Seconds(), "events/s")
		})
	}
}

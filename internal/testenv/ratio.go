package testenv

import (
	"testing"
	"time"
)

// InterleaveRatio runs plain(i) and other(i) alternately, once each per
// iteration of b.Loop, so that both see the same machine load, and reports
// other's throughput over plain's as "ratio" (wall time) and "cpu-ratio"
// (this process's CPU time: steadier on a shared machine, blind to a
// database server's work), with each side's events/s for n events a call
// under the metric names plainName+"-events/s" and otherName+"-events/s".
func InterleaveRatio(b *testing.B, n int, plainName, otherName string, plain, other func(i int) error) {
	b.Helper()
	var tPlain, tOther, cPlain, cOther time.Duration
	for i := 0; b.Loop(); i++ {
		c0, t0 := ProcessCPU(), time.Now()
		if err := plain(i); err != nil {
			b.Fatal(err)
		}
		c1, t1 := ProcessCPU(), time.Now()
		if err := other(i); err != nil {
			b.Fatal(err)
		}
		tPlain += t1.Sub(t0)
		tOther += time.Since(t1)
		c2 := ProcessCPU()
		cPlain += c1 - c0
		cOther += c2 - c1
	}
	b.ReportMetric(float64(tPlain)/float64(tOther), "ratio")
	b.ReportMetric(float64(cPlain)/float64(cOther), "cpu-ratio")
	b.ReportMetric(float64(b.N*n)/tPlain.Seconds(), plainName+"-events/s")
	b.ReportMetric(float64(b.N*n)/tOther.Seconds(), otherName+"-events/s")
}

package trailsqlite_test

import (
	"context"
	"crypto/sha256"
	"syscall"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailseal"
	"github.com/trailhq/trail/trailseal/sealtest"
	"golang.org/x/mod/sumdb/note"
)

const sealBenchEvents = 10000

func sealBenchData(b *testing.B) ([]trail.Event, [][]byte, int64) {
	b.Helper()
	evs := make([]trail.Event, sealBenchEvents)
	var raw [][]byte
	var total int64
	for i := range evs {
		evs[i] = sealtest.Event(b, []string{"acme", "globex", "initech", ""}[i%4], i)
		c, err := trailseal.CanonicalBytes(&evs[i])
		if err != nil {
			b.Fatal(err)
		}
		raw = append(raw, c)
		total += int64(len(c))
	}
	return evs, raw, total
}

func shaAll(raw [][]byte) time.Duration {
	t0 := time.Now()
	for _, c := range raw {
		sha256.Sum256(c)
	}
	return time.Since(t0)
}

// cpuTime is the process's user+system CPU time: on a machine shared with
// other work, CPU-time ratios are steadier than wall-clock ones.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func shaAllCPU(raw [][]byte) (wall, cpu time.Duration) {
	c0 := cpuTime()
	wall = shaAll(raw)
	return wall, cpuTime() - c0
}

// BenchmarkSQLiteSeal seals 10,000 pending events on the SQLite store
// (reading them back, hashing, writing leaves and stored hashes, one
// checkpoint per log) and compares with single-core SHA-256 over the same
// canonical bytes, measured in the same run: x-sha256 = seal speed /
// SHA-256 speed.
func BenchmarkSQLiteSeal(b *testing.B) {
	evs, raw, total := sealBenchData(b)
	signer, _ := sealtest.TestKey(b, "trail.test")
	ctx := context.Background()
	b.SetBytes(total)
	var sealT, shaT, sealCPU, shaCPU time.Duration
	for b.Loop() {
		b.StopTimer()
		s, err := trailsqlite.Open(ctx, b.TempDir()+"/trail.db", &trailsqlite.Config{Synchronous: "NORMAL"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Append(ctx, evs); err != nil {
			b.Fatal(err)
		}
		sl, err := trailseal.NewSealer(s, &trailseal.Config{Signer: signer, Origin: "trail.test"})
		if err != nil {
			b.Fatal(err)
		}
		w, c := shaAllCPU(raw)
		shaT, shaCPU = shaT+w, shaCPU+c
		b.StartTimer()
		c0, t0 := cpuTime(), time.Now()
		st, err := sl.SealAll(ctx)
		sealT += time.Since(t0)
		sealCPU += cpuTime() - c0
		if err != nil || st.Sealed != sealBenchEvents {
			b.Fatal(err, st)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(sealBenchEvents)*float64(b.N)/sealT.Seconds(), "events/s")
	b.ReportMetric(float64(shaT)/float64(sealT), "x-sha256")
	if sealCPU > 0 {
		b.ReportMetric(float64(shaCPU)/float64(sealCPU), "x-sha256-cpu")
	}
}

// BenchmarkSQLiteVerify verifies a sealed store of 10,000 events (what
// `trail verify` does) against single-core SHA-256 over the same bytes.
func BenchmarkSQLiteVerify(b *testing.B) {
	evs, raw, total := sealBenchData(b)
	signer, verifier := sealtest.TestKey(b, "trail.test")
	ctx := context.Background()
	s, err := trailsqlite.Open(ctx, b.TempDir()+"/trail.db", &trailsqlite.Config{Synchronous: "NORMAL"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(ctx, evs); err != nil {
		b.Fatal(err)
	}
	sl, _ := trailseal.NewSealer(s, &trailseal.Config{Signer: signer, Origin: "trail.test"})
	if _, err := sl.SealAll(ctx); err != nil {
		b.Fatal(err)
	}
	v := &trailseal.Verifier{Store: s, Verifiers: note.VerifierList(verifier), Origin: "trail.test"}
	b.SetBytes(total)
	loopVerify(b, v, raw, sealBenchEvents).report(b)
}

// verifyTimes is what a verify benchmark measured over its iterations.
type verifyTimes struct {
	ver, sha, verCPU, shaCPU time.Duration
	events                   int64
}

// loopVerify runs v.Verify once per iteration of b, timing it against
// single-core SHA-256 over raw (outside b's timer), and fails b unless
// every report is OK over want events.
func loopVerify(b *testing.B, v *trailseal.Verifier, raw [][]byte, want int64) verifyTimes {
	ctx := context.Background()
	var m verifyTimes
	for b.Loop() {
		b.StopTimer()
		w, c := shaAllCPU(raw)
		m.sha, m.shaCPU = m.sha+w, m.shaCPU+c
		b.StartTimer()
		c0, t0 := cpuTime(), time.Now()
		rep, err := v.Verify(ctx, nil)
		m.ver += time.Since(t0)
		m.verCPU += cpuTime() - c0
		if err != nil || !rep.OK() || rep.Events != want {
			b.Fatal(err, rep)
		}
		m.events += rep.Events
	}
	return m
}

// report reports verify's events/s, x-sha256 (SHA-256 wall time / verify
// wall time) and x-sha256-cpu (the same in CPU time over all cores).
func (m verifyTimes) report(b *testing.B) {
	b.ReportMetric(float64(m.events)/m.ver.Seconds(), "events/s")
	b.ReportMetric(float64(m.sha)/float64(m.ver), "x-sha256")
	if m.verCPU > 0 {
		b.ReportMetric(float64(m.shaCPU)/float64(m.verCPU), "x-sha256-cpu")
	}
}

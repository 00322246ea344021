package trailseal_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
	"github.com/trailhq/trail/trailseal/sealtest"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const benchEvents = 10000

func benchData(b *testing.B) ([]trail.Event, [][]byte, int64) {
	b.Helper()
	var evs []trail.Event
	for i := range benchEvents {
		evs = append(evs, sealtest.Event(b, []string{"acme", "globex", "initech", ""}[i%4], i))
	}
	var raw [][]byte
	var total int64
	for i := range evs {
		c, err := trailseal.CanonicalBytes(&evs[i])
		if err != nil {
			b.Fatal(err)
		}
		raw = append(raw, c)
		total += int64(len(c))
	}
	return evs, raw, total
}

func sealedMem(b *testing.B, evs []trail.Event) (*trailseal.MemLog, note.Verifiers) {
	b.Helper()
	ctx := context.Background()
	signer, verifier := sealtest.TestKey(b, "trail.test")
	m := trailseal.NewMemLog()
	if _, err := m.Append(ctx, evs); err != nil {
		b.Fatal(err)
	}
	s, err := trailseal.NewSealer(m, &trailseal.Config{Signer: signer, Origin: "trail.test"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.SealAll(ctx); err != nil {
		b.Fatal(err)
	}
	return m, note.VerifierList(verifier)
}

func sha256All(raw [][]byte) {
	for _, c := range raw {
		sha256.Sum256(c)
	}
}

// BenchmarkVerify compares a full verification (canonical re-encoding of
// every stored event, leaf hashing, tree rebuild, stored-tree and checkpoint
// checks) with plain single-core SHA-256 over the same canonical bytes, in
// the same run. The metric x-sha256 is verify speed / SHA-256 speed.
func BenchmarkVerify(b *testing.B) {
	evs, raw, total := benchData(b)
	m, keys := sealedMem(b, evs)
	v := &trailseal.Verifier{Store: m, Verifiers: keys, Origin: "trail.test"}
	ctx := context.Background()
	b.Run("sha256", func(b *testing.B) {
		b.SetBytes(total)
		for b.Loop() {
			sha256All(raw)
		}
	})
	// The floor of any verifier of this format: re-encode every event and
	// hash it, on one core, with no store and no tree (the encoder Verify uses).
	b.Run("canonical+leafhash", func(b *testing.B) {
		b.SetBytes(total)
		var buf []byte
		for b.Loop() {
			for i := range evs {
				var err error
				if buf, err = evs[i].AppendCanonicalStored(buf[:0]); err != nil {
					b.Fatal(err)
				}
				tlog.RecordHash(buf)
			}
		}
	})
	b.Run("verify", func(b *testing.B) {
		b.SetBytes(total)
		for b.Loop() {
			rep, err := v.Verify(ctx, nil)
			if err != nil || !rep.OK() {
				b.Fatal(err, rep.Problems)
			}
		}
	})
	b.Run("ratio", func(b *testing.B) {
		var shaT, verT, shaCPU, verCPU, floorCPU time.Duration
		var buf []byte
		for b.Loop() {
			c0, t0 := cpuTime(), time.Now()
			sha256All(raw)
			shaT += time.Since(t0)
			shaCPU += cpuTime() - c0
			c1 := cpuTime()
			for i := range evs { // the floor: canonical encoding + leaf hash
				buf, _ = evs[i].AppendCanonicalStored(buf[:0])
				tlog.RecordHash(buf)
			}
			floorCPU += cpuTime() - c1
			c2, t2 := cpuTime(), time.Now()
			if _, err := v.Verify(ctx, nil); err != nil {
				b.Fatal(err)
			}
			verT += time.Since(t2)
			verCPU += cpuTime() - c2
		}
		b.ReportMetric(float64(shaT)/float64(verT), "x-sha256")
		if verCPU > 0 {
			// The same ratio in CPU time: robust on a loaded machine, and
			// what a single core would give.
			b.ReportMetric(float64(shaCPU)/float64(verCPU), "x-sha256-cpu")
			b.ReportMetric(float64(floorCPU)/float64(verCPU), "x-floor-cpu")
		}
		b.ReportMetric(float64(benchEvents)*float64(b.N)/verT.Seconds(), "events/s")
	})
}

// BenchmarkSeal measures sealing throughput on MemLog: pending events to
// leaves, stored hashes and checkpoints, batches of 1000; x-sha256 compares
// it with SHA-256 over the same canonical bytes in the same run.
func BenchmarkSeal(b *testing.B) {
	evs, raw, total := benchData(b)
	signer, _ := sealtest.TestKey(b, "trail.test")
	ctx := context.Background()
	for _, batch := range []int{100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			b.SetBytes(total)
			var sealT, shaT, sealCPU, shaCPU time.Duration
			for b.Loop() {
				b.StopTimer()
				m := trailseal.NewMemLog()
				if _, err := m.Append(ctx, evs); err != nil {
					b.Fatal(err)
				}
				s, err := trailseal.NewSealer(m, &trailseal.Config{Signer: signer, BatchSize: batch})
				if err != nil {
					b.Fatal(err)
				}
				c0, t0 := cpuTime(), time.Now()
				sha256All(raw)
				shaT += time.Since(t0)
				shaCPU += cpuTime() - c0
				b.StartTimer()
				c1, t1 := cpuTime(), time.Now()
				st, err := s.SealAll(ctx)
				sealT += time.Since(t1)
				sealCPU += cpuTime() - c1
				if err != nil || st.Sealed != benchEvents {
					b.Fatal(err, st)
				}
			}
			b.ReportMetric(float64(benchEvents)*float64(b.N)/sealT.Seconds(), "events/s")
			b.ReportMetric(float64(shaT)/float64(sealT), "x-sha256")
			if sealCPU > 0 {
				b.ReportMetric(float64(shaCPU)/float64(sealCPU), "x-sha256-cpu")
			}
		})
	}
}

// BenchmarkSealLag runs a sealer (Run, 10 ms poll) while one writer appends
// events in batches of 50 as fast as MemLog takes them, and reports the
// sealing lag the sealer saw (now minus the oldest RecordedAt in each step).
func BenchmarkSealLag(b *testing.B) {
	evs, _, _ := benchData(b)
	for i := range evs {
		evs[i].RecordedAt = time.Time{} // stamped by the store at append
	}
	signer, _ := sealtest.TestKey(b, "trail.test")
	for b.Loop() {
		m := trailseal.NewMemLog()
		var maxLag time.Duration
		steps := make(chan trailseal.Stats, 1024)
		s, err := trailseal.NewSealer(m, &trailseal.Config{Signer: signer, PollInterval: 10 * time.Millisecond,
			OnStep: func(st trailseal.Stats) { steps <- st }})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- s.Run(ctx) }()
		sealed := 0
		for i := 0; i < len(evs); i += 50 {
			if _, err := m.Append(ctx, evs[i:i+50]); err != nil {
				b.Fatal(err)
			}
		drain:
			for {
				select {
				case st := <-steps:
					sealed += st.Sealed
					maxLag = max(maxLag, st.Lag)
				default:
					break drain
				}
			}
		}
		for sealed < len(evs) {
			st := <-steps
			sealed += st.Sealed
			maxLag = max(maxLag, st.Lag)
		}
		cancel()
		<-done
		b.ReportMetric(float64(maxLag.Microseconds())/1000, "max-lag-ms")
	}
}

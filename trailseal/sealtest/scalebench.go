package sealtest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
)

// ScaleSizes returns the log sizes a scale benchmark grows its store to:
// TRAIL_SCALE_SIZES (comma-separated, "1M" and "100k" accepted), default
// 100k and 1M.
func ScaleSizes(tb testing.TB) []int64 {
	spec := os.Getenv("TRAIL_SCALE_SIZES")
	if spec == "" {
		spec = "100k,1M"
	}
	var out []int64
	for f := range strings.SplitSeq(spec, ",") {
		f = strings.TrimSpace(f)
		mul := int64(1)
		switch {
		case strings.HasSuffix(f, "k"):
			mul, f = 1000, strings.TrimSuffix(f, "k")
		case strings.HasSuffix(f, "M"):
			mul, f = 1000000, strings.TrimSuffix(f, "M")
		}
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n <= 0 {
			tb.Fatalf("TRAIL_SCALE_SIZES: bad size %q", f)
		}
		out = append(out, n*mul)
	}
	return out
}

// scaleTenants is how many logs a scale benchmark spreads its events over.
const scaleTenants = 10

// shaRate measures single-core SHA-256 over sample (canonical event bytes)
// and returns its cost per byte, in CPU time and wall time.
func shaRate(sample [][]byte) (cpuPerByte, wallPerByte float64) {
	var n int64
	c0, t0 := testenv.ProcessCPU(), time.Now()
	for range 3 {
		for _, c := range sample {
			sha256.Sum256(c)
			n += int64(len(c))
		}
	}
	return float64(testenv.ProcessCPU()-c0) / float64(n), float64(time.Since(t0)) / float64(n)
}

// BenchScale grows store to each of ScaleSizes (events of 10 tenants,
// appended untimed through app), and at each size times `trail seal` (a
// Sealer's SealAll over the backlog appended since the last size) and
// `trail verify` (a full Verify of everything), reporting per event cost
// and the ratio against single-core SHA-256 over as many canonical bytes,
// its rate measured right before and after each timed operation. Per event
// costs that stay the same from size to size are what "flat" means; the
// seal's last tenth is reported apart, since a cost that grows with the
// log shows there first. CPU is this process's only (a database server's
// own work is not in it; wall time is).
//
// Run with -benchtime 1x: one iteration grows the store once.
func BenchScale(b *testing.B, store trailseal.Store, app func(ctx context.Context, evs []trail.Event) error) {
	ctx := context.Background()
	signer, verifier := TestKey(b, "trail.test")
	sizes := ScaleSizes(b)
	const chunk = 5000
	var sample [][]byte
	for i := range 20000 {
		ev := Event(b, scaleTenant(i%scaleTenants), i)
		c, err := trailseal.CanonicalBytes(&ev)
		if err != nil {
			b.Fatal(err)
		}
		sample = append(sample, c)
	}
	ratio := func(f func()) (wall, cpu time.Duration, shaCPU, shaWall float64) {
		// Start with no garbage collection owed for the events just
		// generated: it would be charged to the operation timed.
		runtime.GC()
		c1, w1 := shaRate(sample)
		c0, t0 := testenv.ProcessCPU(), time.Now()
		f()
		wall, cpu = time.Since(t0), testenv.ProcessCPU()-c0
		c2, w2 := shaRate(sample)
		return wall, cpu, (c1 + c2) / 2, (w1 + w2) / 2
	}
	for b.Loop() {
		var have, bytes int64
		for _, size := range sizes {
			var stepBytes int64
			for have < size {
				n := min(int64(chunk), size-have)
				evs := make([]trail.Event, n)
				for k := range evs {
					i := int(have) + k
					evs[k] = Event(b, scaleTenant(i%scaleTenants), i)
					c, err := trailseal.CanonicalBytes(&evs[k])
					if err != nil {
						b.Fatal(err)
					}
					stepBytes += int64(len(c))
				}
				if err := app(ctx, evs); err != nil {
					b.Fatal(err)
				}
				have += n
			}
			bytes += stepBytes
			var steps []stepTime
			last := time.Now()
			sl, err := trailseal.NewSealer(store, &trailseal.Config{Signer: signer, Origin: "trail.test",
				OnStep: func(st trailseal.Stats) {
					now := time.Now()
					steps = append(steps, stepTime{st.Sealed, now.Sub(last), testenv.ProcessCPU()})
					last = now
				}})
			if err != nil {
				b.Fatal(err)
			}
			var sealed int64
			var cpu0 time.Duration
			wall, cpu, shaC, shaW := ratio(func() {
				last, cpu0 = time.Now(), testenv.ProcessCPU()
				st, err := sl.SealAll(ctx)
				if err != nil {
					b.Fatal(err)
				}
				sealed = int64(st.Sealed)
			})
			if err := sl.Release(ctx); err != nil {
				b.Fatal(err)
			}
			// The first and the last tenth of the backlog, by steps.
			var headN, tailN int
			var headT, tailT, headC, tailC time.Duration
			prevCPU := cpu0
			for k := range steps {
				c := steps[k].cpu - prevCPU
				prevCPU = steps[k].cpu
				if int64(headN) < sealed/10 {
					headN, headT, headC = headN+steps[k].n, headT+steps[k].wall, headC+c
				}
				if int64(stepsFrom(steps, k)) <= sealed/10+int64(steps[k].n) {
					tailN, tailT, tailC = tailN+steps[k].n, tailT+steps[k].wall, tailC+c
				}
			}
			label := sizeLabel(size)
			perEv := float64(wall.Microseconds()) / float64(sealed)
			b.ReportMetric(perEv, "seal-µs/ev@"+label)
			b.ReportMetric(float64(cpu.Microseconds())/float64(sealed), "seal-cpu-µs/ev@"+label)
			b.ReportMetric(shaW*float64(stepBytes)/float64(wall), "seal-x-sha256@"+label)
			b.ReportMetric(shaC*float64(stepBytes)/float64(cpu), "seal-x-sha256-cpu@"+label)
			us := func(d time.Duration, n int) float64 { return float64(d.Microseconds()) / float64(max(n, 1)) }
			b.ReportMetric(us(headC, headN), "seal-first10%-cpu-µs/ev@"+label)
			b.ReportMetric(us(tailC, tailN), "seal-last10%-cpu-µs/ev@"+label)
			b.Logf("seal %s: %d events in %v (%.2f µs/event wall, %.2f µs CPU; first tenth %.2f µs wall %.2f CPU, last tenth %.2f µs wall %.2f CPU), x-sha256 %.3f wall %.3f CPU",
				label, sealed, wall.Round(time.Millisecond), perEv, float64(cpu.Microseconds())/float64(sealed),
				us(headT, headN), us(headC, headN), us(tailT, tailN), us(tailC, tailN),
				shaW*float64(stepBytes)/float64(wall), shaC*float64(stepBytes)/float64(cpu))

			v := &trailseal.Verifier{Store: store, Verifiers: note.VerifierList(verifier), Origin: "trail.test"}
			var rep *trailseal.Report
			wall, cpu, shaC, shaW = ratio(func() {
				rep, err = v.Verify(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
			})
			if !rep.OK() || rep.Events != size {
				b.Fatalf("verify at %d: %d events, problems %v", size, rep.Events, rep.Problems[:min(3, len(rep.Problems))])
			}
			perEv = float64(wall.Microseconds()) / float64(size)
			b.ReportMetric(perEv, "verify-µs/ev@"+label)
			b.ReportMetric(float64(cpu.Microseconds())/float64(size), "verify-cpu-µs/ev@"+label)
			b.ReportMetric(shaW*float64(rep.Bytes)/float64(wall), "verify-x-sha256@"+label)
			b.ReportMetric(shaC*float64(rep.Bytes)/float64(cpu), "verify-x-sha256-cpu@"+label)
			b.Logf("verify %s: %d events (%d bytes) in %v (%.2f µs/event wall, %.2f µs CPU), x-sha256 %.3f wall %.3f CPU; sha256 %.2f ns/byte",
				label, rep.Events, rep.Bytes, wall.Round(time.Millisecond), perEv, float64(cpu.Microseconds())/float64(size),
				shaW*float64(rep.Bytes)/float64(wall), shaC*float64(rep.Bytes)/float64(cpu), shaC)
		}
	}
}

// stepsFrom counts the events sealed by steps[k:].
func stepsFrom(steps []stepTime, k int) int {
	n := 0
	for _, st := range steps[k:] {
		n += st.n
	}
	return n
}

type stepTime struct {
	n    int
	wall time.Duration
	cpu  time.Duration
}

func sizeLabel(n int64) string {
	switch {
	case n%1000000 == 0:
		return fmt.Sprintf("%dM", n/1000000)
	case n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

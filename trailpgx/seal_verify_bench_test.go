//go:build unix

package trailpgx

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/trailhq/trail/trailseal"
	"github.com/trailhq/trail/trailseal/sealtest"
	"golang.org/x/mod/sumdb/note"
)

// verifyProcCPU is the process's user+system CPU time.
func verifyProcCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPgxVerify is `trail verify` on a sealed PostgreSQL store of
// 20,000 realistic events against single-core SHA-256 over the same
// canonical bytes, in the same iteration. x-sha256 compares wall times;
// x-sha256-cpu compares the SHA-256 CPU time with the verifier's CPU time
// in this process, summed over all cores (PostgreSQL's own CPU is not
// counted: it is another process).
//
//	go test -run '^$' -bench PgxVerify -benchtime 3x -cpu 1,2 ./trailpgx/
func BenchmarkPgxVerify(b *testing.B) {
	// 20 tenants (logs) of ~1,000 events, as a verify of a real store sees.
	pgxVerifyBench(b, 20000, func(i int) string { return fmt.Sprintf("t%d", i%20) })
}

// BenchmarkPgxVerifyTinyTenants is BenchmarkPgxVerify over 10,000 tenants
// of ~2 events each, where per-log work (queries, checkpoint signatures),
// not the events, is what verification costs.
func BenchmarkPgxVerifyTinyTenants(b *testing.B) {
	pgxVerifyBench(b, 20000, func(i int) string { return fmt.Sprintf("t%d", i%10000) })
}

func pgxVerifyBench(b *testing.B, n int, tenant func(i int) string) {
	p := benchPool(b)
	s := benchStore(b, p)
	ctx := context.Background()
	evs := benchEvents(n, rand.New(rand.NewPCG(1, 2)))
	for i := range evs {
		evs[i].Tenant = tenant(i)
	}
	if _, err := s.Append(ctx, evs); err != nil {
		b.Fatal(err)
	}
	signer, verifier := sealtest.TestKey(b, "trail.test")
	sl, err := trailseal.NewSealer(s, &trailseal.Config{Signer: signer, Origin: "trail.test"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := sl.SealAll(ctx); err != nil {
		b.Fatal(err)
	}
	var raw [][]byte
	var total int64
	for i := range evs {
		// The same bytes as the stored events (stores keep microseconds).
		ev := evs[i]
		ev.OccurredAt, ev.RecordedAt = ev.OccurredAt.Truncate(time.Microsecond), ev.RecordedAt.Truncate(time.Microsecond)
		c, err := trailseal.CanonicalBytes(&ev)
		if err != nil {
			b.Fatal(err)
		}
		raw = append(raw, c)
		total += int64(len(c))
	}
	v := &trailseal.Verifier{Store: s, Verifiers: note.VerifierList(verifier), Origin: "trail.test"}
	b.SetBytes(total)
	var verT, shaT, verCPU, shaCPU time.Duration
	var events int64
	for b.Loop() {
		b.StopTimer()
		c0, t0 := verifyProcCPU(), time.Now()
		for _, c := range raw {
			sha256.Sum256(c)
		}
		shaT += time.Since(t0)
		shaCPU += verifyProcCPU() - c0
		b.StartTimer()
		c1, t1 := verifyProcCPU(), time.Now()
		rep, err := v.Verify(ctx, nil)
		verT += time.Since(t1)
		verCPU += verifyProcCPU() - c1
		if err != nil || !rep.OK() || rep.Events != int64(n) {
			b.Fatal(err, rep)
		}
		events += rep.Events
	}
	b.ReportMetric(float64(events)/verT.Seconds(), "events/s")
	b.ReportMetric(float64(shaT)/float64(verT), "x-sha256")
	if verCPU > 0 {
		b.ReportMetric(float64(shaCPU)/float64(verCPU), "x-sha256-cpu")
	}
}

package trailsqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/internal/demo"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailseal"
	"github.com/trailhq/trail/trailseal/sealtest"
	"golang.org/x/mod/sumdb/note"
)

const verifyDemoEvents = 50_000

var verifyDemo struct {
	once  sync.Once
	dir   string
	raw   [][]byte
	total int64
	err   error
}

// verifyDemoStore builds, once per test binary, a sealed SQLite store of
// 50,000 `trail demo` events (deterministic seed) and the canonical bytes
// of the same events for the SHA-256 baseline.
func verifyDemoStore(b *testing.B) (*trailsqlite.Store, note.Verifier, [][]byte, int64) {
	b.Helper()
	signer, verifier := sealtest.TestKey(b, "trail.test")
	ctx := context.Background()
	verifyDemo.once.Do(func() {
		verifyDemo.err = func() error {
			d, err := demo.Generate(demo.Config{Seed: 1, Events: verifyDemoEvents, Now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)})
			if err != nil {
				return err
			}
			dir, err := os.MkdirTemp("", "trail-verify-bench")
			if err != nil {
				return err
			}
			verifyDemo.dir = dir
			s, err := trailsqlite.Open(ctx, filepath.Join(dir, "trail.db"), &trailsqlite.Config{Synchronous: "NORMAL"})
			if err != nil {
				return err
			}
			defer s.Close()
			if _, err := demo.Seed(ctx, s, d, nil); err != nil {
				return err
			}
			sl, err := trailseal.NewSealer(s, &trailseal.Config{Signer: signer, Origin: "trail.test"})
			if err != nil {
				return err
			}
			if _, err := sl.SealAll(ctx); err != nil {
				return err
			}
			for i := range d.Events {
				c, err := trailseal.CanonicalBytes(&d.Events[i])
				if err != nil {
					return err
				}
				verifyDemo.raw = append(verifyDemo.raw, c)
				verifyDemo.total += int64(len(c))
			}
			return nil
		}()
	})
	if verifyDemo.err != nil {
		b.Fatal(verifyDemo.err)
	}
	s, err := trailsqlite.Open(ctx, filepath.Join(verifyDemo.dir, "trail.db"), &trailsqlite.Config{Synchronous: "NORMAL"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s, verifier, verifyDemo.raw, verifyDemo.total
}

// BenchmarkSQLiteVerifyDemo is `trail verify` on a sealed SQLite store of
// 50,000 demo events, against single-core SHA-256 over the same canonical
// bytes in the same iteration. x-sha256 = SHA-256 wall time / verify wall
// time (verify may use every core); x-sha256-cpu = SHA-256 CPU time /
// verify CPU time summed over all cores (the per-core ratio). Run with
// -cpu 1,2 to see verify on one core and on all.
func BenchmarkSQLiteVerifyDemo(b *testing.B) {
	s, verifier, raw, total := verifyDemoStore(b)
	v := &trailseal.Verifier{Store: s, Verifiers: note.VerifierList(verifier), Origin: "trail.test"}
	b.SetBytes(total)
	m := loopVerify(b, v, raw, int64(len(raw)))
	m.report(b)
	if m.verCPU > 0 {
		b.ReportMetric(float64(m.verCPU.Nanoseconds())/float64(m.events), "verify-cpu-ns/event")
		b.ReportMetric(float64(m.shaCPU.Nanoseconds())/float64(m.events), "sha256-cpu-ns/event")
	}
}

// BenchmarkSQLiteVerifyTinyTenants is BenchmarkSQLiteVerifyDemo over
// 10,000 tenants of 2 events each, where per-log work (queries, checkpoint
// signatures), not the events, is what verification costs.
func BenchmarkSQLiteVerifyTinyTenants(b *testing.B) {
	const n, tenants = 20000, 10000
	ctx := context.Background()
	s, err := trailsqlite.Open(ctx, filepath.Join(b.TempDir(), "trail.db"), &trailsqlite.Config{Synchronous: "NORMAL"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	evs := make([]trail.Event, n)
	var raw [][]byte
	var total int64
	for i := range evs {
		evs[i] = sealtest.Event(b, fmt.Sprintf("t%05d", i%tenants), i/tenants)
		c, err := trailseal.CanonicalBytes(&evs[i])
		if err != nil {
			b.Fatal(err)
		}
		raw = append(raw, c)
		total += int64(len(c))
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
	v := &trailseal.Verifier{Store: s, Verifiers: note.VerifierList(verifier), Origin: "trail.test"}
	b.SetBytes(total)
	m := loopVerify(b, v, raw, n)
	m.report(b)
	if m.verCPU > 0 {
		b.ReportMetric(float64(m.verCPU.Nanoseconds())/float64(m.events), "verify-cpu-ns/event")
	}
}

// TestMain removes the demo store the verify benchmarks build once per test
// binary (43 MB), which no single benchmark's Cleanup may remove.
func TestMain(m *testing.M) {
	code := m.Run()
	if verifyDemo.dir != "" {
		os.RemoveAll(verifyDemo.dir)
	}
	os.Exit(code)
}

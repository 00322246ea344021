package trailseal_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/trailhq/trail/trailseal"
	"github.com/trailhq/trail/trailseal/sealtest"
	"golang.org/x/mod/sumdb/tlog"
)

// BenchmarkSignHead is what a sealer step that signs a deployment head
// adds: the entries' tree and one signature, for deployments of 300 to
// 100,000 logs. ns/op per log is the number to watch (it must stay flat).
func BenchmarkSignHead(b *testing.B) {
	signer, _ := sealtest.TestKey(b, trailseal.DefaultOrigin)
	for _, n := range []int{300, 10_000, 100_000} {
		entries := make([]trailseal.HeadEntry, n)
		for i := range entries {
			entries[i] = trailseal.HeadEntry{Log: fmt.Sprintf("tenant-%06d", i), Size: int64(1000 + i), Root: tlog.RecordHash([]byte{byte(i)})}
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var size int
			for b.Loop() {
				h, err := trailseal.SignHead(signer, "", entries, time.Unix(1, 0))
				if err != nil {
					b.Fatal(err)
				}
				size = len(trailseal.MarshalHead(h))
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/log")
			b.ReportMetric(float64(size), "head_bytes")
		})
	}
}

// BenchmarkDirWitnessPut is the cost of one witnessed object on a local
// directory (temporary file, fsync, link, directory fsync): what each
// checkpoint costs the witness goroutine.
func BenchmarkDirWitnessPut(b *testing.B) {
	w := trailseal.DirWitness{Dir: b.TempDir()}
	body := make([]byte, 200)
	i := 0
	for b.Loop() {
		i++
		if err := w.Put(b.Context(), fmt.Sprintf("checkpoints/acme/%020d-x.note", i), body); err != nil {
			b.Fatal(err)
		}
	}
}

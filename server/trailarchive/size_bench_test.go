package trailarchive

import (
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail/server/internal/demo"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/tlog"
)

// BenchmarkArchiveSize archives the demo dataset (its default 3,000 events
// over two years, and 100,000) on SQLite under a one-hour archive policy,
// FormatV2, with files shared by the run's batches and cut at the default
// DefaultFileBytes ("grouped") and with a file per batch ("per-batch",
// FileBytes 1: the layout before files were shared), and reports the
// archive's files and bytes per archived event: Parquet alone, manifests
// alone, and both.
//
//	cd server && go test -run XXX -bench ArchiveSize -benchtime 1x ./trailarchive/
func BenchmarkArchiveSize(b *testing.B) {
	for _, events := range []int{demo.DefaultEvents, 100_000} {
		d, err := demo.Generate(demo.Config{Events: events, Now: now.Add(-2 * time.Hour)})
		if err != nil {
			b.Fatal(err)
		}
		for _, layout := range []string{"grouped", "per-batch"} {
			b.Run(layout+"/"+strconv.Itoa(len(d.Events)), func(b *testing.B) {
				fileBytes := int64(0)
				if layout == "per-batch" {
					fileBytes = 1
				}
				var archived int64
				var files, parquetBytes, manifestBytes int64
				for b.Loop() {
					b.StopTimer()
					f := openFixture(b, onSQLite)
					f.appendEvents(b, d.Events)
					f.seal(b)
					if err := f.backend.SetPolicy(b.Context(), Policy{Keep: time.Hour, Then: ThenArchive}); err != nil {
						b.Fatal(err)
					}
					r := f.runner(b, func(c *Config) { c.FileBytes = fileBytes })
					b.StartTimer()
					plan, err := r.Plan(b.Context())
					if err != nil {
						b.Fatal(err)
					}
					res, err := r.Run(b.Context(), plan)
					if err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					archived = res.Archived
					files, parquetBytes, manifestBytes = 0, 0, 0
					filepath.WalkDir(f.target.Root, func(p string, e fs.DirEntry, err error) error {
						if err != nil || e.IsDir() {
							return err
						}
						info, _ := e.Info()
						switch {
						case strings.HasSuffix(p, ".parquet"):
							files++
							parquetBytes += info.Size()
						case strings.HasSuffix(p, ManifestSuffix):
							manifestBytes += info.Size()
						}
						return nil
					})
					b.StartTimer()
				}
				n := float64(archived)
				b.ReportMetric(n, "events")
				b.ReportMetric(float64(files), "files")
				b.ReportMetric(float64(parquetBytes)/n, "parquet-B/event")
				b.ReportMetric(float64(manifestBytes)/n, "manifest-B/event")
				b.ReportMetric(float64(parquetBytes+manifestBytes)/n, "B/event")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// BenchmarkArchiveSizeOneFile encodes the 100,000-event demo dataset (every
// tenant, two years) as a single file in each format: the bytes per event
// of a file that groups tenants, without the per-file overhead of one file
// per tenant and day.
func BenchmarkArchiveSizeOneFile(b *testing.B) {
	d, err := demo.Generate(demo.Config{Events: 100_000, Now: now})
	if err != nil {
		b.Fatal(err)
	}
	leaves := make([]trailseal.SealedEvent, len(d.Events))
	var jsonBytes int
	for i := range d.Events {
		ev := &d.Events[i]
		c, err := trailseal.CanonicalBytes(ev)
		if err != nil {
			b.Fatal(err)
		}
		jsonBytes += len(c)
		leaves[i] = trailseal.SealedEvent{Leaf: trailseal.Leaf{Log: trailseal.LogName(ev.Tenant), Seq: int64(i), EventID: ev.ID, Hash: tlog.RecordHash(c)}, Event: ev}
	}
	for _, format := range []string{FormatV1, FormatV2} {
		b.Run(format, func(b *testing.B) {
			enc := encodeParquet
			if format == FormatV1 {
				enc = encodeParquetV1
			}
			var size int
			for b.Loop() {
				data, err := enc(leaves)
				if err != nil {
					b.Fatal(err)
				}
				size = len(data)
			}
			b.ReportMetric(float64(size)/float64(len(leaves)), "B/event")
			b.ReportMetric(float64(jsonBytes)/float64(len(leaves)), "canonical-B/event")
			b.ReportMetric(float64(len(leaves))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

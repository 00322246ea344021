package trailarchive

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/tlog"
)

// packTestBatch returns a batch of n events of tenant recorded on date.
func packTestBatch(t testing.TB, tenant, date string, n int) *Batch {
	t.Helper()
	day, err := time.Parse(time.DateOnly, date)
	if err != nil {
		t.Fatal(err)
	}
	b := &Batch{Log: trailseal.LogName(tenant), Tenant: tenant, Date: date, Then: ThenArchive}
	for i := range n {
		ev := &trail.Event{ID: uuid.New(), Tenant: tenant, Actor: trail.Actor{Type: trail.ActorUser, ID: fmt.Sprintf("user-%d", i%50)},
			Action: "subscription.update", Target: trail.Target{Type: "subscription", ID: fmt.Sprintf("sub_%d", i%300)},
			Description: "Changed the plan", Changes: []trail.Change{trail.Changed("seats", i%7, i%11)},
			OccurredAt: day.Add(time.Duration(i) * time.Second), RecordedAt: day.Add(time.Duration(i) * time.Second)}
		if err := ev.Normalize(); err != nil {
			t.Fatal(err)
		}
		c, err := trailseal.CanonicalBytes(ev)
		if err != nil {
			t.Fatal(err)
		}
		b.Leaves = append(b.Leaves, trailseal.SealedEvent{Leaf: trailseal.Leaf{Log: b.Log, Seq: int64(i), EventID: ev.ID, Hash: tlog.RecordHash(c)}, Event: ev})
	}
	b.Key = batchKey(b.Log, date, b.Leaves)
	return b
}

// TestPackBatches: small batches share a file, a batch bigger than the file
// size spans several files (cut at row group boundaries), a file of one
// whole batch lies beside its manifest, every span reads back exactly its
// batch's events, and the same batches give the same files.
func TestPackBatches(t *testing.T) {
	ctx := context.Background()
	batches := []*Batch{
		packTestBatch(t, "acme", "2025-03-01", 3),
		packTestBatch(t, "bigco", "2025-03-01", 2*rowGroupRows+5000),
		packTestBatch(t, "", "2025-03-02", 2),
	}
	type want struct {
		files int
		spans []int // files per batch
	}
	for _, c := range []struct {
		name      string
		fileBytes int64
		want      want
	}{
		{"grouped", DefaultFileBytes, want{1, []int{1, 1, 1}}},
		{"a file each, big batch split", 1, want{5, []int{1, 3, 1}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			pack := func() ([]packFile, [][]File) {
				var files []packFile
				var spans [][]File
				if err := packBatches(batches, c.fileBytes, func(f packFile, s [][]File) error {
					files, spans = append(files, f), s
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				return files, spans
			}
			files, spans := pack()
			if len(files) != c.want.files {
				t.Fatalf("%d files, want %d", len(files), c.want.files)
			}
			again, _ := pack()
			target := &Dir{Root: t.TempDir()}
			for i, f := range files {
				if again[i].key != f.key || !bytes.Equal(again[i].data, f.data) {
					t.Fatalf("file %d: a second encoding differs (%s, %s)", i, f.key, again[i].key)
				}
				if err := target.Put(ctx, f.key, f.data); err != nil {
					t.Fatal(err)
				}
			}
			var cache fileCache
			for bi, b := range batches {
				if len(spans[bi]) != c.want.spans[bi] {
					t.Fatalf("batch %d: %d files, want %d: %+v", bi, len(spans[bi]), c.want.spans[bi], spans[bi])
				}
				var seqs []int64
				for _, f := range spans[bi] {
					own := f.FileRows == 0
					if own != (f.Key == strings.TrimSuffix(b.Key, ManifestSuffix)+".parquet") || own == strings.HasPrefix(f.Key, "data/") {
						t.Errorf("batch %d: file %s (file_rows %d): a batch's own file lies beside its manifest, a shared one under data/", bi, f.Key, f.FileRows)
					}
					rows, err := cache.rows(ctx, target, f)
					if err != nil {
						t.Fatal(err)
					}
					for _, r := range rows {
						l := b.Leaves[r.Seq]
						if tlog.RecordHash(r.Event) != l.Hash {
							t.Fatalf("batch %d seq %d: row is not the batch's event", bi, r.Seq)
						}
						seqs = append(seqs, r.Seq)
					}
				}
				if len(seqs) != len(b.Leaves) {
					t.Fatalf("batch %d: %d rows read back, want %d", bi, len(seqs), len(b.Leaves))
				}
				for i, s := range seqs {
					if s != int64(i) {
						t.Fatalf("batch %d: row %d has seq %d", bi, i, s)
					}
				}
			}
			// A span past the file's rows, or a file of another row
			// count, is refused, not read short.
			f := spans[1][0]
			f.FileRows++
			if _, err := cache.rows(ctx, target, f); err == nil {
				t.Error("wrong file_rows read")
			}
		})
	}
}

package trailarchive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// DefaultFileBytes is Config.FileBytes' default: a run's Parquet files are
// cut once they reach 64 MiB, so that small tenants' days share a file and
// a big tenant's events are spread over several (docs/archive-format.md).
const DefaultFileBytes = 64 << 20

// rowGroupRows is how many rows one row group of an archive file holds at
// most. A file is cut only between row groups; rows are in batch order
// (tenant, then recorded day), so each row group's tenant statistics let a
// reader skip the row groups of other tenants.
const rowGroupRows = 10_000

// packFile is one Parquet file of a run, holding the rows of consecutive
// batches.
type packFile struct {
	key  string
	data []byte
	rows int64
}

// packBatches encodes batches, in order, and passes each Parquet file to
// emit as soon as it is complete (so a run holds one file in memory, not
// its whole archive), with spans: for each batch, the File entries of its
// manifest so far (a batch whose entries do not add up to its events
// continues in the next file). The files are of about
// fileBytes each: a file is closed at the first row group boundary or batch
// end where the writer's size (bytes written plus its estimate of the rows
// still buffered) reaches fileBytes, and a batch continues in the next file
// if need be. (A fileBytes of 1 gives each batch files of its own.) FileRows
// is set where a file holds other batches' rows too. The output depends
// only on the batches and fileBytes: a re-run that plans the same batches
// writes the same files under the same keys.
func packBatches(batches []*Batch, fileBytes int64, emit func(f packFile, spans [][]File) error) error {
	var (
		spans   = make([][]File, len(batches))
		buf     *bytes.Buffer
		w       *parquet.GenericWriter[rowV2]
		inFile  int64 // rows in the current file
		inGroup int   // rows since the last row group boundary
		owners  []int // batches with rows in the current file
		dates   [2]string
	)
	finish := func() error {
		if err := w.Close(); err != nil {
			return fmt.Errorf("trailarchive: parquet: %w", err)
		}
		data := buf.Bytes()
		sum := sha256Hex(data)
		// A file of one whole batch is that batch's own, beside its
		// manifest, as before files were shared; a shared one goes under
		// data/, named by the recorded days it covers and its digest.
		key := "data/" + dates[0] + "_" + dates[1] + "_" + sum[:16] + ".parquet"
		own := len(owners) == 1 && len(spans[owners[0]]) == 1 && spans[owners[0]][0].Rows == int64(len(batches[owners[0]].Leaves))
		if own {
			key = strings.TrimSuffix(batches[owners[0]].Key, ManifestSuffix) + ".parquet"
		}
		for _, bi := range owners {
			f := &spans[bi][len(spans[bi])-1]
			f.Key, f.Bytes, f.SHA256, f.FileRows = key, int64(len(data)), sum, inFile
			if own {
				f.FileRows = 0
			}
		}
		w, owners = nil, owners[:0]
		return emit(packFile{key: key, data: data, rows: inFile}, spans)
	}
	for bi, b := range batches {
		rows := make([]rowV2, 0, len(b.Leaves))
		for _, l := range b.Leaves {
			r, err := newRowV2(l.Seq, l.Event)
			if err != nil {
				return err
			}
			rows = append(rows, r)
		}
		for len(rows) > 0 {
			if w == nil {
				buf = new(bytes.Buffer)
				w = parquet.NewGenericWriter[rowV2](buf, append(writerOptions(), schemaV2)...)
				inFile, inGroup, dates = 0, 0, [2]string{b.Date, b.Date}
			}
			if len(owners) == 0 || owners[len(owners)-1] != bi {
				owners = append(owners, bi)
				spans[bi] = append(spans[bi], File{FirstRow: inFile})
			}
			dates[0], dates[1] = min(dates[0], b.Date), max(dates[1], b.Date)
			n := min(len(rows), rowGroupRows-inGroup)
			if _, err := w.Write(rows[:n]); err != nil {
				return fmt.Errorf("trailarchive: parquet: %w", err)
			}
			spans[bi][len(spans[bi])-1].Rows += int64(n)
			rows, inFile, inGroup = rows[n:], inFile+int64(n), inGroup+n
			if inGroup == rowGroupRows {
				if err := w.Flush(); err != nil {
					return fmt.Errorf("trailarchive: parquet: %w", err)
				}
				inGroup = 0
			}
			if (inGroup == 0 || len(rows) == 0) && w.Size() >= fileBytes {
				if err := finish(); err != nil {
					return err
				}
			}
		}
	}
	if w != nil {
		return finish()
	}
	return nil
}

// spanRows is how many rows a batch's File entries hold.
func spanRows(files []File) int64 {
	var n int64
	for _, f := range files {
		n += f.Rows
	}
	return n
}

// fileCache keeps the last archive file read, checked against a manifest's
// SHA-256 and opened: the batches of one file are read one after another
// (runs write them in the order manifests list), so each file is fetched and
// its footer parsed once, not once per batch.
type fileCache struct {
	key, sha string
	file     *parquet.File
}

// errNotInTarget marks a file the target does not have.
var errNotInTarget = errors.New("not in the archive target")

// rows fetches f (unless it is the cached file with the same SHA-256),
// checks its SHA-256 and row count, and returns the rows f names: the whole
// file for a batch's own file, its span of a shared one.
func (c *fileCache) rows(ctx context.Context, t Target, f File) ([]Row, error) {
	if c.file == nil || c.key != f.Key || c.sha != f.SHA256 {
		data, err := t.Get(ctx, f.Key)
		if errors.Is(err, ErrNotExist) {
			return nil, fmt.Errorf("%w: %w", errNotInTarget, err)
		}
		if err != nil {
			return nil, fmt.Errorf("archive target %s: %w", t, err)
		}
		if got := sha256Hex(data); got != f.SHA256 {
			return nil, fmt.Errorf("%w: SHA-256 %s, the manifest says %s (file edited or corrupted)", errFileBad, got, f.SHA256)
		}
		pf, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return nil, fmt.Errorf("%w: trailarchive: parquet: %v", errFileBad, err)
		}
		c.key, c.sha, c.file = f.Key, f.SHA256, pf
	}
	total := f.FileRows
	if total == 0 {
		total = f.Rows
	}
	if n := c.file.NumRows(); n != total {
		return nil, fmt.Errorf("%w: %d rows, the manifest says %d", errFileBad, n, total)
	}
	rows, err := decodeRange(c.file, f.FirstRow, f.Rows)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errFileBad, err)
	}
	return rows, nil
}

// errFileBad marks a file that is there but not what its manifest says.
var errFileBad = errors.New("archive file does not match its manifest")

// readRange reads n rows of f as T from row first on.
func readRange[T any](f *parquet.File, first, n int64) ([]T, error) {
	rows := make([]T, n)
	r := parquet.NewGenericReader[T](f)
	defer r.Close()
	if first > 0 {
		if err := r.SeekToRow(first); err != nil {
			return nil, fmt.Errorf("trailarchive: parquet: %w", err)
		}
	}
	got, err := r.Read(rows)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("trailarchive: parquet: %w", err)
	}
	if int64(got) != n {
		return nil, fmt.Errorf("trailarchive: parquet: %d rows from row %d, want %d", got, first, n)
	}
	return rows, nil
}

package trailarchive

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
)

// ManifestV3 is the manifest version Trail writes: one signed manifest
// covers every batch a written file completes (docs/retention.md, "The
// archive"), instead of one manifest per batch (versions 1 and 2, which
// still verify).
const ManifestV3 = 3

// manifestTextV3 is the first line of a version 3 manifest's signed note.
const manifestTextV3 = "trail-archive-manifest/v3"

// ManifestDir is the folder of version 3 manifests:
// manifests/<first date>_<last date>_<16 hex digits>.manifest.json.
const ManifestDir = "manifests/"

// manifestV3 is a version 3 manifest file.
type manifestV3 struct {
	Version int         `json:"version"`
	Origin  string      `json:"origin"`
	Files   []fileV3    `json:"files"`
	Logs    []logV3     `json:"logs"`
	Sig     string      `json:"signature,omitempty"`
	views   []*Manifest // per batch, derived
}

// fileV3 is one whole Parquet file a version 3 manifest names.
type fileV3 struct {
	Key    string `json:"key"`
	Rows   int64  `json:"rows"` // the file's row count
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// logV3 is one log's batches in a version 3 manifest.
type logV3 struct {
	Log        string               `json:"log"`
	Checkpoint trailseal.Checkpoint `json:"checkpoint"`
	Batches    []batchV3            `json:"batches"`
}

// batchV3 is one batch, encoded as the JSON array
// [date, seqs, file, first_row]: its recorded day, its seqs as half-open
// [from, to] pairs in order, and where its first row is (the index of a
// file in the manifest's files, and a 0-based row in it). Its rows are the
// next Σ(to-from) rows from there, continuing at row 0 of the next file of
// the manifest when a file ends.
type batchV3 struct {
	Date     string
	Seqs     []trailseal.SeqRange
	File     int
	FirstRow int64
}

// MarshalJSON implements json.Marshaler.
func (b batchV3) MarshalJSON() ([]byte, error) {
	seqs := make([][2]int64, len(b.Seqs))
	for i, r := range b.Seqs {
		seqs[i] = [2]int64{r.From, r.To}
	}
	return json.Marshal([]any{b.Date, seqs, b.File, b.FirstRow})
}

// UnmarshalJSON implements json.Unmarshaler: exactly four elements of the
// types above.
func (b *batchV3) UnmarshalJSON(data []byte) error {
	var parts []json.RawMessage
	if err := json.Unmarshal(data, &parts); err != nil {
		return fmt.Errorf("batch: want [date, seqs, file, first_row]: %v", err)
	}
	if len(parts) != 4 {
		return fmt.Errorf("batch: %d elements, want 4 [date, seqs, file, first_row]", len(parts))
	}
	var seqs [][]int64
	if err := strict(parts[0], &b.Date); err != nil {
		return fmt.Errorf("batch date: %v", err)
	}
	if err := strict(parts[1], &seqs); err != nil {
		return fmt.Errorf("batch seqs: %v", err)
	}
	if err := strict(parts[2], &b.File); err != nil {
		return fmt.Errorf("batch file: %v", err)
	}
	if err := strict(parts[3], &b.FirstRow); err != nil {
		return fmt.Errorf("batch first_row: %v", err)
	}
	b.Seqs = make([]trailseal.SeqRange, len(seqs))
	for i, s := range seqs {
		if len(s) != 2 {
			return fmt.Errorf("batch seqs: a range has %d numbers, want [from, to]", len(s))
		}
		b.Seqs[i] = trailseal.SeqRange{From: s[0], To: s[1]}
	}
	return nil
}

// strict decodes data into v, refusing null (which json.Unmarshal would
// take as "leave v alone").
func strict(data json.RawMessage, v any) error {
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return fmt.Errorf("null")
	}
	return json.Unmarshal(data, v)
}

// v3BatchLine is what a version 3 manifest's name digests for each batch,
// in the order the manifest lists them: the batch's key as a version 2
// manifest would have it (tenant=<log>/date=<date>/<batch>.manifest.json)
// and a line feed.
func v3BatchLine(log, date, batch string) string {
	return "tenant=" + log + "/date=" + date + "/" + batch + ManifestSuffix + "\n"
}

// v3Name names a version 3 manifest from its batches: its first and last
// recorded day and the first 16 hex digits of the SHA-256 of its batch
// lines (v3BatchLine). It depends only on which batches it holds, so a
// re-signed manifest keeps its name, and one put at another manifest's key
// is caught.
func v3Name(first, last string, lines []string) string {
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
	}
	return first + "_" + last + "_" + hex.EncodeToString(h.Sum(nil))[:16]
}

// ManifestKeyV3 is the key of the version 3 manifest named name.
func ManifestKeyV3(name string) string { return ManifestDir + name + ManifestSuffix }

// isV3Key reports whether key has the shape of a version 3 manifest's key,
// with no path tricks.
func isV3Key(key string) bool {
	name, ok := strings.CutPrefix(key, ManifestDir)
	if !ok || !IsManifestKey(key) {
		return false
	}
	name = strings.TrimSuffix(name, ManifestSuffix)
	first, rest, ok1 := strings.Cut(name, "_")
	last, digest, ok2 := strings.Cut(rest, "_")
	if !ok1 || !ok2 || len(digest) != 16 || strings.ToLower(digest) != digest {
		return false
	}
	if _, err := hex.DecodeString(digest); err != nil {
		return false
	}
	return validDate(first) && validDate(last) && first <= last
}

// v3KeyDays returns the first and last day a version 3 key's name gives.
func v3KeyDays(key string) (first, last string, ok bool) {
	if !isV3Key(key) {
		return "", "", false
	}
	name := strings.TrimPrefix(key, ManifestDir)
	return name[:10], name[11:21], true
}

func validDate(s string) bool {
	d, err := time.Parse(time.DateOnly, s)
	return err == nil && d.Format(time.DateOnly) == s
}

// newManifestV3 builds the version 3 manifest of batches (in run order),
// whose rows spans (packBatches' File entries, complete) place in files
// already written. The Checkpoint of the log's first batch is the log's.
func newManifestV3(origin string, batches []*Batch, spans [][]File) (*manifestV3, error) {
	m := &manifestV3{Version: ManifestV3, Origin: origin}
	fileIndex := map[string]int{}
	logIndex := map[string]int{}
	for i, b := range batches {
		var first *File
		for j := range spans[i] {
			f := spans[i][j]
			if _, ok := fileIndex[f.Key]; !ok {
				fileIndex[f.Key] = len(m.Files)
				rows := f.FileRows
				if rows == 0 {
					rows = f.Rows
				}
				m.Files = append(m.Files, fileV3{Key: f.Key, Rows: rows, Bytes: f.Bytes, SHA256: f.SHA256})
			}
			if j > 0 && (f.FirstRow != 0 || fileIndex[f.Key] != fileIndex[spans[i][j-1].Key]+1) {
				return nil, fmt.Errorf("trailarchive: batch %s: its rows do not continue from one file to the next", b.Key)
			}
			if first == nil {
				first = &spans[i][j]
			}
		}
		if first == nil {
			return nil, fmt.Errorf("trailarchive: batch %s has no rows", b.Key)
		}
		li, ok := logIndex[b.Log]
		if !ok {
			li = len(m.Logs)
			logIndex[b.Log] = li
			m.Logs = append(m.Logs, logV3{Log: b.Log, Checkpoint: b.Checkpoint})
		}
		seqs := make([]int64, len(b.Leaves))
		for k, l := range b.Leaves {
			seqs[k] = l.Seq
		}
		lg := &m.Logs[li]
		if b.Checkpoint.Size > lg.Checkpoint.Size {
			lg.Checkpoint = b.Checkpoint
		}
		lg.Batches = append(lg.Batches, batchV3{Date: b.Date, Seqs: ranges(seqs), File: fileIndex[first.Key], FirstRow: first.FirstRow})
	}
	return m, nil
}

// encodeSigned signs m and returns its key and the manifest file's bytes
// (compact JSON and a line feed).
func (m *manifestV3) encodeSigned(signer note.Signer) (key string, file []byte, err error) {
	m.Sig = ""
	body, err := json.Marshal(m)
	if err != nil {
		return "", nil, err
	}
	signed, err := SignedBytes(body)
	if err != nil {
		return "", nil, err
	}
	name, err := m.deriveName()
	if err != nil {
		return "", nil, err
	}
	sig, err := note.Sign(&note.Note{Text: v3Text(m.Origin, name, signed)}, signer)
	if err != nil {
		return "", nil, fmt.Errorf("trailarchive: sign manifest: %w", err)
	}
	m.Sig = string(sig)
	file, err = json.Marshal(m)
	if err != nil {
		return "", nil, err
	}
	return ManifestKeyV3(name), append(file, '\n'), nil
}

// v3Text is the note text a version 3 manifest's signature signs:
//
//	trail-archive-manifest/v3
//	<origin>
//	<manifest name>
//	<base64 (standard, padded) SHA-256 of the signed bytes>
func v3Text(origin, name string, signed []byte) string {
	sum := sha256.Sum256(signed)
	return manifestTextV3 + "\n" + origin + "\n" + name + "\n" + base64.StdEncoding.EncodeToString(sum[:]) + "\n"
}

// deriveName computes m's name from its batches (v3Name).
func (m *manifestV3) deriveName() (string, error) {
	var lines []string
	first, last := "", ""
	for _, lg := range m.Logs {
		for _, b := range lg.Batches {
			if len(b.Seqs) == 0 {
				return "", fmt.Errorf("%w: a batch of log %s has no seqs", ErrBadManifest, lg.Log)
			}
			lines = append(lines, v3BatchLine(lg.Log, b.Date, batchName(b.Seqs)))
			if first == "" || b.Date < first {
				first = b.Date
			}
			last = max(last, b.Date)
		}
	}
	if len(lines) == 0 {
		return "", fmt.Errorf("%w: no batches", ErrBadManifest)
	}
	return v3Name(first, last, lines), nil
}

// batchName is the name Runner gives the batch of seqs rs (batchKey): its
// first and last seq and the first 16 hex digits of the SHA-256 of every
// seq as 8 bytes big-endian.
func batchName(rs []trailseal.SeqRange) string {
	h := sha256.New()
	var b [8]byte
	for _, r := range rs {
		for s := r.From; s < r.To; s++ {
			b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7] = byte(s>>56), byte(s>>48), byte(s>>40), byte(s>>32), byte(s>>24), byte(s>>16), byte(s>>8), byte(s)
			h.Write(b[:])
		}
	}
	return fmt.Sprintf("%012d-%012d-%s", rs[0].From, rs[len(rs)-1].To-1, hex.EncodeToString(h.Sum(nil))[:16])
}

// maxV3Seqs bounds the seqs one version 3 manifest may hold (what the
// derived names hash), so that a hostile manifest cannot make a reader
// walk 2^63 seqs.
const maxV3Seqs = 1 << 28

// parseManifestV3 parses and checks a version 3 manifest file: its
// signature, origin, files, logs, checkpoints and every batch's rows, and
// returns its batches as per-batch views (Manifest of Version 3, whose
// Files are the batch's rows in each file) and its name.
func parseManifestV3(data []byte, verifiers note.Verifiers, origin string) (*manifestV3, error) {
	var m manifestV3
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the manifest object", ErrBadManifest)
	}
	if m.Version != ManifestV3 {
		return nil, fmt.Errorf("%w: version %d", ErrBadManifest, m.Version)
	}
	if m.Origin != origin {
		return nil, fmt.Errorf("%w: origin %q is not this deployment's %q (a foreign manifest)", ErrBadManifest, m.Origin, origin)
	}
	if m.Sig == "" {
		return nil, fmt.Errorf("%w: manifest is not signed", ErrBadManifest)
	}
	n, err := note.Open([]byte(m.Sig), verifiers)
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %v (signed by a key this deployment does not trust: a foreign manifest, or see --public-key)", ErrBadManifest, err)
	}
	// The signature first, then the content it covers: nothing unsigned
	// is walked.
	signed, err := SignedBytes(data)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) != 5 || n.Text != v3Text(m.Origin, lines[2], signed) {
		return nil, fmt.Errorf("%w: manifest %s: the signature does not cover this manifest (edited)", ErrBadManifest, lines[min(2, len(lines)-1)])
	}
	var total int64
	for _, lg := range m.Logs {
		for _, b := range lg.Batches {
			if len(b.Seqs) == 0 {
				return nil, fmt.Errorf("%w: log %s: a batch of %s has no seqs", ErrBadManifest, lg.Log, b.Date)
			}
			prev := int64(-1)
			for _, r := range b.Seqs {
				// In order, not touching (adjacent ranges are one range).
				if r.From < 0 || r.To <= r.From || r.From <= prev || r.To-r.From > maxV3Seqs {
					return nil, fmt.Errorf("%w: log %s: batch of %s: seqs %v are not half-open ranges in order", ErrBadManifest, lg.Log, b.Date, b.Seqs)
				}
				prev = r.To
				if total += r.To - r.From; total > maxV3Seqs {
					return nil, fmt.Errorf("%w: more than %d seqs", ErrBadManifest, maxV3Seqs)
				}
			}
			if !validDate(b.Date) {
				return nil, fmt.Errorf("%w: log %s: batch date %q is not YYYY-MM-DD", ErrBadManifest, lg.Log, b.Date)
			}
		}
	}
	name, err := m.deriveName()
	if err != nil {
		return nil, err
	}
	if name != lines[2] {
		return nil, fmt.Errorf("%w: manifest %s: signed as %s (edited)", ErrBadManifest, name, lines[2])
	}
	if len(m.Files) == 0 || len(m.Logs) == 0 {
		return nil, fmt.Errorf("%w: manifest %s: no files or no logs", ErrBadManifest, name)
	}
	keys := map[string]bool{}
	for _, f := range m.Files {
		if _, err := hex.DecodeString(f.SHA256); err != nil || len(f.SHA256) != 64 {
			return nil, fmt.Errorf("%w: manifest %s: file %s: bad sha256", ErrBadManifest, name, f.Key)
		}
		if f.Key == "" || keys[f.Key] || f.Rows <= 0 || f.Bytes <= 0 {
			return nil, fmt.Errorf("%w: manifest %s: file %q: empty, repeated, or without rows or bytes", ErrBadManifest, name, f.Key)
		}
		keys[f.Key] = true
	}
	logs := map[string]bool{}
	for _, lg := range m.Logs {
		if lg.Log == "" || lg.Log != trailseal.LogName(trailseal.TenantOf(lg.Log)) || logs[lg.Log] || len(lg.Batches) == 0 {
			return nil, fmt.Errorf("%w: manifest %s: log %q: empty, repeated, or without batches", ErrBadManifest, name, lg.Log)
		}
		logs[lg.Log] = true
		cp := lg.Checkpoint
		cb, err := trailseal.OpenCheckpoint([]byte(cp.Note), verifiers, trailseal.CheckpointOrigin(m.Origin, lg.Log))
		if err != nil {
			return nil, fmt.Errorf("%w: manifest %s: log %s: checkpoint: %v", ErrBadManifest, name, lg.Log, err)
		}
		if cb.Size != cp.Size || cb.Root != cp.Root || (cp.Log != "" && cp.Log != lg.Log) {
			return nil, fmt.Errorf("%w: manifest %s: log %s: checkpoint fields disagree with its signed note", ErrBadManifest, name, lg.Log)
		}
		batches := map[string]bool{}
		for _, b := range lg.Batches {
			v, err := m.view(lg, b)
			if err != nil {
				return nil, fmt.Errorf("%w: manifest %s: %v", ErrBadManifest, name, err)
			}
			if batches[v.Batch] {
				return nil, fmt.Errorf("%w: manifest %s: log %s: batch %s twice", ErrBadManifest, name, lg.Log, v.Batch)
			}
			batches[v.Batch] = true
			if last := b.Seqs[len(b.Seqs)-1].To; cp.Size < last {
				return nil, fmt.Errorf("%w: manifest %s: log %s: checkpoint of size %d does not cover seq %d", ErrBadManifest, name, lg.Log, cp.Size, last-1)
			}
			m.views = append(m.views, v)
		}
	}
	return &m, nil
}

// view is batch b of log lg as a per-batch Manifest: its rows in each file
// from (File, FirstRow) on, continuing into the next files.
func (m *manifestV3) view(lg logV3, b batchV3) (*Manifest, error) {
	var rows int64
	for _, r := range b.Seqs {
		rows += r.To - r.From
	}
	v := &Manifest{Version: ManifestV3, Origin: m.Origin, Log: lg.Log, Tenant: trailseal.TenantOf(lg.Log), Date: b.Date,
		Batch: batchName(b.Seqs), Rows: rows, Seqs: b.Seqs, Checkpoint: lg.Checkpoint, Signature: m.Sig}
	if b.File < 0 || b.File >= len(m.Files) || b.FirstRow < 0 || b.FirstRow >= m.Files[b.File].Rows {
		return nil, fmt.Errorf("log %s: batch %s: starts at file %d row %d, not in the manifest's files", lg.Log, v.Batch, b.File, b.FirstRow)
	}
	left, at, fi := rows, b.FirstRow, b.File
	for left > 0 {
		if fi >= len(m.Files) {
			return nil, fmt.Errorf("log %s: batch %s: %d of its rows are past the manifest's last file", lg.Log, v.Batch, left)
		}
		f := m.Files[fi]
		n := min(left, f.Rows-at)
		v.Files = append(v.Files, File{Key: f.Key, Rows: n, Bytes: f.Bytes, SHA256: f.SHA256, FirstRow: at, FileRows: f.Rows})
		left, at, fi = left-n, 0, fi+1
	}
	return v, nil
}

// ParseManifests parses a manifest file of any version and returns the
// batches it describes, each checked as ParseManifest checks a version 1
// or 2 manifest: one for versions 1 and 2, every batch it holds for
// version 3 (each a Manifest of Version 3 whose Files are the batch's rows
// in each file).
func ParseManifests(data []byte, verifiers note.Verifiers, origin string) ([]*Manifest, error) {
	var head struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	if head.Version != ManifestV3 {
		m, err := ParseManifest(data, verifiers, origin)
		if err != nil {
			return nil, err
		}
		return []*Manifest{m}, nil
	}
	m, err := parseManifestV3(data, verifiers, origin)
	if err != nil {
		return nil, err
	}
	return m.views, nil
}

// manifestName is the name a manifest's key must end in (before
// ManifestSuffix): the batch for versions 1 and 2, the derived name for
// version 3.
func manifestName(views []*Manifest) string {
	if len(views) == 0 {
		return ""
	}
	if views[0].Version != ManifestV3 {
		return views[0].Batch
	}
	lines := make([]string, len(views))
	first, last := views[0].Date, views[0].Date
	for i, v := range views {
		lines[i] = v3BatchLine(v.Log, v.Date, v.Batch)
		first, last = min(first, v.Date), max(last, v.Date)
	}
	return v3Name(first, last, lines)
}

// sortViews orders batches by log, day and first seq.
func sortViews(vs []*Manifest) {
	slices.SortStableFunc(vs, func(a, b *Manifest) int {
		if c := strings.Compare(a.Log, b.Log); c != 0 {
			return c
		}
		if c := strings.Compare(a.Date, b.Date); c != 0 {
			return c
		}
		return int(min(max(a.Seqs[0].From-b.Seqs[0].From, -1), 1))
	})
}

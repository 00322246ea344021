package trailarchive

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
)

// ManifestVersion is the version of the manifest format Trail writes
// (manifest_v3.go: one manifest for the batches a file completes; versions
// 1 and 2, one manifest per batch, still verify).
const ManifestVersion = ManifestV3

// ErrBadManifest is wrapped by every error about a manifest that is
// malformed, unsigned, signed by an unknown key, or for another deployment.
var ErrBadManifest = errors.New("trailarchive: bad manifest")

// File is one archive file of a batch.
//
// Files are shared: a run writes the rows of consecutive batches (tenant by
// tenant, day by day) into files of about Config.FileBytes. Such a File
// names the batch's rows [FirstRow, FirstRow+Rows) of the FileRows rows in
// the file; Bytes and SHA256 are the whole file's. A file written for one
// batch alone (before files were shared) has neither member: its Rows are
// all of it.
type File struct {
	Key      string `json:"key"`
	Rows     int64  `json:"rows"`
	Bytes    int64  `json:"bytes"`
	SHA256   string `json:"sha256"` // hex
	FirstRow int64  `json:"first_row,omitempty"`
	FileRows int64  `json:"file_rows,omitempty"`
}

// Manifest describes one batch: the events of one tenant, recorded on one
// UTC day, past their hot period. It is written after the batch's files, so
// a batch with a manifest is complete.
type Manifest struct {
	Version int    `json:"version"`
	Origin  string `json:"origin"`
	Log     string `json:"log"`
	Tenant  string `json:"tenant,omitempty"`
	Date    string `json:"date"` // YYYY-MM-DD of RecordedAt, UTC
	Batch   string `json:"batch"`
	Files   []File `json:"files"`
	Rows    int64  `json:"rows"`
	// Seqs are the log's sequence numbers the batch holds, as half-open
	// ranges in order: the leaves each archived event must match.
	Seqs []trailseal.SeqRange `json:"seqs"`
	// Checkpoint is a signed checkpoint of the log whose size covers every
	// seq of the batch: the tree the leaves belong to.
	Checkpoint trailseal.Checkpoint `json:"checkpoint"`
	// Signature is a signed note over the rest of the manifest (see Sign);
	// for a batch of a version 3 manifest, that manifest's.
	Signature string `json:"signature,omitempty"`

	// Key is where the manifest was read from (not in the file): for a
	// version 3 manifest, the key of the manifest holding the batch.
	Key string `json:"-"`
}

// body is the manifest without its signature, as signed.
func (m *Manifest) body() ([]byte, error) {
	c := *m
	c.Signature = ""
	return json.Marshal(&c)
}

// noteText is the signed text: a fixed first line, the log's origin line,
// the batch name and the SHA-256 of the body.
func (m *Manifest) noteText(body []byte) string {
	sum := sha256.Sum256(body)
	return "trail-archive-manifest\n" + trailseal.CheckpointOrigin(m.Origin, m.Log) + "\n" + m.Batch + "\n" +
		base64.StdEncoding.EncodeToString(sum[:]) + "\n"
}

// Sign signs m with the checkpoint signing key.
func (m *Manifest) Sign(signer note.Signer) error {
	body, err := m.signedBytesOf()
	if err != nil {
		return err
	}
	signed, err := note.Sign(&note.Note{Text: m.SignedText(body)}, signer)
	if err != nil {
		return fmt.Errorf("trailarchive: sign manifest: %w", err)
	}
	m.Signature = string(signed)
	return nil
}

// Encode returns the manifest file's bytes.
func (m *Manifest) Encode() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ParseManifest parses a manifest file and checks its signature with
// verifiers, its origin against origin, and that it names key's batch.
func ParseManifest(data []byte, verifiers note.Verifiers, origin string) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	if m.Version != ManifestV1 && m.Version != ManifestV2 {
		return nil, fmt.Errorf("%w: version %d", ErrBadManifest, m.Version)
	}
	if m.Origin != origin {
		return nil, fmt.Errorf("%w: origin %q is not this deployment's %q (a foreign manifest)", ErrBadManifest, m.Origin, origin)
	}
	if m.Signature == "" {
		return nil, fmt.Errorf("%w: batch %s is not signed", ErrBadManifest, m.Batch)
	}
	n, err := note.Open([]byte(m.Signature), verifiers)
	if err != nil {
		return nil, fmt.Errorf("%w: batch %s: signature: %v (signed by a key this deployment does not trust: a foreign manifest, or see --public-key)", ErrBadManifest, m.Batch, err)
	}
	// Version 2: the bytes signed are computed from the file as received.
	var body []byte
	if m.Version == ManifestV1 {
		body, err = m.body()
	} else {
		body, err = SignedBytes(data)
	}
	if err != nil {
		return nil, err
	}
	if n.Text != m.SignedText(body) {
		return nil, fmt.Errorf("%w: batch %s: the signature does not cover this manifest (edited)", ErrBadManifest, m.Batch)
	}
	if m.Log != trailseal.LogName(m.Tenant) || len(m.Files) == 0 || m.Rows <= 0 {
		return nil, fmt.Errorf("%w: batch %s: inconsistent log, files or rows", ErrBadManifest, m.Batch)
	}
	var rows int64
	for _, f := range m.Files {
		rows += f.Rows
		if _, err := hex.DecodeString(f.SHA256); err != nil || len(f.SHA256) != 64 {
			return nil, fmt.Errorf("%w: batch %s: file %s: bad sha256", ErrBadManifest, m.Batch, f.Key)
		}
		if f.Rows <= 0 || f.FirstRow < 0 || (f.FileRows == 0 && f.FirstRow != 0) || (f.FileRows != 0 && f.FirstRow+f.Rows > f.FileRows) {
			return nil, fmt.Errorf("%w: batch %s: file %s: rows %d from row %d of %d", ErrBadManifest, m.Batch, f.Key, f.Rows, f.FirstRow, f.FileRows)
		}
	}
	var seqs int64
	for _, r := range m.Seqs {
		seqs += r.To - r.From
	}
	if rows != m.Rows || seqs != m.Rows {
		return nil, fmt.Errorf("%w: batch %s: %d rows in files, %d in the manifest, %d seqs", ErrBadManifest, m.Batch, rows, m.Rows, seqs)
	}
	cb, err := trailseal.OpenCheckpoint([]byte(m.Checkpoint.Note), verifiers, trailseal.CheckpointOrigin(m.Origin, m.Log))
	if err != nil {
		return nil, fmt.Errorf("%w: batch %s: checkpoint: %v", ErrBadManifest, m.Batch, err)
	}
	if cb.Size != m.Checkpoint.Size || cb.Root != m.Checkpoint.Root || len(m.Seqs) == 0 {
		return nil, fmt.Errorf("%w: batch %s: checkpoint fields disagree with its signed note", ErrBadManifest, m.Batch)
	}
	if last := m.Seqs[len(m.Seqs)-1].To; m.Checkpoint.Size < last {
		return nil, fmt.Errorf("%w: batch %s: checkpoint of size %d does not cover seq %d", ErrBadManifest, m.Batch, m.Checkpoint.Size, last-1)
	}
	return &m, nil
}

// IsManifestKey reports whether key names a manifest.
func IsManifestKey(key string) bool { return strings.HasSuffix(key, ManifestSuffix) }

// ManifestSuffix ends every manifest key; the batch's data file is the same
// key ending in .parquet.
const ManifestSuffix = ".manifest.json"

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

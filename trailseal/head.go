package trailseal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// HeadLog names the deployment head in origin lines: a head's origin is
// CheckpointOrigin(origin, HeadLog), e.g. "trail.example/_head". Tenants
// start with a letter or digit, so no tenant's log has this name.
const HeadLog = "_head"

// ErrNoHead is returned when a store has no deployment head (yet).
var ErrNoHead = errors.New("trailseal: no deployment head")

// HeadEntry is one log's line in the deployment head: the size and root of
// the log's newest checkpoint when the head was signed.
type HeadEntry struct {
	Log  string    `json:"log"`
	Size int64     `json:"size"`
	Root tlog.Hash `json:"root"`
}

// Line returns the entry's leaf bytes: "<log> <size> <root base64>\n".
// The head's tree has one leaf per log, tlog.RecordHash(Line()), in
// bytewise order of log names.
func (e HeadEntry) Line() []byte {
	return fmt.Appendf(nil, "%s %d %s\n", e.Log, e.Size, e.Root)
}

// Head is a deployment head: one signed statement over every log's newest
// checkpoint, so that a deleted tenant or a log rolled back shows in one
// object. Its note text is four lines:
//
//	<origin>/_head
//	<number of logs>
//	<root hash of the entries' tree, base64>
//	time <RFC 3339 UTC, microseconds>
//
// The first three are a tlog checkpoint of the tree whose leaves are the
// entries' lines (docs/verification.md gives the exact bytes).
type Head struct {
	Entries []HeadEntry `json:"entries"`
	Root    tlog.Hash   `json:"root"`
	Time    time.Time   `json:"time"`
	// Note is the signed note, verbatim.
	Note string `json:"note"`
}

// HeadError reports why a head was refused; it matches ErrBadCheckpoint.
type HeadError struct{ Detail string }

func (e *HeadError) Error() string { return "trailseal: bad deployment head: " + e.Detail }

// Is makes a HeadError match ErrBadCheckpoint.
func (e *HeadError) Is(target error) bool { return target == ErrBadCheckpoint }

func badHead(format string, args ...any) error {
	return &HeadError{Detail: fmt.Sprintf(format, args...)}
}

// headTime is the exact form of a head's time line.
func headTime(t time.Time) string { return t.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano) }

// HeadRoot returns the root hash of the tree whose leaves are entries'
// lines (sorted by log; the caller sorts).
func HeadRoot(entries []HeadEntry) (tlog.Hash, error) {
	leaves := headLeaves(entries)
	return tlog.TreeHash(int64(len(leaves)), memHashes(storedOf(leaves)))
}

// headLeaves returns the record hashes of entries' lines.
func headLeaves(entries []HeadEntry) []tlog.Hash {
	leaves := make([]tlog.Hash, len(entries))
	for i, e := range entries {
		leaves[i] = tlog.RecordHash(e.Line())
	}
	return leaves
}

// storedOf returns the stored hashes (tlog's layout) of the tree over leaves.
func storedOf(leaves []tlog.Hash) []tlog.Hash {
	var stored []tlog.Hash
	for i, h := range leaves {
		hs, err := tlog.StoredHashesForRecordHash(int64(i), h, memHashes(stored))
		if err != nil {
			panic(err) // memHashes serves every index the tree has
		}
		stored = append(stored, hs...)
	}
	return stored
}

type memHashes []tlog.Hash

func (m memHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(m)) {
			return nil, fmt.Errorf("trailseal: hash index %d not stored", x)
		}
		out[i] = m[x]
	}
	return out, nil
}

// SignHead signs the head over entries (any order; sorted here) at now.
// entries must be non-empty: a deployment with no checkpoint has no head.
func SignHead(signer note.Signer, origin string, entries []HeadEntry, now time.Time) (Head, error) {
	if len(entries) == 0 {
		return Head{}, errors.New("trailseal: sign head: no logs")
	}
	entries = slices.Clone(entries)
	slices.SortFunc(entries, func(a, b HeadEntry) int { return strings.Compare(a.Log, b.Log) })
	for i, e := range entries {
		if err := checkEntry(e); err != nil {
			return Head{}, fmt.Errorf("trailseal: sign head: %w", err)
		}
		if i > 0 && entries[i-1].Log == e.Log {
			return Head{}, fmt.Errorf("trailseal: sign head: log %q twice", e.Log)
		}
	}
	root, err := HeadRoot(entries)
	if err != nil {
		return Head{}, err
	}
	now = now.UTC().Truncate(time.Microsecond)
	text := fmt.Sprintf("%s\n%d\n%s\ntime %s\n", CheckpointOrigin(origin, HeadLog), len(entries), root, headTime(now))
	msg, err := note.Sign(&note.Note{Text: text}, signer)
	if err != nil {
		return Head{}, fmt.Errorf("trailseal: sign head: %w", err)
	}
	return Head{Entries: entries, Root: root, Time: now, Note: string(msg)}, nil
}

func checkEntry(e HeadEntry) error {
	if !validLogName(e.Log) {
		return badHead("log name %q", clip(e.Log))
	}
	if e.Size <= 0 {
		return badHead("log %q: size %d", e.Log, e.Size)
	}
	return nil
}

// validLogName: a tenant (letters, digits, . _ : -, starting with a letter
// or digit) or PlatformLog; never spaces, slashes or control characters.
func validLogName(s string) bool {
	if s == PlatformLog {
		return true
	}
	if s == "" || len(s) > 256 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case i > 0 && (r == '.' || r == '_' || r == ':' || r == '-'):
		default:
			return false
		}
	}
	return true
}

// HeadBody is the signed content of a head.
type HeadBody struct {
	Origin string
	Logs   int64
	Root   tlog.Hash
	Time   time.Time
}

// ParseHeadBody parses a head's note text: the three checkpoint lines and
// exactly one "time" line, every number and hash in canonical form.
func ParseHeadBody(text []byte) (HeadBody, error) {
	var h HeadBody
	cp, err := ParseCheckpointBody(text)
	if err != nil {
		return h, badHead("%v", err)
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) != 4 {
		return h, badHead("want 4 lines (origin, logs, root, time), have %d", len(lines))
	}
	ts, ok := strings.CutPrefix(lines[3], "time ")
	if !ok {
		return h, badHead("fourth line %q is not a time line", clip(lines[3]))
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil || headTime(t) != ts {
		return h, badHead("time %q is not RFC 3339 UTC in its shortest form", clip(ts))
	}
	if !strings.HasSuffix(cp.Origin, "/"+HeadLog) {
		return h, badHead("origin %q is not a head's (…/%s)", clip(cp.Origin), HeadLog)
	}
	return HeadBody{Origin: cp.Origin, Logs: cp.Size, Root: cp.Root, Time: t.UTC()}, nil
}

// OpenHead verifies a head's signed note with verifiers and parses it;
// wantOrigin, when set, is the deployment's origin (Config.Origin).
func OpenHead(signed []byte, verifiers note.Verifiers, wantOrigin string) (HeadBody, error) {
	n, err := note.Open(signed, verifiers)
	if err != nil {
		return HeadBody{}, badHead("signature: %v", err)
	}
	body, err := ParseHeadBody([]byte(n.Text))
	if err != nil {
		return body, err
	}
	if wantOrigin != "" && body.Origin != CheckpointOrigin(wantOrigin, HeadLog) {
		return body, badHead("head is for %q, want %q", clip(body.Origin), CheckpointOrigin(wantOrigin, HeadLog))
	}
	return body, nil
}

// MarshalHead returns a head's file form, what witnesses keep and
// GET /v1/head?format=file serves: the entries' lines, a blank line, then
// the signed note.
func MarshalHead(h Head) []byte {
	b := MarshalHeadEntries(h.Entries)
	b = append(b, '\n')
	return append(b, h.Note...)
}

// MarshalHeadEntries returns entries' lines, the form ParseHeadEntries
// reads and the SQL stores keep.
func MarshalHeadEntries(entries []HeadEntry) []byte {
	var b []byte
	for _, e := range entries {
		b = append(b, e.Line()...)
	}
	return b
}

// ParseHead parses and checks a head's file form (MarshalHead): every entry
// line well formed and in strictly increasing log order, the note signed by
// one of verifiers for wantOrigin (any origin when empty), its count and
// root those of the entries.
func ParseHead(b []byte, verifiers note.Verifiers, wantOrigin string) (Head, error) {
	i := bytes.Index(b, []byte("\n\n"))
	if i < 0 {
		return Head{}, badHead("no blank line between entries and note")
	}
	lines, signed := b[:i+1], b[i+2:]
	body, err := OpenHead(signed, verifiers, wantOrigin)
	if err != nil {
		return Head{}, err
	}
	entries, err := ParseHeadEntries(lines)
	if err != nil {
		return Head{}, err
	}
	if int64(len(entries)) != body.Logs {
		return Head{}, badHead("note counts %d logs, file lists %d", body.Logs, len(entries))
	}
	root, err := HeadRoot(entries)
	if err != nil {
		return Head{}, err
	}
	if root != body.Root {
		return Head{}, badHead("entries hash to %s, note says %s", root, body.Root)
	}
	return Head{Entries: entries, Root: root, Time: body.Time, Note: string(signed)}, nil
}

// ParseHeadEntries parses entry lines ("<log> <size> <root>\n" each, logs
// in strictly increasing bytewise order).
func ParseHeadEntries(b []byte) ([]HeadEntry, error) {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return nil, badHead("entries do not end in a newline")
	}
	var out []HeadEntry
	for n, line := range strings.Split(string(b[:len(b)-1]), "\n") {
		f := strings.Split(line, " ")
		if len(f) != 3 {
			return nil, badHead("entry %d: want \"log size root\"", n+1)
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || strconv.FormatInt(size, 10) != f[1] {
			return nil, badHead("entry %d: size %q", n+1, clip(f[1]))
		}
		root, err := tlog.ParseHash(f[2])
		if err != nil || root.String() != f[2] {
			return nil, badHead("entry %d: root %q", n+1, clip(f[2]))
		}
		e := HeadEntry{Log: f[0], Size: size, Root: root}
		if err := checkEntry(e); err != nil {
			return nil, err
		}
		if len(out) > 0 && out[len(out)-1].Log >= e.Log {
			return nil, badHead("entry %d: log %q out of order", n+1, clip(e.Log))
		}
		out = append(out, e)
	}
	return out, nil
}

// HeadProof proves that one entry is in a head: the entry's index among
// the head's sorted entries and the tlog record proof to the head's root.
type HeadProof struct {
	Index int64       `json:"index"`
	Proof []tlog.Hash `json:"proof"`
}

// ProveHeadEntry returns the proof of h.Entries[i].
func ProveHeadEntry(h Head, i int) (HeadProof, error) {
	leaves := headLeaves(h.Entries)
	p, err := tlog.ProveRecord(int64(len(leaves)), int64(i), memHashes(storedOf(leaves)))
	if err != nil {
		return HeadProof{}, fmt.Errorf("trailseal: head proof: %w", err)
	}
	return HeadProof{Index: int64(i), Proof: p}, nil
}

// CheckHeadEntry checks that e is entry p.Index of the head whose body is
// given (opened with OpenHead).
func CheckHeadEntry(body HeadBody, e HeadEntry, p HeadProof) error {
	if err := tlog.CheckRecord(p.Proof, body.Logs, body.Root, p.Index, tlog.RecordHash(e.Line())); err != nil {
		return fmt.Errorf("%w: head entry of %q: %v", ErrBadProof, e.Log, err)
	}
	return nil
}

// HeadStore is implemented by stores that keep deployment heads (both of
// Trail's SQL stores). The sealer saves a head whenever it signs
// checkpoints; verify and the API read the newest.
type HeadStore interface {
	// SaveHead appends h to the head history, fenced like Seal.
	SaveHead(ctx context.Context, fence Fence, h Head) error
	// LatestHead returns the newest head, or ErrNoHead.
	LatestHead(ctx context.Context) (Head, error)
}

package trailseal

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// DefaultOrigin is the origin prefix of checkpoints when Config.Origin is
// empty. Deployments should set their own (their host name), so that a
// checkpoint of one deployment can never pass as one of another.
const DefaultOrigin = "trail.example"

// CheckpointError reports why a checkpoint was refused. It matches
// ErrBadCheckpoint with errors.Is.
type CheckpointError struct {
	// Reason is one of "malformed", "bad_signature", "unknown_key",
	// "wrong_log".
	Reason string
	Detail string
	Err    error
}

func (e *CheckpointError) Error() string {
	s := "trailseal: bad checkpoint: " + e.Reason
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is makes every CheckpointError match ErrBadCheckpoint.
func (e *CheckpointError) Is(target error) bool { return target == ErrBadCheckpoint }

func (e *CheckpointError) Unwrap() error { return e.Err }

func badCheckpoint(reason, format string, args ...any) error {
	return &CheckpointError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// CheckpointOrigin returns the origin line of log's checkpoints:
// origin + "/" + log, e.g. "trail.example/acme" or "trail.example/_platform".
func CheckpointOrigin(origin, log string) string {
	if origin == "" {
		origin = DefaultOrigin
	}
	return origin + "/" + log
}

// CheckpointBody is the signed content of a checkpoint, in the
// transparency-log checkpoint format (C2SP tlog-checkpoint): three lines,
// the origin, the tree size in decimal, and the base64 root hash.
type CheckpointBody struct {
	Origin string
	Size   int64
	Root   tlog.Hash
}

// Format returns the note text of c.
func (c CheckpointBody) Format() []byte {
	return fmt.Appendf(nil, "%s\n%d\n%s\n", c.Origin, c.Size, c.Root)
}

// ParseCheckpointBody parses a checkpoint's note text. Lines after the third
// (extension lines) are allowed and ignored, as the format specifies; a
// missing line, a size that is not canonical decimal, or a hash that is not
// 32 bytes of standard base64 is an error matching ErrBadCheckpoint.
func ParseCheckpointBody(text []byte) (CheckpointBody, error) {
	var c CheckpointBody
	if len(text) == 0 || text[len(text)-1] != '\n' {
		return c, badCheckpoint("malformed", "text does not end in a newline (truncated?)")
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) < 3 {
		return c, badCheckpoint("malformed", "want origin, size and root hash lines, have %d line(s)", len(lines))
	}
	if !validOrigin(lines[0]) {
		return c, badCheckpoint("malformed", "origin line %q", clip(lines[0]))
	}
	c.Origin = lines[0]
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != lines[1] {
		return c, badCheckpoint("malformed", "tree size %q", clip(lines[1]))
	}
	c.Size = n
	h, err := tlog.ParseHash(lines[2])
	if err != nil || h.String() != lines[2] {
		return c, badCheckpoint("malformed", "root hash %q", clip(lines[2]))
	}
	c.Root = h
	for _, l := range lines[3:] {
		if l == "" {
			return c, badCheckpoint("malformed", "empty extension line")
		}
	}
	return c, nil
}

func validOrigin(s string) bool {
	if s == "" || len(s) > 512 {
		return false
	}
	for _, r := range s {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// SignCheckpoint signs the checkpoint of log at size with root, under origin.
func SignCheckpoint(signer note.Signer, origin, log string, size int64, root tlog.Hash, now time.Time) (Checkpoint, error) {
	body := CheckpointBody{Origin: CheckpointOrigin(origin, log), Size: size, Root: root}
	msg, err := note.Sign(&note.Note{Text: string(body.Format())}, signer)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("trailseal: sign checkpoint: %w", err)
	}
	return Checkpoint{Log: log, Size: size, Root: root, Note: string(msg), Time: now.UTC()}, nil
}

// OpenCheckpoint verifies a signed checkpoint with verifiers and parses it.
// When wantOrigin is not empty the checkpoint must be for that origin line
// (see CheckpointOrigin): a checkpoint of another log is refused even when
// its signature is good. Every failure matches ErrBadCheckpoint and is a
// *CheckpointError whose Reason says which check failed.
func OpenCheckpoint(signed []byte, verifiers note.Verifiers, wantOrigin string) (CheckpointBody, error) {
	n, err := note.Open(signed, verifiers)
	if err != nil {
		var unknown *note.UnknownVerifierError
		var invalid *note.InvalidSignatureError
		var unverified *note.UnverifiedNoteError
		switch {
		case errors.As(err, &unknown), errors.As(err, &unverified):
			return CheckpointBody{}, &CheckpointError{Reason: "unknown_key", Detail: "not signed by a trusted key", Err: err}
		case errors.As(err, &invalid):
			return CheckpointBody{}, &CheckpointError{Reason: "bad_signature", Err: err}
		default:
			return CheckpointBody{}, &CheckpointError{Reason: "malformed", Detail: "not a signed note (truncated?)", Err: err}
		}
	}
	body, err := ParseCheckpointBody([]byte(n.Text))
	if err != nil {
		return body, err
	}
	if wantOrigin != "" && body.Origin != wantOrigin {
		return body, badCheckpoint("wrong_log", "checkpoint is for %q, want %q", clip(body.Origin), clip(wantOrigin))
	}
	return body, nil
}

// noteText returns the text part of a signed note without verifying it, for
// reports about checkpoints whose signature failed.
func noteText(signed []byte) []byte {
	if i := bytes.Index(signed, []byte("\n\n")); i >= 0 {
		return signed[:i+1]
	}
	return signed
}

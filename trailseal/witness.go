package trailseal

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// A Witness keeps copies of signed checkpoints and heads where the
// database's administrator cannot rewrite them: a directory on another
// machine (DirWitness), an S3 bucket with Object Lock, an HTTP endpoint
// (package trailwitness of the server module). The sealer writes every
// checkpoint and head it signs to each configured witness; `trail verify
// --witness` compares the store with what a witness holds.
//
// Keys are the same on every witness (WitnessCheckpointKey,
// WitnessHeadKey). Put never replaces an object: writing the same bytes
// again is a success, different bytes under an existing key fail with
// ErrWitnessConflict.
type Witness interface {
	Put(ctx context.Context, key string, body []byte) error
	// String names the witness in messages (no credentials).
	String() string
}

// WitnessReader lists and reads what a witness holds: what verify and the
// monitor need. Keys come back sorted.
type WitnessReader interface {
	List(ctx context.Context, prefix string) ([]string, error)
	Get(ctx context.Context, key string) ([]byte, error)
	String() string
}

// ErrWitnessConflict is returned by Witness.Put when the key already holds
// different bytes: two different checkpoints of one size (a fork), or a
// clash of heads.
var ErrWitnessConflict = errors.New("trailseal: witness already holds different bytes under this key")

// Witness key prefixes.
const (
	WitnessCheckpoints = "checkpoints/"
	WitnessHeads       = "heads/"
)

// WitnessCheckpointKey is where witnesses keep a checkpoint:
// "checkpoints/<log>/<size, 20 digits>-<root, 64 hex digits>.note". The
// size and root are in the name so that a listing alone shows every
// witnessed state of a log, and two roots of one size (a fork) are two
// objects, never an overwrite.
func WitnessCheckpointKey(cp Checkpoint) string {
	return fmt.Sprintf("%s%s/%020d-%s.note", WitnessCheckpoints, cp.Log, cp.Size, hex.EncodeToString(cp.Root[:]))
}

// WitnessHeadKey is where witnesses keep a head:
// "heads/<unix microseconds, 20 digits>-<root, 64 hex digits>.head"; the
// newest head is the last key in bytewise order.
func WitnessHeadKey(h Head) string {
	return fmt.Sprintf("%s%020d-%s.head", WitnessHeads, h.Time.UnixMicro(), hex.EncodeToString(h.Root[:]))
}

// WitnessedCheckpoint is a checkpoint key parsed back.
type WitnessedCheckpoint struct {
	Key  string
	Log  string
	Size int64
	Root tlog.Hash
}

// ParseWitnessCheckpointKey parses a WitnessCheckpointKey.
func ParseWitnessCheckpointKey(key string) (WitnessedCheckpoint, error) {
	rest, ok := strings.CutPrefix(key, WitnessCheckpoints)
	if !ok {
		return WitnessedCheckpoint{}, fmt.Errorf("trailseal: witness key %q: not a checkpoint", clip(key))
	}
	log, name, ok := strings.Cut(rest, "/")
	name, okExt := strings.CutSuffix(name, ".note")
	sz, rt, okDash := strings.Cut(name, "-")
	if !ok || !okExt || !okDash || !validLogName(log) || len(sz) != 20 || len(rt) != 64 {
		return WitnessedCheckpoint{}, fmt.Errorf("trailseal: witness key %q: malformed", clip(key))
	}
	size, err := strconv.ParseInt(sz, 10, 64)
	raw, herr := hex.DecodeString(rt)
	if err != nil || size <= 0 || herr != nil || hex.EncodeToString(raw) != rt {
		return WitnessedCheckpoint{}, fmt.Errorf("trailseal: witness key %q: malformed", clip(key))
	}
	w := WitnessedCheckpoint{Key: key, Log: log, Size: size}
	copy(w.Root[:], raw)
	return w, nil
}

// DirWitness keeps witnessed objects as files under a directory (mode
// 0600 files, 0700 directories, written to a temporary name, synced, then
// linked into place so that an existing file is never replaced). It is a
// witness only when the directory is out of the database administrator's
// reach: another machine's mount, a disk with its own permissions, a
// synced folder with history.
type DirWitness struct {
	Dir string
}

func (d DirWitness) String() string { return "dir:" + d.Dir }

func (d DirWitness) path(key string) (string, error) {
	if key == "" || strings.Contains(key, "..") || strings.HasPrefix(key, "/") || strings.ContainsAny(key, "\\\x00") {
		return "", fmt.Errorf("trailseal: witness key %q: not a clean relative path", clip(key))
	}
	return filepath.Join(d.Dir, filepath.FromSlash(key)), nil
}

// Put writes body under key unless it exists; existing equal bytes are a
// success, different bytes ErrWitnessConflict.
func (d DirWitness) Put(ctx context.Context, key string, body []byte) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("trailseal: witness %s: %w", d, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".put-*")
	if err != nil {
		return fmt.Errorf("trailseal: witness %s: %w", d, err)
	}
	_, werr := tmp.Write(body)
	if serr := tmp.Sync(); werr == nil {
		werr = serr
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	defer os.Remove(tmp.Name())
	if werr != nil {
		return fmt.Errorf("trailseal: witness %s: %w", d, werr)
	}
	// link fails when p exists: an object is never replaced.
	if err := os.Link(tmp.Name(), p); err != nil {
		if errors.Is(err, fs.ErrExist) {
			old, rerr := os.ReadFile(p)
			if rerr == nil && bytes.Equal(old, body) {
				return nil
			}
			return fmt.Errorf("%w: %s %s", ErrWitnessConflict, d, key)
		}
		return fmt.Errorf("trailseal: witness %s: %w", d, err)
	}
	if dir, err := os.Open(filepath.Dir(p)); err == nil {
		dir.Sync()
		dir.Close()
	}
	return nil
}

// List returns the keys under prefix, sorted.
func (d DirWitness) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	err := filepath.WalkDir(d.Dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == d.Dir {
				return fs.SkipAll
			}
			return err
		}
		if de.IsDir() || strings.HasPrefix(de.Name(), ".put-") {
			return nil
		}
		rel, err := filepath.Rel(d.Dir, p)
		if err != nil {
			return err
		}
		if k := filepath.ToSlash(rel); strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("trailseal: witness %s: %w", d, err)
	}
	slices.Sort(keys)
	return keys, nil
}

// Get reads the object at key.
func (d DirWitness) Get(ctx context.Context, key string) ([]byte, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("trailseal: witness %s: %w", d, err)
	}
	return b, nil
}

package trailarchive

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ArchiveEnv is the environment variable naming the default archive target.
const ArchiveEnv = "TRAIL_ARCHIVE"

// ErrNotExist is returned by Target.Get for a key that is not stored. It
// matches fs.ErrNotExist.
var ErrNotExist = fs.ErrNotExist

// Target is where archives are written: a directory, or an S3 bucket. Keys
// are slash-separated paths (tenant=T/date=D/name.parquet).
type Target interface {
	// Put stores data at key, whole or not at all.
	Put(ctx context.Context, key string, data []byte) error
	// Get returns the data at key, or an error matching ErrNotExist.
	Get(ctx context.Context, key string) ([]byte, error)
	// List returns the keys under prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// String names the target for messages.
	String() string
}

// OpenTarget opens the target spec names: s3://bucket/prefix, or a
// directory (created on first write).
func OpenTarget(ctx context.Context, spec string) (Target, error) {
	if spec == "" {
		return nil, errors.New("no archive target: --archive-to DIR|s3://bucket/prefix, or $" + ArchiveEnv)
	}
	if rest, ok := strings.CutPrefix(spec, "s3://"); ok {
		t, err := OpenS3(ctx, rest)
		if err != nil {
			return nil, err
		}
		return t, nil
	}
	return &Dir{Root: spec}, nil
}

// Dir is a Target in a local directory. Put writes a temporary file, syncs
// it and renames it into place, so a key holds whole data or nothing.
type Dir struct{ Root string }

func (d *Dir) String() string { return d.Root }

func (d *Dir) path(key string) (string, error) {
	if key == "" || strings.Contains(key, "..") || strings.HasPrefix(key, "/") || strings.Contains(key, `\`) {
		return "", fmt.Errorf("trailarchive: bad key %q", key)
	}
	return filepath.Join(d.Root, filepath.FromSlash(key)), nil
}

// Put implements Target.
func (d *Dir) Put(ctx context.Context, key string, data []byte) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("trailarchive: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("trailarchive: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("trailarchive: write %s: %w", p, err)
	}
	return nil
}

// Get implements Target.
func (d *Dir) Get(ctx context.Context, key string) ([]byte, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("trailarchive: %w", err)
	}
	return b, nil
}

// List implements Target.
func (d *Dir) List(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(d.Root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == d.Root {
				return fs.SkipAll
			}
			return err
		}
		if de.IsDir() || strings.HasPrefix(de.Name(), ".tmp-") {
			return nil
		}
		rel, err := filepath.Rel(d.Root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if strings.HasPrefix(key, prefix) {
			out = append(out, key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("trailarchive: list %s: %w", d.Root, err)
	}
	slices.Sort(out)
	return out, nil
}

package trailwitness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/trailhq/trail/server/trailarchive"
	"github.com/trailhq/trail/trailseal"
)

// S3 is a witness in an S3-compatible bucket that has Object Lock enabled
// (OpenS3 refuses one without): every object is put with a COMPLIANCE
// retention, so that neither the database's administrator nor the
// bucket's owner can delete it before it expires. Give the sealer
// credentials that may put and read, never delete or change retention.
//
// A locked version cannot be deleted or overwritten, but a new version of a
// key can be put; Put never puts a key that exists, and List reports a key
// with more than one version as a problem (Versions).
type S3 struct {
	t   *trailarchive.S3
	opt Options
}

// OpenS3 opens bucket/prefix (the part after s3://) through the archive's
// S3 client (same endpoint and credentials: $TRAIL_S3_ENDPOINT, AWS_*) and
// checks that Object Lock is on.
func OpenS3(ctx context.Context, spec string, opt *Options) (*S3, error) {
	t, err := trailarchive.OpenS3(ctx, spec)
	if err != nil {
		// The archive's client names itself "archive target": say witness.
		return nil, errors.New("witness " + strings.TrimPrefix(err.Error(), "archive target "))
	}
	if !t.Locked {
		return nil, fmt.Errorf("witness %s: the bucket has no Object Lock: a witness must be a bucket nobody can rewrite (create it with Object Lock enabled)", t)
	}
	o := *opt
	if o.Retention <= 0 {
		o.Retention = 366 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &S3{t: t, opt: o}, nil
}

func (w *S3) String() string { return "witness " + w.t.String() }

// Put implements trailseal.Witness: an existing key with the same bytes is
// a success, with other bytes trailseal.ErrWitnessConflict; a new object
// is put with a SHA-256 checksum and a COMPLIANCE retention.
func (w *S3) Put(ctx context.Context, key string, body []byte) error {
	old, err := w.t.Get(ctx, key)
	switch {
	case err == nil && bytes.Equal(old, body):
		return nil
	case err == nil:
		return fmt.Errorf("%w: %s %s", trailseal.ErrWitnessConflict, w, key)
	case !errors.Is(err, trailarchive.ErrNotExist):
		return err
	}
	until := w.opt.Now().Add(w.opt.Retention)
	_, err = w.t.Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &w.t.Bucket, Key: aws.String(w.t.Prefix + key), Body: bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))), ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
		ObjectLockMode: types.ObjectLockModeCompliance, ObjectLockRetainUntilDate: &until,
	})
	if err != nil {
		return fmt.Errorf("%s: put %s: %w", w, key, err)
	}
	return nil
}

// Get implements trailseal.WitnessReader.
func (w *S3) Get(ctx context.Context, key string) ([]byte, error) { return w.t.Get(ctx, key) }

// List implements trailseal.WitnessReader.
func (w *S3) List(ctx context.Context, prefix string) ([]string, error) {
	keys, err := w.t.List(ctx, prefix)
	slices.Sort(keys)
	return keys, err
}

// Versions returns the keys under prefix that have more than one version:
// a witness object was replaced (a new version put over a locked one).
func (w *S3) Versions(ctx context.Context, prefix string) ([]string, error) {
	count := map[string]int{}
	var out []string
	p := s3.NewListObjectVersionsPaginator(w.t.Client, &s3.ListObjectVersionsInput{Bucket: &w.t.Bucket, Prefix: aws.String(w.t.Prefix + prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: list versions: %w", w, err)
		}
		for _, v := range page.Versions {
			k := aws.ToString(v.Key)[len(w.t.Prefix):]
			if count[k]++; count[k] == 2 {
				out = append(out, k)
			}
		}
	}
	return out, nil
}

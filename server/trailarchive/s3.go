package trailarchive

import (
	"context"
	"errors"
)

// OpenS3 opens s3://bucket/prefix (without the scheme).
func OpenS3(ctx context.Context, spec string) (Target, error) {
	return nil, errors.New("trailarchive: S3 targets are not implemented yet")
}

package trailarchive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3EndpointEnv names the S3-compatible endpoint (versitygw, MinIO, Ceph…);
// unset means AWS itself.
const S3EndpointEnv = "TRAIL_S3_ENDPOINT"

// S3 is a Target in an S3 bucket under a prefix. Credentials and region come
// from the usual AWS_* variables (region defaults to us-east-1). Requests are
// path-style; against a non-AWS endpoint checksums are sent and checked only
// when the operation requires them. Puts carry a SHA-256 checksum, which
// Object Lock buckets require; in a bucket with a default COMPLIANCE
// retention every archive object is then immutable for that period.
type S3 struct {
	Client *s3.Client
	Bucket string
	Prefix string // "" or ending in "/"
	// Locked reports that the bucket has Object Lock enabled.
	Locked bool
	where  string
}

// OpenS3 opens bucket/prefix (an s3:// address without the scheme) and
// checks that the bucket is reachable with the credentials.
func OpenS3(ctx context.Context, spec string) (*S3, error) {
	bucket, prefix, _ := strings.Cut(spec, "/")
	if bucket == "" {
		return nil, fmt.Errorf("archive target s3://%s: no bucket", spec)
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("archive target s3://%s: AWS configuration: %w", spec, err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	endpoint := os.Getenv(S3EndpointEnv)
	c := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = true
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
	})
	where := "s3://" + spec
	if endpoint != "" {
		where += " at " + endpoint
	}
	t := &S3{Client: c, Bucket: bucket, Prefix: prefix, where: where}
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &bucket}); err != nil {
		return nil, t.explain("open", err)
	}
	if lc, err := c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: &bucket}); err == nil &&
		lc.ObjectLockConfiguration != nil && lc.ObjectLockConfiguration.ObjectLockEnabled == types.ObjectLockEnabledEnabled {
		t.Locked = true
	}
	return t, nil
}

func (t *S3) String() string { return t.where }

// explain turns an SDK error into one clear line.
func (t *S3) explain(op string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden", "403":
			return fmt.Errorf("archive target %s: %s: access denied (%s): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket's permissions", t.where, op, ae.ErrorCode())
		case "NoSuchBucket", "NotFound", "404":
			return fmt.Errorf("archive target %s: %s: no such bucket %q", t.where, op, t.Bucket)
		}
		return fmt.Errorf("archive target %s: %s: %s: %s", t.where, op, ae.ErrorCode(), ae.ErrorMessage())
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() == 403 {
		return fmt.Errorf("archive target %s: %s: access denied (403): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket's permissions", t.where, op)
	}
	return fmt.Errorf("archive target %s: %s: unreachable: %w", t.where, op, err)
}

// Put implements Target. A single PutObject is atomic: readers see the
// whole object or none.
func (t *S3) Put(ctx context.Context, key string, data []byte) error {
	_, err := t.Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &t.Bucket, Key: aws.String(t.Prefix + key), Body: bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))), ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
	})
	if err != nil {
		return t.explain("put "+key, err)
	}
	return nil
}

// Get implements Target.
func (t *S3) Get(ctx context.Context, key string) ([]byte, error) {
	out, err := t.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: &t.Bucket, Key: aws.String(t.Prefix + key)})
	if err != nil {
		var nk *types.NoSuchKey
		var ae smithy.APIError
		if errors.As(err, &nk) || (errors.As(err, &ae) && (ae.ErrorCode() == "NoSuchKey" || ae.ErrorCode() == "NotFound")) {
			return nil, fmt.Errorf("%s: %w", key, ErrNotExist)
		}
		return nil, t.explain("get "+key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, t.explain("get "+key, err)
	}
	return b, nil
}

// List implements Target.
func (t *S3) List(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	p := s3.NewListObjectsV2Paginator(t.Client, &s3.ListObjectsV2Input{Bucket: &t.Bucket, Prefix: aws.String(t.Prefix + prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, t.explain("list", err)
		}
		for _, o := range page.Contents {
			out = append(out, strings.TrimPrefix(aws.ToString(o.Key), t.Prefix))
		}
	}
	return out, nil
}

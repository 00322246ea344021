package logstream

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// s3Sender writes each batch as one gzip JSON Lines object named by the
// time of its first event and its sequence numbers:
// <prefix><YYYY>/<MM>/<DD>/<HH>/<stream>-<first seq>-<last seq>.jsonl.gz.
// A batch sent again after a crash has the same name when it has the same
// events. The client is set up as trailarchive's (path-style; checksums
// only when required against a non-AWS endpoint; SHA-256 on puts).
type s3Sender struct {
	c      *s3.Client
	bucket string
	prefix string
}

func newS3Sender(st *Stream, sec secrets) (*s3Sender, error) {
	d := &st.Destination
	region := d.Region
	if region == "" {
		region = "us-east-1"
	}
	o := s3.Options{Region: region, UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: d.AccessKeyID, SecretAccessKey: sec.Current}, nil
		})}
	if d.Endpoint != "" {
		o.BaseEndpoint = aws.String(d.Endpoint)
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}
	return &s3Sender{c: s3.New(o), bucket: d.Bucket, prefix: d.Prefix}, nil
}

func (s *s3Sender) close() {}

// ObjectKey is the key of a batch's object.
func ObjectKey(prefix, stream string, first, last int64, at interface{ Format(string) string }) string {
	return fmt.Sprintf("%s%s/%s-%012d-%012d.jsonl.gz", prefix, at.Format("2006/01/02/15"), stream, first, last)
}

func (s *s3Sender) send(ctx context.Context, st *Stream, items []item) error {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for _, it := range items {
		zw.Write(it.rec)
		zw.Write([]byte{'\n'})
	}
	if err := zw.Close(); err != nil {
		return err
	}
	key := ObjectKey(s.prefix, st.ID, items[0].seq, items[len(items)-1].seq, items[0].ev.RecordedAt.UTC())
	if items[0].seq == 0 {
		key = s.prefix + "_trail-test/" + st.ID + ".jsonl.gz"
	}
	_, err := s.c.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: &key, Body: bytes.NewReader(buf.Bytes()),
		ContentLength: aws.Int64(int64(buf.Len())), ContentType: aws.String("application/x-ndjson"), ContentEncoding: aws.String("gzip"),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return fmt.Errorf("s3://%s/%s: %s: %s", s.bucket, key, ae.ErrorCode(), ae.ErrorMessage())
		}
		return fmt.Errorf("s3://%s/%s: %w", s.bucket, key, err)
	}
	return nil
}

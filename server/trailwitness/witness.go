package trailwitness

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/trailhq/trail/trailseal"
)

// Env is the environment variable that may list witnesses, comma-separated,
// in the forms Open takes.
const Env = "TRAIL_WITNESS"

// ReadWriter is a witness that can also be read back: what the sealer
// writes and verify reads.
type ReadWriter interface {
	trailseal.Witness
	trailseal.WitnessReader
}

// Options configure the witnesses Open opens.
type Options struct {
	// Retention is how long an S3 witness's objects are locked (Object Lock,
	// COMPLIANCE mode: nobody, the bucket's owner included, can delete or
	// shorten it). Default: 366 days.
	Retention time.Duration
	// Token, when set, is sent as "Authorization: Bearer <Token>" to an HTTP
	// witness (env TRAIL_WITNESS_TOKEN in the CLI).
	Token string
	// Now is the clock of Object Lock retention dates. Default: time.Now.
	Now func() time.Time
}

// Open opens one witness:
//
//	dir:/path              a directory (trailseal.DirWitness)
//	s3://bucket/prefix     an S3 bucket with Object Lock (endpoint $TRAIL_S3_ENDPOINT, AWS_* credentials)
//	https://host/path      an HTTP witness (POST to store, GET to read back; see HTTP)
//	http://host/path       the same without TLS (loopback and tests)
func Open(ctx context.Context, spec string, opt *Options) (ReadWriter, error) {
	if opt == nil {
		opt = &Options{}
	}
	switch {
	case strings.HasPrefix(spec, "dir:"):
		dir := strings.TrimPrefix(spec, "dir:")
		if dir == "" {
			return nil, fmt.Errorf("witness %q: no directory", spec)
		}
		return trailseal.DirWitness{Dir: dir}, nil
	case strings.HasPrefix(spec, "s3://"):
		return OpenS3(ctx, strings.TrimPrefix(spec, "s3://"), opt)
	case strings.HasPrefix(spec, "https://"), strings.HasPrefix(spec, "http://"):
		u, err := url.Parse(spec)
		if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("witness %q: want https://host/path (no credentials, query or fragment in the URL)", spec)
		}
		return &HTTP{URL: strings.TrimSuffix(spec, "/"), Token: opt.Token}, nil
	}
	return nil, fmt.Errorf("witness %q: want dir:/path, s3://bucket/prefix or https://host/path", spec)
}

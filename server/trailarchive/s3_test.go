package trailarchive

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/trailhq/trail/internal/testenv"
)

const (
	vgwAccess = "trailtest"
	vgwSecret = "trailtestsecret"
)

// startVersityGW starts versitygw (go install
// github.com/versity/versitygw/cmd/versitygw@v1.8.0; .ci/run installs it) on
// a free loopback port with a posix directory and a versioning directory,
// and returns its endpoint.
func startVersityGW(t *testing.T) string {
	t.Helper()
	endpoint, _ := startVersityGWArgs(t)
	return endpoint
}

// startVersityGWArgs is startVersityGW with extra gateway flags (before the
// posix backend); it also returns the admin endpoint when adminAddr is
// among them as "--admin-port", "ADDR".
func startVersityGWArgs(t *testing.T, extra ...string) (endpoint, admin string) {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		gopath, _ := exec.Command("go", "env", "GOPATH").Output()
		cand := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "versitygw")
		if _, serr := os.Stat(cand); serr != nil {
			testenv.Unavailable(t, "versitygw (S3)", err)
			return "", ""
		}
		bin = cand
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	data, versions := filepath.Join(dir, "data"), filepath.Join(dir, "versions")
	os.MkdirAll(data, 0o750)
	os.MkdirAll(versions, 0o750)
	args := append([]string{"--access", vgwAccess, "--secret", vgwSecret, "--port", addr}, extra...)
	for i, a := range extra {
		if a == "--admin-port" && i+1 < len(extra) {
			admin = "http://" + extra[i+1]
		}
	}
	cmd := exec.Command(bin, append(args, "posix", "--versioning-dir", versions, data)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		testenv.Unavailable(t, "versitygw (S3)", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if i == 100 {
			t.Fatalf("versitygw did not start on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "http://" + addr, admin
}

// s3Env points the AWS SDK at endpoint with the given credentials.
func s3Env(t *testing.T, endpoint, access, secret string) {
	t.Setenv("AWS_ACCESS_KEY_ID", access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv(S3EndpointEnv, endpoint)
}

// The whole run into an Object Lock (COMPLIANCE) bucket: archived, read
// back, purged; the archive verifies and answers queries; deleting an
// archived object version is refused.
func TestS3ObjectLock(t *testing.T) {
	endpoint := startVersityGW(t)
	s3Env(t, endpoint, vgwAccess, vgwSecret)
	ctx := context.Background()
	tgt0, err := OpenS3(ctx, "placeholder")
	if err == nil || !strings.Contains(err.Error(), "no such bucket") {
		t.Fatalf("missing bucket: %v", err)
	}
	_ = tgt0
	// Create the bucket with Object Lock and a default compliance retention.
	admin := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: vgwAccess, SecretAccessKey: vgwSecret}, nil
		}),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired})
	bucket := "trail-archive"
	if _, err := admin.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket, ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{Bucket: &bucket,
		ObjectLockConfiguration: &types.ObjectLockConfiguration{ObjectLockEnabled: types.ObjectLockEnabledEnabled,
			Rule: &types.ObjectLockRule{DefaultRetention: &types.DefaultRetention{Mode: types.ObjectLockRetentionModeCompliance, Days: aws.Int32(1)}}},
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256}); err != nil {
		t.Fatal(err)
	}
	tgt, err := OpenS3(ctx, bucket+"/trail")
	if err != nil {
		t.Fatal(err)
	}
	if !tgt.Locked {
		t.Fatal("Object Lock not detected")
	}
	f := newFixture(t, 24*time.Hour)
	f.setPolicies(t)
	f.target = nil
	r := f.runner(t, func(c *Config) { c.Target = tgt })
	plan, err := r.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantA, wantD := plan.Totals()
	res, err := r.Run(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	if res.Archived != wantA || res.Purged != wantA+wantD {
		t.Fatalf("run: %+v", res)
	}
	arc := &Archive{Target: tgt, Verifiers: f.vs}
	vr, err := arc.Verify(ctx, f.store, Selection{})
	if err != nil || len(vr.Problems) != 0 || vr.Events != wantA {
		t.Fatalf("verify: %v %+v", err, vr)
	}
	f.verifyStore(t)
	// An archived object version cannot be deleted.
	keys, err := tgt.List(ctx, "")
	if err != nil || len(keys) == 0 {
		t.Fatal(keys, err)
	}
	vs, err := admin.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &bucket, Prefix: aws.String("trail/" + keys[0])})
	if err != nil || len(vs.Versions) == 0 {
		t.Fatal(vs, err)
	}
	_, err = admin.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String("trail/" + keys[0]), VersionId: vs.Versions[0].VersionId})
	if err == nil {
		t.Fatal("deleting a locked archive version succeeded")
	}
	if _, err := tgt.Get(ctx, keys[0]); err != nil {
		t.Fatalf("locked object gone: %v", err)
	}
}

// Wrong credentials and an unreachable endpoint: clear errors, nothing deleted.
func TestS3BadTargets(t *testing.T) {
	endpoint := startVersityGW(t)
	ctx := context.Background()
	s3Env(t, endpoint, vgwAccess, "wrong-secret")
	_, err := OpenS3(ctx, "bucket/x")
	if err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Fatalf("wrong credentials: %v", err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + l.Addr().String()
	l.Close()
	s3Env(t, dead, vgwAccess, vgwSecret)
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err = OpenS3(cctx, "bucket/x")
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("unreachable: %v", err)
	}
	// A run whose target fails after planning deletes nothing.
	f := newFixture(t, 48*time.Hour)
	f.setPolicies(t)
	before := f.count(t, "acme")
	r := f.runner(t, func(c *Config) { c.Target = failing{} })
	plan, _ := r.Plan(ctx)
	if _, err := r.Run(ctx, plan); err == nil || !strings.Contains(err.Error(), "nothing deleted") {
		t.Fatalf("failing target: %v", err)
	}
	if f.count(t, "acme") != before {
		t.Fatal("events deleted although the archive failed")
	}
}

type failing struct{}

func (failing) Put(context.Context, string, []byte) error { return errors.New("disk full") }
func (failing) Get(_ context.Context, k string) ([]byte, error) {
	return nil, fmt.Errorf("%s: %w", k, ErrNotExist)
}
func (failing) List(context.Context, string) ([]string, error) { return nil, nil }
func (failing) String() string                                 { return "failing" }

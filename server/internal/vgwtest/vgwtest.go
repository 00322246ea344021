// Package vgwtest starts a real S3-compatible server for tests: versitygw
// (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0, which
// .ci/run does) on a free loopback port, over a posix directory with
// versioning, so Object Lock works. A missing binary skips the test, or
// fails it under TRAIL_REQUIRE_SERVICES=1 (internal/testenv).
package vgwtest

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/trailhq/trail/internal/testenv"
)

// The root credentials of every gateway Start starts.
const (
	Access = "trailtest"
	Secret = "trailtestsecret"
)

// Gateway is a running versitygw.
type Gateway struct {
	// Endpoint is the S3 endpoint, http://127.0.0.1:PORT.
	Endpoint string
	// Admin is the admin endpoint when started with WithIAM, else "".
	Admin string
	bin   string
}

// Bin returns the versitygw binary: on PATH, or in $(go env GOPATH)/bin.
func Bin() (string, error) {
	bin, err := exec.LookPath("versitygw")
	if err == nil {
		return bin, nil
	}
	gopath, _ := exec.Command("go", "env", "GOPATH").Output()
	cand := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "versitygw")
	if _, serr := os.Stat(cand); serr != nil {
		return "", err
	}
	return cand, nil
}

// FreeAddr returns a free loopback address.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Start starts a gateway for the test; it stops with the test. iam adds
// an admin port and an IAM directory so that CreateUser works.
func Start(t testing.TB, iam bool) *Gateway {
	t.Helper()
	bin, err := Bin()
	if err != nil {
		testenv.Unavailable(t, "versitygw (S3)", err)
		return nil
	}
	addr := FreeAddr(t)
	g := &Gateway{Endpoint: "http://" + addr, bin: bin}
	dir := t.TempDir()
	data, versions := filepath.Join(dir, "data"), filepath.Join(dir, "versions")
	os.MkdirAll(data, 0o750)
	os.MkdirAll(versions, 0o750)
	args := []string{"--access", Access, "--secret", Secret, "--port", addr}
	if iam {
		admin := FreeAddr(t)
		g.Admin = "http://" + admin
		iamDir := filepath.Join(dir, "iam")
		os.MkdirAll(iamDir, 0o750)
		args = append(args, "--admin-port", admin, "--iam-dir", iamDir)
	}
	cmd := exec.Command(bin, append(args, "posix", "--versioning-dir", versions, data)...)
	// The access log goes to stdout: dropped; errors stay on stderr.
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		testenv.Unavailable(t, "versitygw (S3)", err)
		return nil
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
	return g
}

// Client returns an S3 client of the gateway with the given credentials
// (path-style, checksums only when required, as for any non-AWS endpoint).
func (g *Gateway) Client(access, secret string) *s3.Client {
	return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(g.Endpoint), UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: access, SecretAccessKey: secret}, nil
		}),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired})
}

// Bucket creates a bucket as root.
func (g *Gateway) Bucket(t testing.TB, name string) {
	t.Helper()
	if _, err := g.Client(Access, Secret).CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
}

// CreateUser adds a gateway user (role "user": only its own buckets, and
// what bucket policies grant it). The gateway must have been started with iam.
func (g *Gateway) CreateUser(t testing.TB, access, secret string) {
	t.Helper()
	out, err := exec.Command(g.bin, "admin", "--access", Access, "--secret", Secret, "--endpoint-url", g.Admin,
		"create-user", "--access", access, "--secret", secret, "--role", "user").CombinedOutput()
	if err != nil {
		t.Fatalf("create gateway user: %v: %s", err, out)
	}
}

// Env points the AWS SDK (AWS_* variables, TRAIL_S3_ENDPOINT) at the
// gateway with the given credentials, for the test's duration, and hides
// any shared AWS configuration of the machine.
func (g *Gateway) Env(t testing.TB, access, secret string) {
	t.Helper()
	EnvAt(t, g.Endpoint, access, secret)
}

// EnvAt is Env for any endpoint (an unreachable one, say).
func EnvAt(t testing.TB, endpoint, access, secret string) {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("TRAIL_S3_ENDPOINT", endpoint)
}

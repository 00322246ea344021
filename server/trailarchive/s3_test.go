package trailarchive

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/trailhq/trail/server/internal/vgwtest"
)

// The whole run into an Object Lock (COMPLIANCE) bucket: archived, read
// back, purged; the archive verifies and answers queries; deleting an
// archived object version is refused.
func TestS3ObjectLock(t *testing.T) {
	g := vgwtest.Start(t, false)
	g.Env(t, vgwtest.Access, vgwtest.Secret)
	ctx := context.Background()
	tgt0, err := OpenS3(ctx, "placeholder")
	if err == nil || !strings.Contains(err.Error(), "no such bucket") {
		t.Fatalf("missing bucket: %v", err)
	}
	_ = tgt0
	// Create the bucket with Object Lock and a default compliance retention.
	admin := g.Client(vgwtest.Access, vgwtest.Secret)
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
	g := vgwtest.Start(t, false)
	ctx := context.Background()
	g.Env(t, vgwtest.Access, "wrong-secret")
	_, err := OpenS3(ctx, "bucket/x")
	if err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Fatalf("wrong credentials: %v", err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + l.Addr().String()
	l.Close()
	vgwtest.EnvAt(t, dead, vgwtest.Access, vgwtest.Secret)
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

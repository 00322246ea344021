package trailwitness_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/trailhq/trail/server/internal/vgwtest"
	"github.com/trailhq/trail/server/trailwitness"
	"github.com/trailhq/trail/trailseal"
	"github.com/trailhq/trail/trailseal/sealtest"
)

// The HTTP witness against its own receiver (Handler over a directory):
// the contract, a wrong token refused, bad keys refused by the receiver.
func TestHTTPWitness(t *testing.T) {
	dir := t.TempDir()
	srv := httptest.NewServer(&trailwitness.Handler{Dir: trailseal.DirWitness{Dir: dir}, Token: "s3cret"})
	defer srv.Close()
	ctx := context.Background()
	w, err := trailwitness.Open(ctx, srv.URL+"/", &trailwitness.Options{Token: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	sealtest.RunWitness(t, w)
	// What the receiver keeps is a directory witness verify can read too.
	keys, err := trailseal.DirWitness{Dir: dir}.List(ctx, trailseal.WitnessCheckpoints+"acme/")
	if err != nil || len(keys) < 2 {
		t.Fatalf("receiver's directory: %v %v", keys, err)
	}
	bad, _ := trailwitness.Open(ctx, srv.URL, &trailwitness.Options{Token: "wrong"})
	if err := bad.Put(ctx, "checkpoints/acme/c", []byte("x")); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong token: %v", err)
	}
	if err := w.Put(ctx, "elsewhere/x", []byte("x")); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("key outside checkpoints/ and heads/: %v", err)
	}
	if err := w.Put(ctx, "checkpoints/../../x", []byte("x")); err == nil {
		t.Fatal("a key escaping the receiver's directory was accepted")
	}
}

func TestOpenRefusesUnclearSpecs(t *testing.T) {
	for _, spec := range []string{"", "/tmp/x", "dir:", "ftp://x", "https://user:pw@host/x", "https://host/x?y=1"} {
		if _, err := trailwitness.Open(context.Background(), spec, nil); err == nil {
			t.Errorf("%q accepted", spec)
		}
	}
}

// The S3 witness on a real S3-compatible server with Object Lock
// (versitygw): a bucket without Object Lock is refused; the contract; every
// object is locked (COMPLIANCE), so deleting it fails even with the
// bucket owner's credentials; a version put over a key is reported.
func TestS3Witness(t *testing.T) {
	g := vgwtest.Start(t, false)
	g.Env(t, vgwtest.Access, vgwtest.Secret)
	ctx := context.Background()
	admin := g.Client(vgwtest.Access, vgwtest.Secret)
	g.Bucket(t, "plain")
	if _, err := trailwitness.Open(ctx, "s3://plain/w", nil); err == nil || !strings.Contains(err.Error(), "no Object Lock") {
		t.Fatalf("bucket without Object Lock: %v", err)
	}
	bucket := "witness"
	if _, err := admin.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket, ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	w, err := trailwitness.Open(ctx, "s3://witness/prod", &trailwitness.Options{Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	sealtest.RunWitness(t, w)
	keys, err := w.List(ctx, trailseal.WitnessCheckpoints)
	if err != nil || len(keys) < 3 {
		t.Fatalf("list: %v %v", keys, err)
	}
	key := "prod/" + keys[len(keys)-1]
	ret, err := admin.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{Bucket: &bucket, Key: &key})
	if err != nil || ret.Retention == nil || string(ret.Retention.Mode) != "COMPLIANCE" || !ret.Retention.RetainUntilDate.After(time.Now().Add(50*time.Minute)) {
		t.Fatalf("retention of %s: %+v %v", key, ret, err)
	}
	vs, err := admin.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &bucket, Prefix: &key})
	if err != nil || len(vs.Versions) != 1 {
		t.Fatalf("versions: %v %v", vs, err)
	}
	if _, err := admin.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &key, VersionId: vs.Versions[0].VersionId}); err == nil {
		t.Fatal("the bucket owner deleted a locked witness object")
	}
	// A new version put over a kept key (what Object Lock cannot prevent)
	// is reported.
	if _, err := admin.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader("forged")}); err != nil {
		t.Fatal(err)
	}
	replaced, err := w.(*trailwitness.S3).Versions(ctx, "")
	if err != nil || len(replaced) != 1 || "prod/"+replaced[0] != key {
		t.Fatalf("replaced keys: %v %v", replaced, err)
	}
}

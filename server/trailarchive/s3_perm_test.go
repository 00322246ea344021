package trailarchive

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/trailhq/trail/server/internal/vgwtest"
)

// A bucket the archive's credentials may not use: a clear error at open; a
// bucket they may read but not write: the run fails at its first write with
// nothing deleted. Real gateway users and a real bucket policy (versitygw
// with its IAM), no fake.
func TestS3BucketPermissions(t *testing.T) {
	g := vgwtest.Start(t, true)
	ctx := context.Background()
	const user, userSecret = "archiver", "archiversecret"
	g.CreateUser(t, user, userSecret)
	g.Bucket(t, "not-yours")
	g.Bucket(t, "read-only")
	root := g.Client(vgwtest.Access, vgwtest.Secret)
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["` + user + `"]},
		"Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::read-only","arn:aws:s3:::read-only/*"]}]}`
	if _, err := root.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("read-only"), Policy: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}
	g.Env(t, user, userSecret)

	_, err := OpenS3(ctx, "not-yours/trail")
	if err == nil || !strings.Contains(err.Error(), "access denied") || !strings.Contains(err.Error(), "permissions") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("bucket of another owner: %v", err)
	}

	tgt, err := OpenS3(ctx, "read-only/trail")
	if err != nil {
		t.Fatalf("read-only bucket should open (reads are allowed): %v", err)
	}
	f := newFixture(t, 48*time.Hour)
	f.setPolicies(t)
	before := f.count(t, "acme")
	r := f.runner(t, func(c *Config) { c.Target = tgt })
	plan, err := r.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := plan.Totals(); a == 0 {
		t.Fatal("the plan archives nothing: the test would prove nothing")
	}
	_, err = r.Run(ctx, plan)
	if err == nil || !strings.Contains(err.Error(), "access denied") || !strings.Contains(err.Error(), "nothing deleted") {
		t.Fatalf("run into a read-only bucket: %v", err)
	}
	if got := f.count(t, "acme"); got != before {
		t.Fatalf("acme has %d events, had %d: purged although the archive could not be written", got, before)
	}
	keys, err := tgt.List(ctx, "")
	if err != nil || len(keys) != 0 {
		t.Fatalf("read-only bucket holds %v (%v)", keys, err)
	}
}

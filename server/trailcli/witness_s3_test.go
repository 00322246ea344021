package trailcli

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/trailhq/trail/server/internal/vgwtest"
	"github.com/trailhq/trail/trailseal/sealtest"
)

// The S3 witness end to end, on versitygw with Object Lock: trail seal
// writes to it, verify passes, then a whole tenant deleted from the SQLite
// file (heads too) fails verify --witness s3://….
func TestS3WitnessCatchesDeletedTenant(t *testing.T) {
	g := vgwtest.Start(t, false)
	g.Env(t, vgwtest.Access, vgwtest.Secret)
	bucket := "trail-witness"
	if _, err := g.Client(vgwtest.Access, vgwtest.Secret).CreateBucket(context.Background(),
		&s3.CreateBucketInput{Bucket: &bucket, ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	wit := "s3://" + bucket + "/prod"
	s := newSQLiteAttack(t)
	s.append(t, append(sealtest.Events(t, "acme", 0, 4), sealtest.Events(t, "globex", 0, 3)...))
	mustRun(t, "", env{}, append([]string{"seal", "--witness", wit, "--witness-retention", "1h"}, s.args()...)...)
	if r := mustRun(t, "", env{}, append([]string{"verify", "--witness", wit}, s.args()...)...); !strings.Contains(r.stdout, "OK:") {
		t.Fatalf("verify: %q", r.stdout)
	}
	s.exec(t, append(s.deleteTenantSQL("globex"), "DELETE FROM trail_seal_heads")...)
	r := run(t, "", env{}, append([]string{"verify", "--witness", wit}, s.args()...)...)
	if r.code != 1 || !strings.Contains(r.stdout, `PROBLEM tenant "globex" checkpoint 3: tenant_deleted`) {
		t.Fatalf("verify after deleting globex: %d %q %q", r.code, r.stdout, r.stderr)
	}
}

package logstream

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/trailhq/trail/server/internal/vgwtest"
)

// TestS3Versitygw: an S3 stream to versitygw writes gzip JSON Lines
// objects named by time and sequence; read back, they hold every event of
// the tenant in order with no gap. Wrong credentials are refused at
// creation.
func TestS3Versitygw(t *testing.T) {
	f := newFixture(t, onSQLite)
	g := vgwtest.Start(t, false)
	g.Bucket(t, "audit")
	ctx := adminCtx()
	req := CreateRequest{Tenant: "acme", Name: "lake", Format: FormatTrail,
		Destination: Destination{Type: TypeS3, Endpoint: g.Endpoint, Bucket: "audit", Prefix: "trail/acme/", AccessKeyID: vgwtest.Access},
		Secret:      "wrong", Batching: Batching{MaxEvents: 100, MaxWaitMS: 1}}
	if _, err := f.m.Create(ctx, Caller{All: true}, req); err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Fatalf("wrong secret key: %v", err)
	}
	req.Secret = vgwtest.Secret
	f.step(t)
	s, err := f.m.Create(ctx, Caller{All: true}, req)
	if err != nil {
		t.Fatal(err)
	}
	f.start[s.ID] = f.size(t, "acme")
	rec := ids(f.record(t, "acme", 450))
	want := f.want(t, s, rec)
	f.until(t, "all in the bucket", func() bool { return f.health(t, s.ID).Delivered >= int64(len(want)) })

	c := g.Client(vgwtest.Access, vgwtest.Secret)
	out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("audit"), Prefix: aws.String("trail/acme/2")})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, *o.Key)
	}
	sort.Strings(keys) // names sort by time, then by sequence
	var got []string
	for _, k := range keys {
		if !strings.HasSuffix(k, ".jsonl.gz") || !strings.Contains(k, s.ID) {
			t.Fatalf("object %s", k)
		}
		obj, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("audit"), Key: aws.String(k)})
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(obj.Body)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(zr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var e Envelope
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatal(err)
			}
			if e.Seq != int64(len(got))+1 {
				t.Fatalf("%s: seq %d after %d", k, e.Seq, len(got))
			}
			got = append(got, e.Event.ID.String())
		}
		io.Copy(io.Discard, zr)
		obj.Body.Close()
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("bucket holds %d events, want %d in log order", len(got), len(want))
	}
}

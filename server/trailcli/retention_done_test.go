package trailcli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/internal/vgwtest"
)

// Issue 7's "done when", through the CLI only: the demo store (two years
// of events) is archived and purged by policy into a real S3 server
// (versitygw), a held tenant stays untouched, the archived events come back
// through `trail query --archive`, and `trail verify` passes over hot and
// archived data together, then fails once an archive file is edited.
func TestRetentionDoneWhen(t *testing.T) {
	g := vgwtest.Start(t, false)
	g.Bucket(t, "trail-archive")
	g.Env(t, vgwtest.Access, vgwtest.Secret)
	const arc = "s3://trail-archive/prod"

	db := tempDB(t)
	mustRun(t, db, env{}, "demo", "--events", "4000")
	mustRun(t, db, env{}, "seal")
	mustRun(t, db, env{}, "retention", "set", "--keep", "365d")
	mustRun(t, db, env{}, "retention", "set", "--action", "auth.*", "--keep", "90d", "--then", "delete")
	mustRun(t, db, env{}, "retention", "hold", "--tenant", "globex", "--reason", "litigation 2026-17")

	tenants := []string{"acme", "globex", "initech"}
	before := map[string]int{}
	for _, tn := range tenants {
		before[tn] = tenantCount(t, db, tn)
		if before[tn] == 0 {
			t.Fatalf("demo has no events of %s", tn)
		}
	}
	// Plan changes nothing and names the held tenant's events as held.
	plan := mustRun(t, db, env{}, "retention", "plan").stdout
	if !strings.Contains(plan, "archive tenant=acme") || strings.Contains(plan, "tenant=globex") || !strings.Contains(plan, "held by a legal hold") {
		t.Fatalf("plan:\n%s", plan)
	}
	if tenantCount(t, db, "acme") != before["acme"] {
		t.Fatal("plan deleted events")
	}

	// A file per batch (--archive-file-bytes 1), so that editing one
	// batch's file below damages that batch alone.
	out := mustRun(t, db, env{}, "retention", "run", "--archive-to", arc, "--archive-file-bytes", "1").stdout
	if !strings.Contains(out, "Archived ") {
		t.Fatalf("run: %q", out)
	}
	if n := tenantCount(t, db, "globex"); n != before["globex"] {
		t.Fatalf("held tenant globex: %d events, had %d", n, before["globex"])
	}
	for _, tn := range []string{"acme", "initech"} {
		if n := tenantCount(t, db, tn); n >= before[tn] {
			t.Fatalf("%s: %d events after the run, had %d: nothing purged", tn, n, before[tn])
		}
	}
	// No hot acme event is older than a year (recorded time) any more.
	year := time.Now().Add(-365 * 24 * time.Hour)
	if n := hotBefore(t, db, "acme", year.Add(-time.Hour)); n != 0 {
		t.Fatalf("%d acme events recorded over a year ago are still hot", n)
	}

	// The archived events come back with the same filters, revealed.
	r := mustRun(t, db, env{}, "query", "--archive", "--archive-to", arc, "--tenant", "acme", "--json", "--limit", "1000")
	var archived []trail.Event
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	for {
		var ev trail.Event
		if err := dec.Decode(&ev); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		archived = append(archived, ev)
	}
	if len(archived) == 0 {
		t.Fatal("query --archive returned nothing")
	}
	for _, ev := range archived {
		if ev.Tenant != "acme" || strings.HasPrefix(ev.Action, "auth.") || !ev.RecordedAt.Before(year) {
			t.Fatalf("archived event does not belong: %+v", ev)
		}
	}
	if hot, arch := tenantCount(t, db, "acme"), len(archived); hot+arch > before["acme"] {
		t.Fatalf("acme: %d hot + %d archived > %d before: duplicates", hot, arch, before["acme"])
	}

	// verify covers hot and archived data together.
	v := mustRun(t, db, env{}, "verify", "--archive-to", arc).stdout
	m := regexp.MustCompile(`Verified (\d+) hot and (\d+) archived events`).FindStringSubmatch(v)
	if strings.Contains(v, "PROBLEM") || m == nil || m[2] == "0" || !strings.Contains(v, "OK") {
		t.Fatalf("verify over hot and archived:\n%s", v)
	}
	if n, _ := strconv.Atoi(m[2]); n < len(archived) {
		t.Fatalf("verify checked %d archived events; acme alone has %d:\n%s", n, len(archived), v)
	}

	// Edit one archived Parquet file in the bucket: verify fails and says where.
	ctx := context.Background()
	c := g.Client(vgwtest.Access, vgwtest.Secret)
	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("trail-archive"), Prefix: aws.String("prod/tenant=acme/")})
	if err != nil {
		t.Fatal(err)
	}
	var key string
	for _, o := range list.Contents {
		if strings.HasSuffix(aws.ToString(o.Key), ".parquet") {
			key = aws.ToString(o.Key)
			break
		}
	}
	if key == "" {
		t.Fatal("no acme parquet file in the bucket")
	}
	obj, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("trail-archive"), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(obj.Body)
	obj.Body.Close()
	data[len(data)/2] ^= 0x20
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("trail-archive"), Key: aws.String(key), Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	r = run(t, db, env{}, "verify", "--archive-to", arc)
	if r.code == 0 || !strings.Contains(r.stdout, "PROBLEM") || !strings.Contains(r.stdout, "acme") {
		t.Fatalf("verify after editing %s: exit %d\n%s\n%s", key, r.code, r.stdout, r.stderr)
	}
	// Hot data alone still verifies: the edit is in the archive only.
	if r := run(t, db, env{}, "verify"); r.code != 0 {
		t.Fatalf("verify of the hot store: %d %s", r.code, r.stdout)
	}
}

// hotBefore counts tenant's events in the store recorded before t.
func hotBefore(t *testing.T, db, tenant string, before time.Time) int {
	t.Helper()
	return sqliteCount(t, db, `SELECT count(*) FROM trail_events WHERE tenant = ? AND recorded_at < ?`, tenant, before.UnixMicro())
}

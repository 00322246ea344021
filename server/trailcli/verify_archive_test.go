package trailcli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/trailhq/trail/server/internal/vgwtest"
	"github.com/trailhq/trail/server/trailarchive"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
)

// archivedStore is a store whose two years of acme and globex events were
// archived (365d, billing.* 7y) and deleted (auth.* 90d) by policy into a
// directory, with globex under a legal hold.
type archivedStore struct {
	dir, db, arc       string
	archived, batches  int64
	purged             int64
	manifests, parquet []string // keys, sorted
}

var archivedOnce struct {
	sync.Mutex
	dir string
	s   archivedStore
}

// newArchivedStore returns a fresh copy of the archived store (built once
// per test binary, copied for each test so that each may damage its own).
func newArchivedStore(t *testing.T) archivedStore {
	t.Helper()
	archivedOnce.Lock()
	defer archivedOnce.Unlock()
	if archivedOnce.dir == "" {
		dir, err := os.MkdirTemp("", "trail-verify-archive-")
		if err != nil {
			t.Fatal(err)
		}
		s := archivedStore{dir: dir, db: filepath.Join(dir, "trail.db"), arc: filepath.Join(dir, "archive")}
		seedOld(t, s.db)
		mustRun(t, s.db, env{}, "seal")
		mustRun(t, s.db, env{}, "retention", "set", "--keep", "365d")
		mustRun(t, s.db, env{}, "retention", "set", "--action", "auth.*", "--keep", "90d", "--then", "delete")
		mustRun(t, s.db, env{}, "retention", "set", "--action", "billing.*", "--keep", "7y")
		mustRun(t, s.db, env{}, "retention", "hold", "--tenant", "globex", "--reason", "case 42")
		// A file per batch (--archive-file-bytes 1): the cases below
		// damage one batch's file.
		out := mustRun(t, s.db, env{}, "retention", "run", "--archive-to", s.arc, "--archive-file-bytes", "1").stdout
		m := regexp.MustCompile(`Archived (\d+) events in (\d+) batches to .*; purged (\d+) events`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("retention run: %q", out)
		}
		s.archived, _ = strconv.ParseInt(m[1], 10, 64)
		s.batches, _ = strconv.ParseInt(m[2], 10, 64)
		s.purged, _ = strconv.ParseInt(m[3], 10, 64)
		if s.archived == 0 || s.purged <= s.archived {
			t.Fatalf("the fixture must archive and delete: %q", out)
		}
		archivedOnce.dir, archivedOnce.s = dir, s
	}
	s := archivedOnce.s
	s.dir = t.TempDir()
	if err := os.CopyFS(s.dir, os.DirFS(archivedOnce.dir)); err != nil {
		t.Fatal(err)
	}
	s.db, s.arc = filepath.Join(s.dir, "trail.db"), filepath.Join(s.dir, "archive")
	keys, err := (&trailarchive.Dir{Root: s.arc}).List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if trailarchive.IsManifestKey(k) {
			s.manifests = append(s.manifests, k)
		} else {
			s.parquet = append(s.parquet, k)
		}
	}
	if int64(len(s.manifests)) != s.batches || len(s.parquet) != len(s.manifests) {
		t.Fatalf("%d manifests, %d files, %d batches", len(s.manifests), len(s.parquet), s.batches)
	}
	return s
}

func TestMain(m *testing.M) {
	code := m.Run()
	if archivedOnce.dir != "" {
		os.RemoveAll(archivedOnce.dir)
	}
	os.Exit(code)
}

// manifestOf reads the manifest at key (unchecked).
func (s archivedStore) manifestOf(t *testing.T, key string) *trailarchive.Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.arc, filepath.FromSlash(key)))
	if err != nil {
		t.Fatal(err)
	}
	var m trailarchive.Manifest
	if err := json.Unmarshal(b, &m); err == nil && m.Version != trailarchive.ManifestV3 {
		return &m // version 1 or 2: one batch
	}
	// Version 3: its batches are read with the store's key (one batch a
	// manifest here: a file per batch).
	skey, err := os.ReadFile(s.db + ".signing.key")
	if err != nil {
		t.Fatal(err)
	}
	_, vkey, err := trailseal.ParseSigningKey(strings.TrimSpace(string(skey)))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := trailseal.ParseVerifierKey(vkey)
	ms, err := trailarchive.ParseManifests(b, note.VerifierList(v), trailseal.DefaultOrigin)
	if err != nil || len(ms) != 1 {
		t.Fatalf("%s: %d batches, %v", key, len(ms), err)
	}
	return ms[0]
}

// seqsOf is how a problem line names a batch's seqs.
func seqsOf(m *trailarchive.Manifest) string {
	p := trailarchive.CoverageProblem{From: m.Seqs[0].From, To: m.Seqs[len(m.Seqs)-1].To}
	return p.Seqs()
}

// `trail verify --archive-to` over hot and archived data: it passes and
// counts both; each kind of damage to the archive fails it, naming tenant,
// seqs, batch and kind; the ranges a delete policy purged are purged, not
// problems.
func TestVerifyArchive(t *testing.T) {
	t.Run("intact", func(t *testing.T) {
		t.Parallel()
		s := newArchivedStore(t)
		out := mustRun(t, s.db, env{}, "verify", "--archive-to", s.arc).stdout
		want := fmt.Sprintf(" hot and %d archived events in 2 logs", s.archived)
		if strings.Contains(out, "PROBLEM") || !strings.Contains(out, want) || !strings.Contains(out, "every archived range is in the archive") {
			t.Fatalf("verify --archive-to: want %q:\n%s", want, out)
		}
		deleted := s.purged - s.archived
		if !strings.Contains(out, fmt.Sprintf("%d were deleted by policy", deleted)) || !strings.Contains(out, fmt.Sprintf("%d sealed events were purged", s.purged)) {
			t.Fatalf("verify: the deleted ranges are not reported as purged:\n%s", out)
		}
	})

	t.Run("no target", func(t *testing.T) {
		t.Parallel()
		s := newArchivedStore(t)
		// A mistyped directory is bad input, not an archive that lost every batch.
		if r := run(t, s.db, env{}, "verify", "--archive-to", s.arc+"-typo"); r.code != ExitUsage || !strings.Contains(r.stderr, "--archive-to") || strings.Count(r.stderr, "\n") != 1 {
			t.Fatalf("verify --archive-to a missing directory: %d %q %q", r.code, r.stdout, r.stderr)
		}
		out := mustRun(t, s.db, env{}, "verify").stdout
		want := fmt.Sprintf("note: %d archived events were not checked", s.archived)
		if !strings.Contains(out, want) || !strings.Contains(out, "--archive-to") || !strings.Contains(out, "OK:") {
			t.Fatalf("verify without a target: want %q:\n%s", want, out)
		}
	})

	// Each case damages the archive and names the line verify must print.
	cases := []struct {
		name   string
		damage func(t *testing.T, s archivedStore) (key string, m *trailarchive.Manifest)
		kind   string
	}{
		{"edited file", func(t *testing.T, s archivedStore) (string, *trailarchive.Manifest) {
			key := s.manifests[len(s.manifests)/2]
			m := s.manifestOf(t, key)
			p := filepath.Join(s.arc, filepath.FromSlash(m.Files[0].Key))
			b, _ := os.ReadFile(p)
			b[len(b)/3] ^= 0x01
			os.WriteFile(p, b, 0o600)
			return key, m
		}, "archive file edited or corrupted"},
		{"missing manifest", func(t *testing.T, s archivedStore) (string, *trailarchive.Manifest) {
			key := s.manifests[0]
			m := s.manifestOf(t, key)
			os.Remove(filepath.Join(s.arc, filepath.FromSlash(key)))
			return key, m
		}, "archive manifest missing"},
		{"missing file", func(t *testing.T, s archivedStore) (string, *trailarchive.Manifest) {
			key := s.manifests[len(s.manifests)-1]
			m := s.manifestOf(t, key)
			os.Remove(filepath.Join(s.arc, filepath.FromSlash(m.Files[0].Key)))
			return key, m
		}, "archive file missing"},
		{"another batch's file", func(t *testing.T, s archivedStore) (string, *trailarchive.Manifest) {
			key := s.manifests[1]
			m := s.manifestOf(t, key)
			other := s.manifestOf(t, s.manifests[2])
			b, _ := os.ReadFile(filepath.Join(s.arc, filepath.FromSlash(other.Files[0].Key)))
			os.WriteFile(filepath.Join(s.arc, filepath.FromSlash(m.Files[0].Key)), b, 0o600)
			return key, m
		}, "archive file edited or corrupted"},
		{"another batch's manifest", func(t *testing.T, s archivedStore) (string, *trailarchive.Manifest) {
			key := s.manifests[3]
			m := s.manifestOf(t, key)
			b, _ := os.ReadFile(filepath.Join(s.arc, filepath.FromSlash(s.manifests[4])))
			os.WriteFile(filepath.Join(s.arc, filepath.FromSlash(key)), b, 0o600)
			return key, m
		}, "archive manifest bad"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newArchivedStore(t)
			key, m := c.damage(t, s)
			if m.Tenant != "acme" {
				t.Fatalf("the fixture archives acme only, got %q", m.Tenant)
			}
			r := run(t, s.db, env{}, "verify", "--archive-to", s.arc)
			want := fmt.Sprintf(`PROBLEM tenant "acme" seq %s: %s: batch %s`, seqsOf(m), c.kind, key)
			if r.code != ExitFailure || !strings.Contains(r.stdout, want) || !strings.Contains(r.stderr, "verification FAILED: 1 problem(s)") {
				t.Fatalf("exit %d, want a line %q:\n%s\n%s", r.code, want, r.stdout, r.stderr)
			}
			// The hot store alone still verifies, and so does the other
			// tenant's share.
			mustRun(t, s.db, env{}, "verify")
			mustRun(t, s.db, env{}, "verify", "--tenant", "globex", "--archive-to", s.arc)
		})
	}

	t.Run("unlisted manifest", func(t *testing.T) {
		t.Parallel()
		s := newArchivedStore(t)
		// A copy of a batch under a name no purge recorded (e.g. a run that
		// stopped before purging): noted, not a problem.
		b, _ := os.ReadFile(filepath.Join(s.arc, filepath.FromSlash(s.manifests[0])))
		extra := strings.Replace(s.manifests[0], "/0", "/9", 1)
		if strings.HasPrefix(extra, trailarchive.ManifestDir) { // version 3: another digest
			extra = strings.Replace(extra, trailarchive.ManifestSuffix, "", 1)
			extra = extra[:len(extra)-1] + map[bool]string{true: "1", false: "0"}[extra[len(extra)-1] == '0'] + trailarchive.ManifestSuffix
		}
		os.WriteFile(filepath.Join(s.arc, filepath.FromSlash(extra)), b, 0o600)
		out := mustRun(t, s.db, env{}, "verify", "--archive-to", s.arc).stdout
		if !strings.Contains(out, "note: 1 manifests in "+s.arc+" are named by no purge") {
			t.Fatalf("verify with an unlisted manifest:\n%s", out)
		}
	})
}

// $TRAIL_ARCHIVE names the target as well, and --json has an archive
// section (not parallel: sets the environment).
func TestVerifyArchiveEnvJSON(t *testing.T) {
	s := newArchivedStore(t)
	t.Setenv(trailarchive.ArchiveEnv, s.arc)
	r := mustRun(t, s.db, env{}, "verify", "--json")
	var rep trailarchive.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	a := rep.Archive
	if a == nil || !a.Checked || a.Events != s.archived || a.Archived != s.archived || a.Deleted != s.purged-s.archived ||
		int64(a.Batches) != s.batches || len(a.Problems) != 0 || len(rep.Problems) != 0 || len(a.Unlisted) != 0 || len(a.Logs) != 2 {
		t.Fatalf("verify --json: %.600s", r.stdout)
	}
}

// The archive on a real S3 server (versitygw): `trail verify --archive-to
// s3://bucket/prefix` passes over hot and archived data, then names the
// batch whose object was edited in the bucket.
func TestVerifyArchiveS3(t *testing.T) {
	g := vgwtest.Start(t, false)
	g.Bucket(t, "trail-verify")
	g.Env(t, vgwtest.Access, vgwtest.Secret)
	const arc = "s3://trail-verify/prod"
	db := tempDB(t)
	seedOld(t, db)
	mustRun(t, db, env{}, "seal")
	mustRun(t, db, env{}, "retention", "set", "--action", "auth.*", "--keep", "90d", "--then", "delete")
	out := mustRun(t, db, env{}, "retention", "run", "--archive-to", arc, "--archive-file-bytes", "1").stdout
	m := regexp.MustCompile(`Archived (\d+) events`).FindStringSubmatch(out)
	if m == nil || m[1] == "0" {
		t.Fatalf("retention run: %q", out)
	}
	v := mustRun(t, db, env{}, "verify", "--archive-to", arc).stdout
	if !strings.Contains(v, " hot and "+m[1]+" archived events in 2 logs") || !strings.Contains(v, "OK:") {
		t.Fatalf("verify --archive-to %s:\n%s", arc, v)
	}

	ctx := context.Background()
	c := g.Client(vgwtest.Access, vgwtest.Secret)
	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("trail-verify"), Prefix: aws.String("prod/tenant=globex/")})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range list.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	slices.Sort(keys)
	i := slices.IndexFunc(keys, func(k string) bool { return strings.HasSuffix(k, ".parquet") })
	if i < 0 {
		t.Fatalf("no globex parquet object: %v", keys)
	}
	obj, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("trail-verify"), Key: aws.String(keys[i])})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(obj.Body)
	obj.Body.Close()
	data[len(data)/2] ^= 0x08
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("trail-verify"), Key: aws.String(keys[i]), Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	all, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("trail-verify"), Prefix: aws.String("prod/")})
	if err != nil {
		t.Fatal(err)
	}
	var allKeys []string
	for _, o := range all.Contents {
		allKeys = append(allKeys, strings.TrimPrefix(aws.ToString(o.Key), "prod/"))
	}
	manifest := manifestNaming(t, allKeys, func(k string) []byte {
		o, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("trail-verify"), Key: aws.String("prod/" + k)})
		if err != nil {
			t.Fatal(err)
		}
		defer o.Body.Close()
		b, _ := io.ReadAll(o.Body)
		return b
	}, strings.TrimPrefix(keys[i], "prod/"))
	r := run(t, db, env{}, "verify", "--archive-to", arc)
	want := `PROBLEM tenant "globex" seq `
	if r.code != ExitFailure || !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, "archive file edited or corrupted: batch "+manifest) {
		t.Fatalf("verify after editing %s: exit %d\n%s", keys[i], r.code, r.stdout)
	}
}

// manifestNaming returns the key, among keys, of the manifest that names
// the data file file (read gets a key's bytes).
func manifestNaming(t *testing.T, keys []string, read func(string) []byte, file string) string {
	t.Helper()
	for _, k := range keys {
		if trailarchive.IsManifestKey(k) && bytes.Contains(read(k), []byte(`"`+file+`"`)) {
			return k
		}
	}
	t.Fatalf("no manifest names %s", file)
	return ""
}

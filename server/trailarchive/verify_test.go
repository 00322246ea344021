package trailarchive

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
)

// archivedFixture is two years of events (one a day) of which retention
// archived and deleted what the policies say, on the store kind.
//
// Each batch gets files of its own (FileBytes 1), so that damaging one
// batch's file leaves the others intact; TestEditedArchiveIsCaught and
// TestArchiveAndPurgeByPolicy cover shared files.
//
// With version 3 manifests, FileBytes 1 gives each batch a manifest of its
// own too (a manifest holds the batches its file completes).
func archivedFixture(t *testing.T, kind string, version int) *fixture {
	t.Helper()
	f, r, plan := planned(t, kind, func(c *Config) { c.FileBytes = 1; c.manifestVersion = version })
	if res, err := r.Run(context.Background(), plan); err != nil || res.Archived == 0 || res.Purged == res.Archived {
		t.Fatalf("run: %+v %v", res, err)
	}
	return f
}

// manifests returns the keys of the manifests holding log's batches, in
// the order of their batches.
func (f *fixture) manifests(t *testing.T, log string) []string {
	t.Helper()
	ms, err := f.archive().Batches(context.Background(), Selection{Tenant: trailseal.TenantOf(log)})
	var keys []string
	for _, m := range ms {
		if !slices.Contains(keys, m.Key) {
			keys = append(keys, m.Key)
		}
	}
	if err != nil || len(keys) < 6 {
		t.Fatalf("%d manifests of %s: %v", len(keys), log, err)
	}
	return keys
}

// manifest returns the one batch of the manifest at key.
func (f *fixture) manifest(t *testing.T, key string) *Manifest {
	t.Helper()
	b, err := f.target.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := ParseManifests(b, f.vs, trailseal.DefaultOrigin)
	if err != nil || len(ms) != 1 {
		t.Fatalf("%s: %d batches, %v", key, len(ms), err)
	}
	return ms[0]
}

func (f *fixture) path(key string) string {
	return filepath.Join(f.target.Root, filepath.FromSlash(key))
}

// put re-signs m with signer and stores it at key (a batch of a version 3
// manifest as a version 3 manifest of that batch alone).
func (f *fixture) put(t *testing.T, key string, m *Manifest, signer note.Signer) {
	t.Helper()
	if m.Version == ManifestV3 {
		v3, err := newManifestV3(m.Origin, []*Batch{{Log: m.Log, Date: m.Date, Leaves: leavesOf(m.Seqs), Checkpoint: m.Checkpoint}}, [][]File{m.Files})
		if err != nil {
			t.Fatal(err)
		}
		_, b, err := v3.encodeSigned(signer)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.target.Put(context.Background(), key, b); err != nil {
			t.Fatal(err)
		}
		return
	}
	m.Signature = ""
	if err := m.Sign(signer); err != nil {
		t.Fatal(err)
	}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.target.Put(context.Background(), key, b); err != nil {
		t.Fatal(err)
	}
}

// leavesOf returns leaves of the seqs rs (Seq only).
func leavesOf(rs []trailseal.SeqRange) []trailseal.SealedEvent {
	var out []trailseal.SealedEvent
	for _, r := range rs {
		for s := r.From; s < r.To; s++ {
			out = append(out, trailseal.SealedEvent{Leaf: trailseal.Leaf{Seq: s}})
		}
	}
	return out
}

// extraPurges is the store's Backend with one more purged range recorded.
type extraPurges struct {
	Backend
	log string
	r   PurgedRange
}

func (e extraPurges) Purged(ctx context.Context, log string) ([]PurgedRange, error) {
	rs, err := e.Backend.Purged(ctx, log)
	if log == e.log {
		rs = append(rs, e.r)
	}
	return rs, err
}

// The coverage check over hot and archived data, on each store: intact it
// passes and counts; each damage to the archive is one problem naming the
// tenant, the seqs, the manifest key (and file) and the kind.
func TestCoverage(t *testing.T) {
	ctx := context.Background()
	// damage breaks acme's archive and returns the one problem expected
	// (Kind "" for none) and the purges to verify with.
	type damage func(t *testing.T, f *fixture, keys []string) (CoverageProblem, PurgeLister)
	span := func(key string, m *Manifest) CoverageProblem {
		return CoverageProblem{Tenant: "acme", Log: "acme", Key: key, From: m.Seqs[0].From, To: m.Seqs[len(m.Seqs)-1].To}
	}
	cases := []struct {
		name   string
		damage damage
		detail string
	}{
		{"intact", func(t *testing.T, f *fixture, keys []string) (CoverageProblem, PurgeLister) {
			return CoverageProblem{}, f.backend
		}, ""},
		{"edited file", func(t *testing.T, f *fixture, keys []string) (CoverageProblem, PurgeLister) {
			m := f.manifest(t, keys[1])
			b, _ := os.ReadFile(f.path(m.Files[0].Key))
			b[len(b)/2] ^= 0x04
			os.WriteFile(f.path(m.Files[0].Key), b, 0o600)
			p := span(keys[1], m)
			p.Kind, p.File = KindFileEdited, m.Files[0].Key
			return p, f.backend
		}, "file edited or corrupted"},
		{"another batch's file", func(t *testing.T, f *fixture, keys []string) (CoverageProblem, PurgeLister) {
			m, o := f.manifest(t, keys[2]), f.manifest(t, keys[3])
			b, _ := os.ReadFile(f.path(o.Files[0].Key))
			os.WriteFile(f.path(m.Files[0].Key), b, 0o600)
			p := span(keys[2], m)
			p.Kind, p.File = KindFileEdited, m.Files[0].Key
			return p, f.backend
		}, "SHA-256"},
		{"missing file", func(t *testing.T, f *fixture, keys []string) (CoverageProblem, PurgeLister) {
			m := f.manifest(t, keys[0])
			os.Remove(f.path(m.Files[0].Key))
			p := span(keys[0], m)
			p.Kind, p.File = KindFileMissing, m.Files[0].Key
			return p, f.backend
		}, "not in the archive"},
		{"missing manifest", func(t *testing.T, f *fixture, keys []string) (CoverageProblem, PurgeLister) {
			m := f.manifest(t, keys[4])
			os.Remove(f.path(keys[4]))
			p := span(keys[4], m)
			p.Kind = KindManifestMissing
			return p, f.backend
		}, "its manifest is not in"},
		{"moved manifest", func(t *testing.T, f *fixture, keys []string) (CoverageProblem, PurgeLister) {
			m := f.manifest(t, keys[2])
			b, _ := os.ReadFile(f.path(keys[5]))
			os.WriteFile(f.path(keys[2]), b, 0o600)
			p := span(keys[2], m)
			p.Kind = KindManifestBad
			return p, f.backend
		}, "moved or foreign"},
		{"foreign manifest", func(t *testing.T, f *fixture, keys []string) (CoverageProblem, PurgeLister) {
			m := f.manifest(t, keys[3])
			skey, _, _ := trailseal.GenerateSigningKey(trailseal.DefaultOrigin)
			other, _, _ := trailseal.ParseSigningKey(skey)
			f.put(t, keys[3], m, other)
			p := span(keys[3], m)
			p.Kind = KindManifestBad
			return p, f.backend
		}, "foreign manifest"},
		{"modified event, re-signed", func(t *testing.T, f *fixture, keys []string) (CoverageProblem, PurgeLister) {
			// Whoever holds the signing key can rewrite a batch consistently;
			// the leaves still tell.
			m := f.manifest(t, keys[1])
			b, _ := os.ReadFile(f.path(m.Files[0].Key))
			rows, err := decodeParquet(b)
			if err != nil {
				t.Fatal(err)
			}
			ev := bytes.Replace(rows[0].Event, []byte(`"description":"event`), []byte(`"description":"Event`), 1)
			if bytes.Equal(ev, rows[0].Event) {
				t.Fatal("no description to edit")
			}
			rows[0].Event = ev
			var buf bytes.Buffer
			w := parquet.NewGenericWriter[Row](&buf)
			if _, err := w.Write(rows); err != nil {
				t.Fatal(err)
			}
			w.Close()
			os.WriteFile(f.path(m.Files[0].Key), buf.Bytes(), 0o600)
			m.Files[0].SHA256, m.Files[0].Bytes = sha256Hex(buf.Bytes()), int64(buf.Len())
			f.put(t, keys[1], m, f.signer)
			return CoverageProblem{Tenant: "acme", Log: "acme", Key: keys[1], File: m.Files[0].Key,
				From: rows[0].Seq, To: rows[0].Seq + 1, Kind: KindArchivedModified}, f.backend
		}, "does not hash to its leaf"},
		{"range not in its batch", func(t *testing.T, f *fixture, keys []string) (CoverageProblem, PurgeLister) {
			// The store says seqs went into a batch that does not hold them.
			m := f.manifest(t, keys[0])
			last := m.Seqs[len(m.Seqs)-1].To
			r := PurgedRange{From: last + 1000, To: last + 1002, Archive: keys[0]}
			return CoverageProblem{Tenant: "acme", Log: "acme", Key: keys[0], From: r.From, To: r.To, Kind: KindNotCovered},
				extraPurges{f.backend, "acme", r}
		}, "its manifest holds"},
		{"purge record names a path, not a batch", func(t *testing.T, f *fixture, keys []string) (CoverageProblem, PurgeLister) {
			// A tampered purge record must be reported, not followed.
			r := PurgedRange{From: 900000, To: 900002, Archive: "tenant=acme/date=2025-01-01/../../../etc/passwd.manifest.json"}
			return CoverageProblem{Tenant: "acme", Log: "acme", Key: r.Archive, From: r.From, To: r.To, Kind: KindManifestBad},
				extraPurges{f.backend, "acme", r}
		}, "not a batch key of log acme"},
	}
	eachBackendVersion(t, func(t *testing.T, kind string, version int) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				f := archivedFixture(t, kind, version)
				keys := f.manifests(t, "acme")
				want, purges := c.damage(t, f, keys)
				var progress []trailseal.Progress
				v := &Verifier{Log: &trailseal.Verifier{Store: f.store, Verifiers: f.vs}, Purges: purges,
					Archive:  f.archive(),
					Progress: func(p trailseal.Progress) { progress = append(progress, p) }}
				rep, err := v.Verify(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				if len(rep.Report.Problems) != 0 {
					t.Fatalf("the store's own check fails: %v", rep.Report.Problems)
				}
				ar := rep.Archive
				if want.Kind == "" {
					if !rep.OK() || ar.Events != ar.Archived || ar.Archived == 0 || ar.Deleted == 0 || len(ar.Unlisted) != 0 || len(ar.Logs) != 3 {
						t.Fatalf("intact: %+v", ar)
					}
					if purged := purgedOf(&rep.Report); purged != ar.Archived+ar.Deleted {
						t.Fatalf("the store counts %d purged, the archive check %d archived + %d deleted", purged, ar.Archived, ar.Deleted)
					}
					last := progress[len(progress)-1]
					if last.Done != last.Total || last.Total != rep.Events+ar.Events {
						t.Fatalf("progress ends at %+v, want %d", last, rep.Events+ar.Events)
					}
					for i := 1; i < len(progress); i++ {
						if progress[i].Done < progress[i-1].Done || progress[i].Total != last.Total {
							t.Fatalf("progress goes %+v then %+v", progress[i-1], progress[i])
						}
					}
				} else {
					if rep.OK() || len(ar.Problems) != 1 {
						t.Fatalf("want one problem %+v, got %+v", want, ar.Problems)
					}
					got := ar.Problems[0]
					if !strings.Contains(got.Detail, c.detail) {
						t.Errorf("detail %q lacks %q", got.Detail, c.detail)
					}
					got.Detail = ""
					if got != want {
						t.Fatalf("problem:\n got %+v\nwant %+v", got, want)
					}
				}
				// Other tenants' archives are not concerned.
				if rep, err := v.Verify(ctx, &trailseal.VerifyOptions{Logs: []string{"globex"}}); err != nil || !rep.OK() || rep.Archive.Events == 0 {
					t.Fatalf("globex: %v %+v", err, rep.Archive)
				}
			})
		}
	})
}

// Archive.Coverage alone, without an archive (counted, not checked), and
// with manifests the store does not name (informational).
func TestCoverageCountsAndUnlisted(t *testing.T) {
	for _, version := range []int{ManifestV3, ManifestV2} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) { testCoverageCountsAndUnlisted(t, version) })
	}
}

func testCoverageCountsAndUnlisted(t *testing.T, version int) {
	ctx := context.Background()
	f := archivedFixture(t, onSQLite, version)
	arc := f.archive()
	full, err := arc.Coverage(ctx, f.backend, nil)
	if err != nil || !full.OK() || !full.Checked || full.Events != full.Archived || full.Batches == 0 {
		t.Fatalf("coverage: %v %+v", err, full)
	}
	v := &Verifier{Log: &trailseal.Verifier{Store: f.store, Verifiers: f.vs}, Purges: f.backend}
	rep, err := v.Verify(ctx, nil)
	if err != nil || !rep.OK() || rep.Archive.Checked || rep.Archive.Events != 0 ||
		rep.Archive.Archived != full.Archived || rep.Archive.Deleted != full.Deleted {
		t.Fatalf("without an archive: %v %+v", err, rep.Archive)
	}
	// A batch under a name no purge recorded (a run that stopped before
	// its purge): listed, not a problem.
	keys := f.manifests(t, "acme")
	b, _ := f.target.Get(ctx, keys[0])
	extra := strings.Replace(keys[0], "/0", "/9", 1)
	if version == ManifestV3 {
		extra = keys[0][:len(keys[0])-len(ManifestSuffix)-1] + "x" + ManifestSuffix // not its name: moved
		extra = strings.Replace(extra, "x.", "0.", 1)
		if extra == keys[0] {
			extra = strings.Replace(extra, "0.", "1.", 1)
		}
	}
	if err := f.target.Put(ctx, extra, b); err != nil {
		t.Fatal(err)
	}
	rep2, err := arc.Coverage(ctx, f.backend, []string{"acme"})
	if err != nil || !rep2.OK() || len(rep2.Unlisted) != 1 || rep2.Unlisted[0] != extra {
		t.Fatalf("unlisted: %v %+v", err, rep2)
	}
	if _, err := (&Verifier{Log: v.Log, Archive: arc}).Verify(ctx, nil); err == nil {
		t.Fatal("an archive without the store's purges was checked")
	}
}

package trailarchive

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/internal/vgwtest"
	"github.com/trailhq/trail/trailseal"
)

// An archive built over releases: a run of an earlier release writing a
// manifest and a file per batch, then one writing a manifest per batch into
// shared files, then today's version 3 manifests (one for the batches each
// file completes). Every reader takes the three as one archive: Verify,
// Coverage (the check of `trail verify`), Batches (`trail archive list`),
// Events (restore) and Query; a hold still keeps its events in the store.
// On each store with a directory target.
func TestMixedArchive(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		f := newFixtureOn(t, kind, 730*Day, 12*time.Hour)
		testMixedArchive(t, f, f.target)
	})
}

// The same into S3 (versitygw), SQLite store: version 3 manifests are found
// by listing manifests/ there too.
func TestMixedArchiveS3(t *testing.T) {
	g := vgwtest.Start(t, false)
	g.Env(t, vgwtest.Access, vgwtest.Secret)
	g.Bucket(t, "mixed")
	tgt, err := OpenS3(context.Background(), "mixed/trail")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, 12*time.Hour)
	testMixedArchive(t, f, tgt)
}

func testMixedArchive(t *testing.T, f *fixture, tgt Target) {
	ctx := context.Background()
	f.putHold(t, Hold{Tenant: "acme", Subject: "user:u1", Reason: "litigation"})
	var archived int64
	for _, step := range []struct {
		keep      time.Duration
		version   int
		fileBytes int64
	}{
		{650 * Day, ManifestV2, 1}, // a file and a manifest per batch
		{500 * Day, ManifestV2, 0}, // a manifest per batch, shared files
		{365 * Day, ManifestV3, 0}, // one manifest for the run's file
	} {
		if err := f.backend.SetPolicy(ctx, Policy{Keep: step.keep, Then: ThenArchive}); err != nil {
			t.Fatal(err)
		}
		r := f.runner(t, func(c *Config) { c.Target, c.manifestVersion, c.FileBytes = tgt, step.version, step.fileBytes })
		plan, err := r.Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.Run(ctx, plan)
		if err != nil || res.Archived == 0 {
			t.Fatalf("run keeping %v: %+v %v", step.keep, res, err)
		}
		archived += res.Archived
	}
	v3, _ := tgt.List(ctx, ManifestDir)
	v2, _ := tgt.List(ctx, "tenant=acme/")
	if len(v3) != 1 || len(v2) == 0 {
		t.Fatalf("%d version 3 manifests (want 1), %d keys of acme's version 2 batches", len(v3), len(v2))
	}
	arc := &Archive{Target: tgt, Verifiers: f.vs}
	vr, err := arc.Verify(ctx, f.store, Selection{})
	if err != nil || len(vr.Problems) != 0 || vr.Events != archived {
		t.Fatalf("verify: %v %d events of %d, %v", err, vr.Events, archived, vr.Problems)
	}
	cov, err := arc.Coverage(ctx, f.backend, nil)
	if err != nil || !cov.OK() || cov.Events != archived || cov.Archived != archived || len(cov.Unlisted) != 0 {
		t.Fatalf("coverage: %v %+v", err, cov)
	}
	// The purge records name both kinds of keys.
	rs, err := f.backend.Purged(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var kinds [2]bool
	for _, r := range rs {
		kinds[0] = kinds[0] || strings.HasPrefix(r.Archive, "tenant=acme/")
		kinds[1] = kinds[1] || strings.HasPrefix(r.Archive, ManifestDir)
	}
	if !kinds[0] || !kinds[1] {
		t.Fatalf("purge records %v", rs)
	}
	// Batches: acme's, in order of day, from every kind of manifest.
	ms, err := arc.Batches(ctx, Selection{Tenant: "acme", From: "2025-01-01"})
	if err != nil || len(ms) == 0 {
		t.Fatal(len(ms), err)
	}
	var acme int64
	versions := map[int]bool{}
	for i, m := range ms {
		if m.Log != "acme" || m.Date < "2025-01-01" || (i > 0 && m.Date < ms[i-1].Date) {
			t.Fatalf("batch %d: %s %s", i, m.Log, m.Date)
		}
		versions[m.Version] = true
	}
	all, _ := arc.Batches(ctx, Selection{Tenant: "acme"})
	for _, m := range all {
		acme += m.Rows
	}
	if !versions[ManifestV2] || !versions[ManifestV3] {
		t.Fatalf("versions from 2025 on: %v", versions)
	}
	evs, err := arc.Events(ctx, Selection{Tenant: "acme"})
	if err != nil || int64(len(evs)) != acme {
		t.Fatalf("restore: %d events, want %d: %v", len(evs), acme, err)
	}
	seen := map[string]bool{}
	for _, ev := range evs {
		if ev.Tenant != "acme" || seen[ev.ID.String()] || ev.Actor.ID == "u1" {
			t.Fatalf("restored %s of %s by %s (twice: %v)", ev.ID, ev.Tenant, ev.Actor.ID, seen[ev.ID.String()])
		}
		seen[ev.ID.String()] = true
	}
	page, err := arc.Query(ctx, trail.Query{Tenant: "acme", Limit: 1000})
	if err != nil || int64(len(page.Events)) != acme {
		t.Fatalf("query: %d events, want %d: %v", len(page.Events), acme, err)
	}
	// Whole-archive selection by days: a version 3 manifest is read when
	// its days meet the selection's.
	keys, err := arc.ManifestKeys(ctx, Selection{To: "2024-12-31"})
	if err != nil || slices.Contains(keys, v3[0]) {
		t.Fatalf("keys up to 2024: %v %v", err, keys)
	}
	// The held subject's events are all still in the store.
	held := 0
	for _, ev := range f.events(t, "acme") {
		if ev.ActorID == "u1" {
			held++
		}
	}
	if held == 0 {
		t.Fatal("the hold kept nothing")
	}
	f.verifyStore(t)
}

// A version 3 manifest whose batches' rows run across several files: each
// file is written before the manifest that names it, the manifest holds
// the batches the last file completes, and a batch spanning files reads
// back whole; a re-run that plans the same batches writes nothing again.
func TestManifestV3SpansFiles(t *testing.T) {
	ctx := context.Background()
	batches := []*Batch{
		packTestBatch(t, "acme", "2025-03-01", 3),
		packTestBatch(t, "bigco", "2025-03-01", 2*rowGroupRows+5000),
		packTestBatch(t, "", "2025-03-02", 2),
	}
	f := openFixture(t, onSQLite)
	cps := map[string]trailseal.Checkpoint{}
	for _, b := range batches {
		cp, err := trailseal.SignCheckpoint(f.signer, trailseal.DefaultOrigin, b.Log, int64(len(b.Leaves)), [32]byte{9}, now)
		if err != nil {
			t.Fatal(err)
		}
		cps[b.Log] = cp
		b.Checkpoint = cp
	}
	r := f.runner(t, func(c *Config) { c.FileBytes = 1 })
	var order []string
	tgt := &recording{Dir: f.target, order: &order}
	r.cfg.Target = tgt
	var res Result
	if err := r.archiveAll(ctx, batches, &res, func(*Batch) error { return nil }); err != nil {
		t.Fatal(err)
	}
	// acme's own file and manifest, then bigco's three files (10,000 rows
	// each at most) and its manifest, then the platform's file and manifest.
	var kinds []string
	for _, k := range order {
		kinds = append(kinds, map[bool]string{true: "m", false: "f"}[IsManifestKey(k)])
	}
	if got := strings.Join(kinds, ""); got != "fmfffmfm" {
		t.Fatalf("writes %s: %v", got, order)
	}
	big, err := ParseManifests(mustGet(t, f.target, order[5]), f.vs, trailseal.DefaultOrigin)
	if err != nil || len(big) != 1 || len(big[0].Files) != 3 || big[0].Rows != int64(len(batches[1].Leaves)) {
		t.Fatalf("bigco's manifest: %v %+v", err, big)
	}
	for _, b := range batches {
		if !strings.HasPrefix(b.Key, ManifestDir) {
			t.Fatalf("batch of %s recorded under %s", b.Log, b.Key)
		}
	}
	// A re-run of the same batches finds them all: no write.
	for _, b := range batches {
		b.Key = batchKey(b.Log, b.Date, b.Leaves)
	}
	order = nil
	if err := r.archiveAll(ctx, batches, &res, func(*Batch) error { return nil }); err != nil || len(order) != 0 || res.Batches != 6 {
		t.Fatalf("re-run wrote %v (%v, %d batches)", order, err, res.Batches)
	}
	// A damaged manifest of another run is skipped, not trusted: its
	// batches are written again (the same files, the same manifest).
	damaged := order0(t, f.target)
	if err := f.target.Put(ctx, damaged, []byte(`{"version":3}`)); err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		b.Key = batchKey(b.Log, b.Date, b.Leaves)
	}
	if err := r.archiveAll(ctx, batches, &res, func(*Batch) error { return nil }); err != nil || len(order) < 2 || order[len(order)-1] != damaged {
		t.Fatalf("after damage, re-run wrote %v (%v)", order, err)
	}
	if _, err := ParseManifests(mustGet(t, f.target, damaged), f.vs, trailseal.DefaultOrigin); err != nil {
		t.Fatal(err)
	}
}

// order0 returns the first version 3 manifest key of tgt.
func order0(t *testing.T, tgt Target) string {
	keys, err := tgt.List(context.Background(), ManifestDir)
	if err != nil || len(keys) == 0 {
		t.Fatal(keys, err)
	}
	return keys[0]
}

func mustGet(t *testing.T, tgt Target, key string) []byte {
	t.Helper()
	b, err := tgt.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// recording is a Dir that records the keys put, in order.
type recording struct {
	*Dir
	order *[]string
}

func (r *recording) Put(ctx context.Context, key string, data []byte) error {
	*r.order = append(*r.order, key)
	return r.Dir.Put(ctx, key, data)
}

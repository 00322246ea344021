package trailarchive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail"
)

// Two years of events, archived and purged by policy, with a held tenant
// untouched; the archive reads back through Query and verifies against the
// leaves, and the store still verifies with the purged ranges.
//
// On version 3 manifests (one for the run's one file) and on version 2 (a
// manifest per batch, as earlier releases wrote: old archives).
func TestArchiveAndPurgeByPolicy(t *testing.T) {
	eachBackendVersion(t, func(t *testing.T, kind string, version int) {
		ctx := context.Background()
		f := newFixtureOn(t, kind, 730*Day, 12*time.Hour) // 1460 events
		f.setPolicies(t)
		f.putHold(t, Hold{Tenant: "globex", Reason: "litigation"})
		before := map[string]int{"acme": f.count(t, "acme"), "globex": f.count(t, "globex"), "": f.count(t, "")}
		r := f.runner(t, withVersion(version))
		plan, err := r.Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Expected by hand: of acme and the platform, auth.* recorded on a UTC
		// day wholly older than 90 days are deleted, user.update older than 365
		// days archived, billing kept.
		set, _ := f.backend.Set(ctx)
		var wantArchive, wantDelete int64
		for _, tenant := range []string{"acme", ""} {
			for _, ev := range f.events(t, tenant) {
				p := set.Resolve(tenant, ev.Action)
				dayStart := now.Add(-p.Keep).UTC().Truncate(24 * time.Hour)
				if ev.RecordedAt.Before(dayStart) {
					if p.Then == ThenArchive {
						wantArchive++
					} else {
						wantDelete++
					}
				}
			}
		}
		gotA, gotD := plan.Totals()
		if gotA != wantArchive || gotD != wantDelete || wantArchive == 0 || wantDelete == 0 {
			t.Fatalf("plan archives %d deletes %d, want %d and %d", gotA, gotD, wantArchive, wantDelete)
		}
		if plan.Held == 0 {
			t.Fatal("the held tenant's expired events were not counted as held")
		}
		for _, b := range plan.Batches {
			if b.Tenant == "globex" {
				t.Fatalf("plan touches held tenant: %+v", b.Key)
			}
			for _, l := range b.Leaves {
				if strings.HasPrefix(l.Event.Action, "billing.") {
					t.Fatalf("plan touches a billing event kept 7y: %v", l.Event.ID)
				}
			}
		}
		// Plan changed nothing.
		if f.count(t, "acme") != before["acme"] {
			t.Fatal("plan deleted events")
		}
		res, err := r.Run(ctx, plan)
		if err != nil {
			t.Fatal(err)
		}
		if res.Archived != wantArchive || res.Purged != wantArchive+wantDelete {
			t.Fatalf("run: %+v, want %d archived, %d purged", res, wantArchive, wantArchive+wantDelete)
		}
		if got := f.count(t, "globex"); got != before["globex"] {
			t.Fatalf("held tenant lost events: %d of %d", got, before["globex"])
		}
		if got := f.count(t, "acme") + f.count(t, ""); int64(before["acme"]+before[""])-int64(got) != res.Purged {
			t.Fatalf("store lost %d events, run purged %d", before["acme"]+before[""]-got, res.Purged)
		}
		// The store still verifies: purged leaves are reported as purged.
		if purged := purgedOf(f.verifyStore(t)); purged != res.Purged {
			t.Fatalf("verifier counts %d purged, want %d", purged, res.Purged)
		}
		// Backend.Purged: the same seqs, archived ones with their manifest.
		var listed, archived int64
		for _, log := range []string{"acme", "_platform", "globex"} {
			rs, err := f.backend.Purged(ctx, log)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				listed += r.To - r.From
				if r.Archive != "" {
					archived += r.To - r.From
					prefix := "tenant=" + log + "/"
					if version == ManifestV3 {
						prefix = ManifestDir
					}
					if !strings.HasPrefix(r.Archive, prefix) || !IsManifestKey(r.Archive) {
						t.Fatalf("purged range %+v of %s names archive %q", r, log, r.Archive)
					}
				}
			}
		}
		if listed != res.Purged || archived != wantArchive {
			t.Fatalf("Purged lists %d seqs (%d archived), want %d (%d)", listed, archived, res.Purged, wantArchive)
		}
		// A second plan finds nothing more.
		plan2, err := r.Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if a, d := plan2.Totals(); a+d != 0 {
			t.Fatalf("second plan: %d + %d", a, d)
		}
		// The archive verifies against the leaves and answers queries.
		arc := f.archive()
		vr := f.verifyArchive(t, Selection{})
		if len(vr.Problems) != 0 || vr.Events != wantArchive {
			t.Fatalf("archive verify: %d events (want %d), problems %v", vr.Events, wantArchive, vr.Problems)
		}
		page, err := arc.Query(ctx, trail.Query{Tenant: "acme", Action: "user.*", Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) == 0 {
			t.Fatal("no archived acme user.* events")
		}
		for _, ev := range page.Events {
			if ev.Tenant != "acme" || ev.Action != "user.update" || now.Sub(ev.RecordedAt) < 365*Day {
				t.Fatalf("archive query returned %s %s %s", ev.Tenant, ev.Action, ev.RecordedAt)
			}
		}
		// The layout: a manifest per batch at tenant=…/date=…/ (version 2),
		// or one for the run's one file under manifests/ (version 3), naming
		// rows in data files shared by the run's batches, under data/.
		keys, _ := f.target.List(ctx, "tenant=acme/")
		if version == ManifestV3 {
			if len(keys) != 0 {
				t.Fatalf("layout: %v beside version 3 manifests", keys[:min(4, len(keys))])
			}
			keys, _ = f.target.List(ctx, ManifestDir)
			if len(keys) != 1 {
				t.Fatalf("layout: %d version 3 manifests for one file, want 1: %v", len(keys), keys)
			}
		} else if len(keys) == 0 || !strings.HasPrefix(keys[0], "tenant=acme/date=20") {
			t.Fatalf("layout: %v", keys[:min(4, len(keys))])
		}
		data, _ := f.target.List(ctx, "data/")
		for _, k := range keys {
			if !IsManifestKey(k) {
				t.Fatalf("layout: %s beside the manifests", k)
			}
			for _, d := range f.manifestFiles(t, k) {
				if !slices.Contains(data, d) || !strings.HasSuffix(d, ".parquet") {
					t.Fatalf("manifest %s names %s, not one of the data files %v", k, d, data)
				}
			}
		}
		if len(data) != 1 {
			t.Fatalf("%d data files for %d events, want 1 (files are cut at %d bytes): %v", len(data), wantArchive, DefaultFileBytes, data)
		}
	})
}

// A crash between archive and purge loses nothing: the re-run finds the
// written batch (same name), reads it back and purges, without a second copy.
//
// Version 3: the run's one manifest holds every batch, the crash comes after
// it is written and before any purge; the re-run finds the batches in it.
// Version 2 (an earlier release's run): each batch found at its own key.
func TestCrashBetweenArchiveAndPurge(t *testing.T) {
	eachBackendVersion(t, func(t *testing.T, kind string, version int) {
		ctx := context.Background()
		crash := errors.New("injected crash")
		f, r, plan := planned(t, kind, func(c *Config) { crashAt(3, crash)(c); withVersion(version)(c) })
		wantA, wantD := plan.Totals()
		res1, err := r.Run(ctx, plan)
		if !errors.Is(err, crash) {
			t.Fatalf("run: %v", err)
		}
		files1, _ := f.target.List(ctx, "")
		plan2, err := r.Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		res2, err := r.Run(ctx, plan2)
		if err != nil {
			t.Fatal(err)
		}
		if res1.Purged+res2.Purged != wantA+wantD {
			t.Fatalf("purged %d + %d, want %d", res1.Purged, res2.Purged, wantA+wantD)
		}
		files2, _ := f.target.List(ctx, "")
		if version == ManifestV3 && !slices.Equal(files1, files2) {
			t.Fatalf("the re-run wrote again: %v then %v", files1, files2)
		}
		vr := f.verifyArchive(t, Selection{})
		if len(vr.Problems) != 0 || vr.Events != wantA {
			t.Fatalf("after re-run: %d archived events (want %d, no duplicate), problems %v", vr.Events, wantA, vr.Problems)
		}
		if len(files2) < len(files1) {
			t.Fatalf("files vanished: %d then %d", len(files1), len(files2))
		}
		f.verifyStore(t)
		if rep, err := f.archive().Coverage(ctx, f.backend, nil); err != nil || !rep.OK() || rep.Events != wantA || len(rep.Unlisted) != 0 {
			t.Fatalf("coverage after the re-run: %v %+v", err, rep)
		}
	})
}

// A hold placed after planning still blocks the purge (the purge re-reads
// holds in its transaction), and a subject hold spares that subject only.
func TestHoldBlocksPurge(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		ctx := context.Background()
		f, r, plan := planned(t, kind, nil)
		f.putHold(t, Hold{Tenant: "acme", Reason: "audit"})
		before := f.count(t, "acme")
		var acme []*Batch
		for _, b := range plan.Batches {
			if b.Tenant == "acme" {
				acme = append(acme, b)
			}
		}
		_, err := r.Run(ctx, &Plan{Batches: acme})
		if !errors.Is(err, ErrHeld) {
			t.Fatalf("run over a held tenant: %v", err)
		}
		if f.count(t, "acme") != before {
			t.Fatal("a held tenant lost events")
		}
		// Released, with a subject hold instead: that subject's events stay.
		if ok, err := f.backend.ReleaseHold(ctx, "acme", ""); err != nil || !ok {
			t.Fatal(ok, err)
		}
		f.putHold(t, Hold{Tenant: "acme", Subject: "user:u1"})
		plan, err = r.Plan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Run(ctx, plan); err != nil {
			t.Fatal(err)
		}
		var kept, old int
		for _, ev := range f.events(t, "acme") {
			switch {
			case !ev.RecordedAt.Before(now.Add(-400 * Day)):
			case ev.ActorID == "u1":
				kept++
			case ev.Action != "billing.invoice":
				old++
			}
		}
		if kept == 0 || old != 0 {
			t.Fatalf("subject hold: %d held events kept (want > 0), %d others left (want 0)", kept, old)
		}
	})
}

// An archive file edited by hand is caught by Verify, and by the next run
// (which then deletes nothing).
func TestEditedArchiveIsCaught(t *testing.T) {
	eachBackendVersion(t, func(t *testing.T, kind string, version int) {
		ctx := context.Background()
		f, r, plan := planned(t, kind, withVersion(version))
		if _, err := r.Run(ctx, plan); err != nil {
			t.Fatal(err)
		}
		keys, _ := f.target.List(ctx, "tenant=acme/")
		if version == ManifestV3 {
			keys, _ = f.target.List(ctx, ManifestDir)
		}
		manifest := keys[0]
		data := f.manifestFiles(t, manifest)[0]
		p := filepath.Join(f.target.Root, filepath.FromSlash(data))
		b, _ := os.ReadFile(p)
		b[len(b)/2] ^= 1
		os.WriteFile(p, b, 0o600)
		arc := f.archive()
		// Every batch with rows in the edited (shared) file fails, the
		// first one included, and only on the file's SHA-256.
		vr := f.verifyArchive(t, Selection{Tenant: "acme"})
		if len(vr.Problems) == 0 || vr.Problems[0].Key != data {
			t.Fatalf("edited file: problems %v", vr.Problems)
		}
		for _, p := range vr.Problems {
			if p.Key != data || !strings.Contains(p.Detail, "SHA-256") {
				t.Fatalf("edited file: problem %v", p)
			}
		}
		// An edited manifest: the signature no longer covers it.
		mp := filepath.Join(f.target.Root, filepath.FromSlash(manifest))
		mb, _ := os.ReadFile(mp)
		os.WriteFile(mp, regexp.MustCompile(`"rows": ?`).ReplaceAll(mb, []byte(`"rows":1`)), 0o600)
		vr, _ = arc.Verify(ctx, f.store, Selection{Tenant: "acme"})
		if len(vr.Problems) < 1 || !errorsContain(vr.Problems, "signature does not cover") {
			t.Fatalf("edited manifest: problems %v", vr.Problems)
		}
		if _, err := arc.Events(ctx, Selection{Tenant: "acme"}); err == nil {
			t.Fatal("Events returned data from an edited archive")
		}
	})
}

func errorsContain(ps []Problem, s string) bool {
	for _, p := range ps {
		if strings.Contains(p.Detail, s) {
			return true
		}
	}
	return false
}

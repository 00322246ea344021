package sealtest

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
)

// PurgeTamperer is optionally implemented by an Instance's Tamper for a
// store that records purges (trailseal.PurgeRecorder): it removes events as
// retention would, recording their seqs as purged in the same transaction.
type PurgeTamperer interface {
	TamperPurge(ctx context.Context, log string, seqs []int64, ids []uuid.UUID) error
}

// plain hides a store's optional read interfaces (trailseal.BatchReader,
// trailseal.BatchPurgeRecorder), keeping PurgeRecorder: Verify then reads
// log by log.
type plain struct{ trailseal.Store }

type plainPurge struct {
	trailseal.Store
	trailseal.PurgeRecorder
}

// groupedPurge keeps BatchReader and PurgeRecorder but hides
// BatchPurgeRecorder: Verify then reads a group's purged ranges log by log.
type groupedPurge struct {
	trailseal.Store
	trailseal.BatchReader
	trailseal.PurgeRecorder
}

// variants returns s and the stores that read it through fewer of its
// optional interfaces.
func variants(s trailseal.Store) []trailseal.Store {
	out := []trailseal.Store{s, plainStore(s)}
	br, ok1 := s.(trailseal.BatchReader)
	pr, ok2 := s.(trailseal.PurgeRecorder)
	if ok1 && ok2 {
		out = append(out, groupedPurge{s, br, pr})
	}
	return out
}

func plainStore(s trailseal.Store) trailseal.Store {
	if pr, ok := s.(trailseal.PurgeRecorder); ok {
		return plainPurge{s, pr}
	}
	return plain{s}
}

// RunManyLogs checks Verify on many tiny logs (a few events per tenant),
// where a store implementing trailseal.BatchReader is read many logs per
// query: every kind of tampering, spread over different logs, must be found
// at the same tenant, seq and kind, and the report must be identical, field
// for field, to the one Verify makes reading the same store log by log, for
// batch sizes that group all logs, some, or none.
func RunManyLogs(t *testing.T, newLog func(t *testing.T) Instance) {
	f := newFixture(t, newLog)
	// Tenant m%02d has 1 + i%3 events; the platform log has 2.
	byLog := map[string][]trail.Event{trailseal.PlatformLog: Events(t, "", 0, 2)}
	var all []trail.Event
	for i := range 40 {
		tenant := fmt.Sprintf("m%02d", i)
		byLog[tenant] = Events(t, tenant, 0, 1+i%3)
		all = append(all, byLog[tenant]...)
	}
	all = append(all, byLog[trailseal.PlatformLog]...)
	f.append(all)
	s := f.sealer("many", 1000)
	if _, err := s.SealAll(f.ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(f.ctx); err != nil {
		t.Fatal(err)
	}
	// Seal order within a log follows append order: seq k is byLog[log][k].
	check := func(name string, wantProblems []want, wantPurged map[string]int64) {
		t.Helper()
		var first *trailseal.Report
		for _, batch := range []int{1000, 5, 2, 1} {
			for _, st := range variants(f.in.Store) {
				v := &trailseal.Verifier{Store: st, Verifiers: f.keys, Origin: origin, BatchSize: batch}
				rep, err := v.Verify(f.ctx, nil)
				if err != nil {
					t.Fatalf("%s: batch %d, %T: verify: %v", name, batch, st, err)
				}
				if first == nil {
					first = rep
					var ws []string
					for _, w := range wantProblems {
						ws = append(ws, w.String())
					}
					if g := got(rep); !slices.Equal(g, ws) {
						t.Errorf("%s: problems\n got %q\nwant %q", name, g, ws)
					}
					if len(rep.Logs) != 41 {
						t.Errorf("%s: %d logs verified, want 41", name, len(rep.Logs))
					}
					for _, lr := range rep.Logs {
						if lr.Purged != wantPurged[lr.Log] {
							t.Errorf("%s: log %s: purged %d, want %d", name, lr.Log, lr.Purged, wantPurged[lr.Log])
						}
					}
					continue
				}
				if !reflect.DeepEqual(rep, first) {
					t.Errorf("%s: batch %d, %T: the report differs from the first one:\n got %+v\nwant %+v", name, batch, st, rep, first)
				}
			}
		}
	}
	check("clean", nil, nil)

	tamper := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	tamper(f.in.Tamper.TamperEditDescription(f.ctx, byLog["m03"][0].ID, "edited"))
	tamper(f.in.Tamper.TamperDeleteEvent(f.ctx, byLog["m07"][1].ID))
	forged := Event(t, "m11", 500)
	forged.Description = "forged"
	tamper(f.in.Tamper.TamperInsertEvent(f.ctx, forged))
	tamper(f.in.Tamper.TamperSwapSeqs(f.ctx, "m14", 0, 2))
	tamper(f.in.Tamper.TamperTruncate(f.ctx, "m20", 1))
	cp, err := f.in.Store.LatestCheckpoint(f.ctx, "m26")
	tamper(err)
	tamper(f.in.Tamper.TamperReplaceCheckpoint(f.ctx, "m25", 2, cp.Note))
	tamper(f.in.Tamper.TamperEditDescription(f.ctx, byLog[trailseal.PlatformLog][1].ID, "edited"))
	problems := []want{
		{trailseal.KindModified, "_platform", 1, -1, 0},
		{trailseal.KindModified, "m03", 0, -1, 0},
		{trailseal.KindMissing, "m07", 1, -1, 0},
		{trailseal.KindInserted, "m11", -1, -1, 0},
		{trailseal.KindReordered, "m14", 0, 2, 0},
		{trailseal.KindReordered, "m14", 2, 0, 0},
		{trailseal.KindTruncated, "m20", 1, -1, 3},
		{trailseal.KindBadCheckpoint, "m25", -1, -1, 2},
	}
	check("tampered", problems, nil)

	pt, ok := f.in.Tamper.(PurgeTamperer)
	if !ok {
		return
	}
	// Purged (recorded) in m30 and m31; deleted without a record in m33.
	tamper(pt.TamperPurge(f.ctx, "m30", []int64{0}, []uuid.UUID{byLog["m30"][0].ID}))
	tamper(pt.TamperPurge(f.ctx, "m31", []int64{1}, []uuid.UUID{byLog["m31"][1].ID}))
	tamper(pt.TamperPurge(f.ctx, "m35", []int64{0, 1, 2}, []uuid.UUID{byLog["m35"][0].ID, byLog["m35"][1].ID, byLog["m35"][2].ID}))
	tamper(f.in.Tamper.TamperDeleteEvent(f.ctx, byLog["m33"][0].ID))
	problems = append(problems, want{trailseal.KindMissing, "m33", 0, -1, 0})
	check("purged", problems, map[string]int64{"m30": 1, "m31": 1, "m35": 3})
}

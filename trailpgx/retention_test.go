package trailpgx_test

import (
	"context"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail/trailpgx"
	"github.com/trailhq/trail/trailseal"
)

// PurgedBatches reads the archive key of each purged range, and on a schema
// from before migration 0006 (no archive column) still answers, with empty
// keys: a newer `trail verify` reads an older deployment.
func TestPurgedBatchesOldSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, nil)
	sc := pgx.Identifier{s.Schema()}.Sanitize()
	if _, err := testPool(t).Exec(ctx, `INSERT INTO `+sc+`.seal_purges (log, seqs, events, cutoff, archive)
		VALUES ('acme', '{[0,3), [5,6)}', 4, now(), 'tenant=acme/date=2025-01-01/b.manifest.json')`); err != nil {
		t.Fatal(err)
	}
	want := []trailpgx.PurgedBatch{
		{SeqRange: trailseal.SeqRange{From: 0, To: 3}, Archive: "tenant=acme/date=2025-01-01/b.manifest.json"},
		{SeqRange: trailseal.SeqRange{From: 5, To: 6}, Archive: "tenant=acme/date=2025-01-01/b.manifest.json"},
	}
	got, err := s.PurgedBatches(ctx, "acme")
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("PurgedBatches = %v, %v; want %v", got, err, want)
	}
	if _, err := testPool(t).Exec(ctx, `ALTER TABLE `+sc+`.seal_purges DROP COLUMN archive`); err != nil {
		t.Fatal(err)
	}
	want[0].Archive, want[1].Archive = "", ""
	got, err = s.PurgedBatches(ctx, "acme")
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("PurgedBatches on a pre-0006 schema = %v, %v; want %v", got, err, want)
	}
}

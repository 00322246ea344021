package trailpgx_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/trailhq/trail/trailseal/sealtest"
)

func TestHeadStore(t *testing.T) {
	s := newStore(t, nil)
	if _, err := s.Append(context.Background(), append(sealtest.Events(t, "acme", 0, 5), sealtest.Events(t, "globex", 0, 2)...)); err != nil {
		t.Fatal(err)
	}
	sealtest.RunHeads(t, s)
	// The heads are append-only for everyone, the owner included.
	q := "DELETE FROM " + pgx.Identifier{s.Schema(), "seal_heads"}.Sanitize()
	if _, err := testPool(t).Exec(context.Background(), q); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("deleting heads: %v, want the append-only guard", err)
	}
}

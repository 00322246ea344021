package trailprivacy_test

import (
	"context"
	"testing"

	"github.com/trailhq/trail/trailprivacy"
	"github.com/trailhq/trail/trailprivacy/keystoretest"
)

func TestMemoryKeyStore(t *testing.T) {
	t.Parallel()
	keystoretest.Run(t, trailprivacy.NewMemoryKeyStore())
}

func TestSQLKeyStorePostgres(t *testing.T) {
	db := trailprivacy.PGSchema(t)
	ks := trailprivacy.NewSQLKeyStore(db)
	ctx := context.Background()
	if err := ks.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ks.Init(ctx); err != nil {
		t.Fatalf("Init twice: %v", err)
	}
	keystoretest.Run(t, ks)
}

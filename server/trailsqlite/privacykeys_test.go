package trailsqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailprivacy"
	"github.com/trailhq/trail/trailprivacy/keystoretest"
)

// TestPrivacyKeyStoreContract runs the privacy layer's key-store contract
// on trailprivacy.SQLKeyStore over the embedded store's own database
// (modernc SQLite, WAL): the data keys of `trail` live in the events' file.
func TestPrivacyKeyStoreContract(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := trailsqlite.Open(ctx, filepath.Join(t.TempDir(), "trail.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ks := trailprivacy.NewSQLKeyStore(st.DB())
	if err := ks.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ks.Init(ctx); err != nil {
		t.Fatalf("Init twice: %v", err)
	}
	keystoretest.Run(t, ks)
}

package bench

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailhq/trail/trailpgx"
)

func init() {
	enableCapture = func(ctx context.Context, pool *pgxpool.Pool, store *trailpgx.Store, table, tenantColumn string) error {
		_, err := trailpgx.EnableCapture(ctx, pool, table, trailpgx.CaptureOptions{
			Schema: store.Schema(), Name: "subscription", TenantColumn: tenantColumn, Ignore: []string{"updated_at"},
		})
		return err
	}
}

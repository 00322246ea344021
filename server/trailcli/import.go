package trailcli

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailimport"
)

// ImportCmd is `trail import`.
type ImportCmd struct {
	Format       string `arg:"" enum:"seed,auditlog,simple-history" help:"The source table's layout: seed (the design note's AuditLog), auditlog (django-auditlog's LogEntry) or simple-history (a django-simple-history Historical* table)."`
	FromPostgres string `name:"from-postgres" env:"TRAIL_IMPORT_POSTGRES" placeholder:"DSN" help:"The Django application's PostgreSQL database to read from."`
	FromSQLite   string `name:"from-sqlite" placeholder:"PATH" help:"The Django application's SQLite database to read from (opened read-only)."`
	Table        string `name:"table" placeholder:"TABLE" help:"The source table, e.g. core_auditlog or core_historicalsubscription (default for auditlog: auditlog_logentry)."`
	Tenant       string `name:"tenant" placeholder:"T" help:"File every imported event in this tenant."`
	TenantColumn string `name:"tenant-column" placeholder:"COLUMN" help:"Read each row's tenant from this column of the source table (wins over --tenant when set). Rows left without one become platform events."`
	Model        string `name:"model" placeholder:"TYPE" help:"simple-history: the target type (default: the table's name after \"historical\")."`
	ObjectColumn string `name:"object-column" placeholder:"COLUMN" help:"simple-history: the object's key column (default id)."`
	PostgresFlag
}

// Run imports the table. Each row becomes one event or is skipped whole,
// with a line on stderr saying why; events are checked and transformed like
// any other (the privacy layer encrypts their personal fields), written in
// atomic batches, and sealed by the sealer like any other. Every event's ID
// derives from the table and the row, so a second run stores nothing new.
func (c *ImportCmd) Run(e *Env) error {
	if (c.FromPostgres == "") == (c.FromSQLite == "") {
		return Usagef("give the source database: --from-postgres DSN or --from-sqlite PATH")
	}
	if c.Tenant != "" && !trail.ValidTenant(c.Tenant) {
		return Usagef("--tenant: %q is not a valid tenant", c.Tenant)
	}
	driver, dsn := "pgx", c.FromPostgres
	if c.FromSQLite != "" {
		driver, dsn = "sqlite", "file:"+c.FromSQLite+"?mode=ro"
	}
	src, err := sql.Open(driver, dsn)
	if err != nil {
		return fmt.Errorf("import: source database: %w", err)
	}
	defer src.Close()
	if err := src.PingContext(e.Ctx); err != nil {
		return fmt.Errorf("import: source database: %w", err)
	}
	cfg := trailimport.Config{
		Format: trailimport.Format(c.Format), Table: c.Table,
		Tenant: c.Tenant, TenantColumn: c.TenantColumn, Model: c.Model, ObjectColumn: c.ObjectColumn,
	}
	b, err := e.openEvents(c.Postgres, true) // store.go
	if err != nil {
		return err
	}
	defer b.close()
	table := c.Table
	if table == "" {
		table = trailimport.AuditlogTable
	}
	// An operator's import: a row that names no tenant is a platform event.
	ctx := trail.WithPlatform(e.Ctx)
	var stored, duplicates, skipped int
	report := func(s trailimport.Skipped) {
		skipped++
		fmt.Fprintf(e.Stderr, "skipped %s row %s: %s\n", table, s.Row, s.Reason)
	}
	write := func(ctx context.Context, events []trail.Event) error {
		var prepared []trail.Event
		var bad []trailimport.Skipped
		if err := trail.RunBatch(ctx, b.p, func(ctx context.Context) error {
			prepared, bad = make([]trail.Event, 0, len(events)), nil // from the start on a retry
			for _, ev := range events {
				p, err := b.prepare(ctx, ev)
				if err != nil {
					row := ""
					if m, ok := ev.Metadata["import"].(map[string]any); ok {
						row, _ = m["row"].(string)
					}
					bad = append(bad, trailimport.Skipped{Row: row, Reason: err.Error()})
					continue
				}
				prepared = append(prepared, p)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, s := range bad {
			report(s)
		}
		if len(prepared) == 0 {
			return nil
		}
		res, err := b.store.Append(ctx, prepared)
		if err != nil {
			return err
		}
		for _, r := range res {
			if r.Duplicate {
				duplicates++
			} else {
				stored++
			}
		}
		return nil
	}
	st, err := trailimport.Import(ctx, src, cfg, write, report)
	if err != nil {
		if errors.Is(err, trailimport.ErrSource) {
			return fmt.Errorf("import: %w (nothing was imported)", err)
		}
		return fmt.Errorf("import: after %d of %d rows: %w", stored+duplicates, st.Rows, err)
	}
	fmt.Fprintf(e.Stdout, "imported %d rows of %s: %d events stored, %d already stored, %d rows skipped\n",
		st.Rows, table, stored, duplicates, skipped)
	if skipped > 0 {
		return fmt.Errorf("import: %d rows skipped (listed above); the others were imported", skipped)
	}
	return nil
}

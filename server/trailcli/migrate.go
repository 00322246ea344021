package trailcli

import (
	"fmt"

	"github.com/trailhq/trail/trailpgx"
)

// MigrateCmd is `trail migrate`.
type MigrateCmd struct {
	PostgresFlag
}

// Run creates the database if needed and migrates it: the SQLite file of
// --db, or the PostgreSQL deployment of --postgres (TRAIL_POSTGRES).
func (c *MigrateCmd) Run(e *Env) error {
	if c.Postgres != "" {
		st, err := trailpgx.Open(e.Ctx, c.Postgres, nil)
		if err != nil {
			return err
		}
		defer st.Close()
		if err := st.Migrate(e.Ctx); err != nil {
			return err
		}
		cur, latest, err := st.Version(e.Ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "PostgreSQL schema %s: version %d (latest %d)\n", st.Schema(), cur, latest)
		return nil
	}
	s, err := e.OpenStore(true)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Migrate(e.Ctx); err != nil {
		return err
	}
	cur, latest, err := s.SchemaVersion(e.Ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "%s: schema version %d (latest %d)\n", e.Globals.DB, cur, latest)
	return nil
}

package trailcli

import "fmt"

// MigrateCmd is `trail migrate`.
type MigrateCmd struct{}

// Run creates the database if needed and migrates it.
func (c *MigrateCmd) Run(e *Env) error {
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

package trailcli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/trailhq/trail/server/internal/demo"
)

// DemoCmd is `trail demo`.
type DemoCmd struct {
	Seed   uint64 `default:"1" help:"Which dataset: the same seed gives the same story."`
	Events int    `default:"3000" help:"About how many events (the story's skeleton is always included)."`
}

// Run seeds the demo dataset into an empty database and prints what to try.
func (c *DemoCmd) Run(e *Env) error {
	if c.Events < 1 || c.Events > demo.MaxEvents {
		return Usagef("--events: %d out of range 1-%d", c.Events, demo.MaxEvents)
	}
	if c.Seed == 0 {
		return Usagef("--seed: must be at least 1")
	}
	d, err := demo.Generate(demo.Config{Seed: c.Seed, Events: c.Events, Now: e.Now()})
	if err != nil {
		return err
	}
	s, err := e.OpenStore(true)
	if err != nil {
		return err
	}
	defer s.Close()
	p, err := e.demoPrivacy(s) // privacy.go: DemoPolicy unless --policy
	if err != nil {
		return err
	}
	st, err := demo.Seed(e.Ctx, s, d, &demo.SeedOptions{Transform: p})
	switch {
	case errors.Is(err, demo.ErrNotEmpty):
		fmt.Fprintf(e.Stderr, "%s already holds events: demo data not added (give --db a new file for a fresh demo)\n", e.Globals.DB)
	case err != nil:
		return err
	default:
		users := 0
		for _, t := range d.Tenants {
			users += len(t.Users)
		}
		fmt.Fprintf(e.Stdout, "Seeded %d events into %s: %d tenants, %d users, two years of history.\n",
			st.Stored, e.Globals.DB, len(d.Tenants), users)
	}
	suffix := ""
	if e.Globals.DB != defaultDB && os.Getenv("TRAIL_DB") != e.Globals.DB {
		suffix = " --db " + shellQuote(e.Globals.DB)
	}
	fmt.Fprintln(e.Stdout, "\nTry:")
	for _, t := range d.Tries() {
		fmt.Fprintf(e.Stdout, "\n  # %s\n  %s%s\n", t.Question, t.Command, suffix)
	}
	return nil
}

const defaultDB = "./trail.db"

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/-+=:,@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

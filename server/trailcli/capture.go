package trailcli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/trailhq/trail/trailpgx"
)

// CaptureCmd is `trail capture`: trigger capture of a PostgreSQL table's
// row changes (see docs/capture.md). PostgreSQL only.
type CaptureCmd struct {
	Enable  CaptureEnableCmd  `cmd:"" help:"Capture every INSERT, UPDATE and DELETE on TABLE as events <table>.insert|update|delete."`
	Disable CaptureDisableCmd `cmd:"" help:"Stop capturing TABLE (its events stay)."`
	List    CaptureListCmd    `cmd:"" help:"List the captured tables and their options."`
}

// captureTarget is what every capture command takes: the deployment and
// Trail's schema in it.
type captureTarget struct {
	PostgresFlag
	Schema string `name:"schema" default:"trail" help:"Trail's schema in the database."`
}

func (c captureTarget) open(e *Env) (*trailpgx.Store, error) {
	if c.Postgres == "" {
		return nil, Usagef("capture works on PostgreSQL: give --postgres DSN (or TRAIL_POSTGRES)")
	}
	st, err := trailpgx.Open(e.Ctx, c.Postgres, &trailpgx.Config{Schema: c.Schema})
	if err != nil {
		return nil, err
	}
	// Migrate is idempotent; it makes sure the capture function exists.
	if err := st.Migrate(e.Ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// captureError makes a bad table, column or state a usage error (exit 2).
func captureError(err error) error {
	for _, target := range []error{trailpgx.ErrUnknownTable, trailpgx.ErrNoPrimaryKey, trailpgx.ErrUnknownColumn,
		trailpgx.ErrCaptureEnabled, trailpgx.ErrCaptureNotEnabled} {
		if errors.Is(err, target) {
			return &UsageError{Err: err}
		}
	}
	return err
}

// CaptureEnableCmd is `trail capture enable TABLE`. The columns the default
// deny-list names (password_hash, api_token, …, and any added later) are
// redacted unless the global --no-default-redaction
// (TRAIL_NO_DEFAULT_REDACTION) turns that off.
type CaptureEnableCmd struct {
	captureTarget
	Table         string   `arg:"" help:"The table, as SQL names it: users, billing.invoices."`
	TenantColumn  string   `name:"tenant-column" placeholder:"C" help:"The row's tenant column, used when the transaction sets no trail.tenant."`
	Ignore        []string `name:"ignore" sep:"," placeholder:"COL,…" help:"Columns left out of the changes (e.g. updated_at)."`
	Redact        []string `name:"redact" sep:"," placeholder:"COL,…" help:"Columns recorded as changed without their values, besides those the default deny-list redacts (off with --no-default-redaction)."`
	Name          string   `name:"name" help:"Resource name for actions and target type. Default: the table's name, lower-cased."`
	RequireTenant bool     `name:"require-tenant" help:"Refuse a change whose tenant is known neither from trail.tenant nor from the tenant column."`
}

// Run installs the triggers.
func (c *CaptureEnableCmd) Run(e *Env) error {
	st, err := c.open(e)
	if err != nil {
		return err
	}
	defer st.Close()
	opts := trailpgx.CaptureOptions{TenantColumn: c.TenantColumn, Ignore: c.Ignore, Redact: c.Redact, Name: c.Name, RequireTenant: c.RequireTenant,
		NoDefaultRedaction: e.Globals.NoDefaultRedaction}
	cp, err := st.EnableCapture(e.Ctx, c.Table, opts)
	if err != nil {
		return captureError(err)
	}
	fmt.Fprintf(e.Stdout, "Capturing %s as %s.insert|update|delete (target %s:<%s>)\n", cp.Table, cp.Name, cp.Name, strings.Join(cp.Key, ","))
	if cp.DefaultRedaction {
		fmt.Fprintf(e.Stdout, "Default redaction on: %s, and any deny-listed column added later (--no-default-redaction turns it off)\n",
			captureOrNone(strings.Join(cp.DefaultRedacted, ", ")))
	} else {
		fmt.Fprintln(e.Stdout, "Default redaction off: deny-listed columns (password, token, secret…) are recorded in clear unless in --redact")
	}
	return nil
}

// CaptureDisableCmd is `trail capture disable TABLE`.
type CaptureDisableCmd struct {
	captureTarget
	Table string `arg:"" help:"The captured table."`
}

// Run drops the triggers.
func (c *CaptureDisableCmd) Run(e *Env) error {
	st, err := c.open(e)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.DisableCapture(e.Ctx, c.Table); err != nil {
		return captureError(err)
	}
	fmt.Fprintf(e.Stdout, "Stopped capturing %s; its events stay.\n", c.Table)
	return nil
}

// CaptureListCmd is `trail capture list`.
type CaptureListCmd struct {
	captureTarget
	JSON bool `name:"json" help:"One JSON object per line."`
}

// Run prints the captured tables.
func (c *CaptureListCmd) Run(e *Env) error {
	st, err := c.open(e)
	if err != nil {
		return err
	}
	defer st.Close()
	caps, err := st.ListCaptures(e.Ctx)
	if err != nil {
		return err
	}
	if c.JSON {
		enc := json.NewEncoder(e.Stdout)
		for _, cp := range caps {
			if err := enc.Encode(cp); err != nil {
				return err
			}
		}
		return nil
	}
	if len(caps) == 0 {
		fmt.Fprintln(e.Stdout, "No table is captured. Try: trail capture enable TABLE --postgres DSN")
		return nil
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tNAME\tKEY\tTENANT COLUMN\tIGNORE\tREDACT\tDEFAULT REDACTION")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, cp := range caps {
		tc := cp.TenantColumn
		if cp.RequireTenant {
			tc += " (required)"
		}
		def := "off"
		if cp.DefaultRedaction {
			def = "on"
			if len(cp.DefaultRedacted) > 0 {
				def += ": " + strings.Join(cp.DefaultRedacted, ",")
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cp.Table, cp.Name, strings.Join(cp.Key, ","), dash(tc),
			dash(strings.Join(cp.Ignore, ",")), dash(strings.Join(cp.Redact, ",")), def)
	}
	return tw.Flush()
}

func captureOrNone(s string) string {
	if s == "" {
		return "no column now"
	}
	return s
}

package trailcli

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/trailhq/trail"
)

// HistoryCmd is `trail history TYPE:ID`.
type HistoryCmd struct {
	Object string `arg:"" name:"type:id" help:"The object, e.g. subscription:sub_acme or user:17."`
	Tenant string `placeholder:"TENANT" help:"Only this tenant's events about the object."`
	Since  string `placeholder:"30d|RFC3339" help:"From this time on."`
	Until  string `placeholder:"30d|RFC3339" help:"Before this time."`
	Limit  int    `default:"100" help:"Events per page (at most 1000)."`
	Cursor string `placeholder:"CURSOR" help:"Continue after the page that printed this cursor."`
	JSON   bool   `name:"json" help:"Print JSON Lines instead of the timeline."`
	PostgresFlag
}

// Run prints the object's timeline, newest first, each event with its field
// changes.
func (c *HistoryCmd) Run(e *Env) error {
	qc := QueryCmd{Tenant: c.Tenant, Target: c.Object, Since: c.Since, Until: c.Until, Limit: c.Limit, Cursor: c.Cursor}
	if _, _, err := ParseTarget(c.Object); err != nil {
		return Usagef("TYPE:ID: %v", err)
	}
	q, err := qc.query(e)
	if err != nil {
		return err
	}
	return e.runQuery(c.Postgres, q, c.JSON, printTimeline)
}

// maxValueWidth bounds a shown change value when the terminal's width is
// unknown.
const maxValueWidth = 200

// printTimeline prints each event as a heading line, its description, and
// one line per changed field: field, old → new. Values are shown as JSON so
// that their types stay visible ("10" is not 10).
func printTimeline(e *Env, events []trail.Event) {
	valueWidth := maxValueWidth
	if *e.Width > 0 {
		valueWidth = max(16, (*e.Width-20)/2)
	}
	for i := range events {
		ev := &events[i]
		if i > 0 {
			fmt.Fprintln(e.Stdout)
		}
		tenant, action := tenantCell(ev), actionCell(ev)
		fmt.Fprintf(e.Stdout, "%s  %s  %s  by %s\n", ev.OccurredAt.In(e.Loc).Format(timeLayout), fit(tenant, colCaps[1]), action, actorCell(&ev.Actor))
		if ev.Description != "" {
			desc := clean(ev.Description)
			if *e.Width > 4 {
				desc = fit(desc, *e.Width-4)
			}
			fmt.Fprintf(e.Stdout, "    %s\n", desc)
		}
		fw := 0
		for _, ch := range ev.Changes {
			fw = max(fw, utf8.RuneCountInString(fit(ch.Field, 40)))
		}
		for _, ch := range ev.Changes {
			field := fit(ch.Field, 40)
			pad := strings.Repeat(" ", fw-utf8.RuneCountInString(field))
			if ch.Redacted {
				fmt.Fprintf(e.Stdout, "    %s%s  (changed, values redacted)\n", field, pad)
				continue
			}
			fmt.Fprintf(e.Stdout, "    %s%s  %s → %s\n", field, pad, value(ch.Old, "(none)", valueWidth), value(ch.New, "(removed)", valueWidth))
		}
	}
}

func value(raw []byte, missing string, width int) string {
	if raw == nil {
		return missing
	}
	return fit(string(raw), width)
}

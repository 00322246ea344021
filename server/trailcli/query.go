package trailcli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailprivacy"
)

// QueryCmd is `trail query`.
type QueryCmd struct {
	Tenant     string `placeholder:"TENANT" help:"Only this tenant's events (default: every tenant and the platform events)."`
	Actor      string `placeholder:"TYPE:ID" help:"Only this actor's events: user:42, or a type alone (system)."`
	ActorName  string `name:"actor-name" placeholder:"NAME" help:"Only events by the actor with this name, exact (encrypted names through the tenant's pseudonyms: needs --tenant)."`
	ActorEmail string `name:"actor-email" placeholder:"EMAIL" help:"Only events by the actor with this e-mail, exact (encrypted ones through the tenant's pseudonyms: needs --tenant)."`
	Action     string `placeholder:"ACTION" help:"An action filter: user.delete, *.delete, subscription.*, a list (user.create,*.delete), ! to exclude (!audit.*)."`
	Target     string `placeholder:"TYPE:ID" help:"Only events about this object, e.g. subscription:sub_acme."`
	Since      string `placeholder:"30d|RFC3339" help:"From this time on: 30d, 12h, 2w (ago), RFC 3339 or 2026-01-02 (local)."`
	Until      string `placeholder:"30d|RFC3339" help:"Before this time (same forms as --since)."`
	Outcome    string `placeholder:"OUTCOME" help:"success, failure or denied."`
	Field      string `placeholder:"FIELD" help:"Only events that changed this field, e.g. plan."`
	Text       string `placeholder:"WORDS" help:"Words in the description (all must match)."`
	Meta       string `name:"metadata" placeholder:"VALUE" help:"A word or value in the metadata, e.g. OPS-311 (ASCII case ignored)."`
	Limit      int    `default:"50" help:"Events per page (at most 1000)."`
	Cursor     string `placeholder:"CURSOR" help:"Continue after the page that printed this cursor."`
	JSON       bool   `name:"json" help:"Print JSON Lines (the event's wire form) instead of a table."`
	Stored     bool   `name:"stored" help:"Print the events exactly as stored (ciphertext, nothing revealed) as JSON Lines {log, seq, event}: what rebuilds their leaves (docs/verification.md)."`
	PostgresFlag
	// --archive reads archived events (retention) instead of the store (archive.go).
	Archive     bool `name:"archive" help:"Search the archive (--archive-to) instead of the store, with the same filters."`
	archiveOpen `embed:""`
}

// Run prints one page of matching events, and the cursor of the next page on
// stderr.
func (c *QueryCmd) Run(e *Env) error {
	q, err := c.query(e)
	if err != nil {
		return err
	}
	if c.Stored {
		if c.Archive {
			return Usagef("--stored reads the store; archived events are stored as their canonical bytes already (docs/retention.md)")
		}
		return e.runStoredQuery(c.Postgres, q) // query_stored.go
	}
	if c.Archive {
		return e.queryArchive(&c.archiveOpen, c.Postgres, q, c.JSON)
	}
	return e.runQuery(c.Postgres, q, c.JSON, printTable)
}

func (c *QueryCmd) query(e *Env) (trail.Query, error) {
	q := trail.Query{
		Tenant: c.Tenant,
		// The CLI reads the store directly, as an all-tenant reader:
		// without --tenant it reads every tenant and the platform events.
		AllTenants: c.Tenant == "",
		Action:     c.Action,
		Outcome:    trail.Outcome(c.Outcome),
		Field:      c.Field,
		Text:       c.Text,
		Metadata:   c.Meta,
		ActorName:  c.ActorName,
		ActorEmail: c.ActorEmail,
		Limit:      c.Limit,
		Cursor:     c.Cursor,
	}
	for _, f := range []struct{ flag, v string }{{"--tenant", c.Tenant}, {"--action", c.Action}, {"--outcome", c.Outcome},
		{"--field", c.Field}, {"--text", c.Text}, {"--cursor", c.Cursor}} {
		if !utf8.ValidString(f.v) {
			return q, Usagef("%s: not valid UTF-8", f.flag)
		}
	}
	if c.Actor != "" {
		typ, id, err := ParseActor(c.Actor)
		if err != nil {
			return q, Usagef("--actor: %v", err)
		}
		q.ActorType, q.ActorID = typ, id
	}
	if c.Target != "" {
		typ, id, err := ParseTarget(c.Target)
		if err != nil {
			return q, Usagef("--target: %v", err)
		}
		q.TargetType, q.TargetID = typ, id
	}
	now := e.Now()
	var err error
	if c.Since != "" {
		if q.Since, err = ParseTime(c.Since, now, e.Loc); err != nil {
			return q, Usagef("--since: %v", err)
		}
	}
	if c.Until != "" {
		if q.Until, err = ParseTime(c.Until, now, e.Loc); err != nil {
			return q, Usagef("--until: %v", err)
		}
	}
	if err := q.Validate(); err != nil {
		return q, err
	}
	return q, nil
}

// runQuery runs q on the store (PostgreSQL when postgres is set, else
// --db), reveals the events through the privacy layer, and prints the page
// as JSON Lines or with the given printer for people.
func (e *Env) runQuery(postgres string, q trail.Query, asJSON bool, print func(e *Env, events []trail.Event)) error {
	b, err := e.openEvents(postgres, false) // store.go
	if err != nil {
		return err
	}
	defer b.close()
	if err := actorLookup(b.p, &q); err != nil {
		return err
	}
	page, err := b.store.Query(e.Ctx, q)
	if err != nil {
		return err
	}
	if err := e.revealEvents(b.p, page.Events); err != nil {
		return err
	}
	return e.printPage(page, asJSON, "no events match", print)
}

// actorLookup turns q's actor name and e-mail into the tenant's pseudonyms
// when the store's privacy layer encrypts them (as trail serve does), so
// that they match; in plaintext mode they match as typed.
func actorLookup(p *trailprivacy.Privacy, q *trail.Query) error {
	if p == nil || p.LookupActor(q) == nil {
		return nil
	}
	return Usagef("--actor-email and --actor-name need --tenant: encrypted names and e-mails are found through the tenant's pseudonyms")
}

// printPage prints a revealed page as JSON Lines, or with print for people
// (none when it is empty), and says on stderr how to get the next page.
func (e *Env) printPage(page trail.Page, asJSON bool, none string, print func(e *Env, events []trail.Event)) error {
	if asJSON {
		if err := writeJSONLines(e.Stdout, page.Events); err != nil {
			return err
		}
	} else if len(page.Events) == 0 {
		fmt.Fprintln(e.Stderr, none)
	} else {
		print(e, page.Events)
	}
	if page.Next != "" {
		fmt.Fprintf(e.Stderr, "more events: repeat with --cursor %s\n", page.Next)
	}
	return nil
}

func writeJSONLines(w io.Writer, events []trail.Event) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for i := range events {
		if err := enc.Encode(&events[i]); err != nil {
			return err
		}
	}
	return nil
}

// Column caps of the table, in characters. On a narrow terminal the
// columns shrink towards their minimums so that the description keeps at
// least minDesc characters; the description takes what is left.
var (
	colCaps = [5]int{19, 20, 40, 34, 34} // time, tenant, actor, action, target
	colMins = [5]int{19, 8, 14, 16, 14}
	// shrinkOrder is which column gives way first.
	shrinkOrder = [...]int{2, 4, 3, 1}
)

const minDesc = 20

const timeLayout = "2006-01-02 15:04:05"

// printTable prints events as an aligned table, times in the local zone,
// fitted to the terminal's width when there is one.
func printTable(e *Env, events []trail.Event) {
	rows := make([][6]string, 0, len(events)+1)
	rows = append(rows, [6]string{"TIME", "TENANT", "ACTOR", "ACTION", "TARGET", "DESCRIPTION"})
	for i := range events {
		ev := &events[i]
		tenant, action := tenantCell(ev), actionCell(ev)
		target := ev.Target.String()
		if target == "" {
			target = "-"
		}
		rows = append(rows, [6]string{
			ev.OccurredAt.In(e.Loc).Format(timeLayout),
			clean(tenant),
			actorCell(&ev.Actor),
			clean(action),
			clean(target),
			clean(ev.Description),
		})
	}
	var widths [5]int
	for _, r := range rows {
		for i, cell := range r[:5] {
			widths[i] = max(widths[i], min(colCaps[i], utf8.RuneCountInString(cell)))
		}
	}
	descWidth := 0 // no limit
	if w := *e.Width; w > 0 {
		used := func() int {
			n := 0
			for _, x := range widths {
				n += x + 2
			}
			return n
		}
		for _, col := range shrinkOrder {
			if over := used() + minDesc - w; over > 0 {
				widths[col] = max(colMins[col], widths[col]-over)
			}
		}
		descWidth = max(minDesc, w-used())
	}
	var b strings.Builder
	for _, r := range rows {
		b.Reset()
		for i, cell := range r[:5] {
			cell = fit(cell, widths[i])
			b.WriteString(cell)
			b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell)+2))
		}
		b.WriteString(fit(r[5], descWidth))
		fmt.Fprintln(e.Stdout, strings.TrimRight(b.String(), " "))
	}
}

// tenantCell is ev's tenant, "-" for a platform event.
func tenantCell(ev *trail.Event) string {
	if ev.Tenant == "" {
		return "-"
	}
	return ev.Tenant
}

// actionCell is ev's action, followed by its outcome in brackets unless
// that is success.
func actionCell(ev *trail.Event) string {
	if ev.Outcome != trail.OutcomeSuccess && ev.Outcome != "" {
		return ev.Action + " [" + string(ev.Outcome) + "]"
	}
	return ev.Action
}

// actorCell shows an actor as "type:id Name", with "as type:id" when acting
// on behalf of someone.
func actorCell(a *trail.Actor) string {
	s := a.String()
	if a.Name != "" {
		s += " " + a.Name
	}
	if a.OnBehalfOf != nil {
		s += " as " + a.OnBehalfOf.String()
	}
	return clean(s)
}

// clean makes stored text safe for a terminal: audit data is written by
// others, and an escape sequence in a description must not drive the
// reader's terminal. Control characters become U+FFFD, line breaks spaces.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case isControl(r) || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029:
			return '\uFFFD'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

// fit cleans s and cuts it to n characters, marking the cut with "…".
func fit(s string, n int) string {
	s = clean(s)
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

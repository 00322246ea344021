package trailcli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

// MaxStdinBytes bounds what `trail record -` reads: the events are validated
// all together before the batch is written, so they are held in memory.
const MaxStdinBytes = 256 << 20

// RecordCmd is `trail record`.
type RecordCmd struct {
	Input       string `arg:"" optional:"" placeholder:"-" help:"\"-\" reads JSON or JSON Lines events from stdin (also the default when stdin is not a terminal and --action is not given)."`
	Tenant      string `placeholder:"TENANT" help:"Tenant of the event (default: none, a platform event). With stdin, the default for events that name none."`
	Actor       string `placeholder:"TYPE:ID" help:"Who acted: user:42, service:billing, system:admin-cli, anonymous. With stdin, the default for events that name none."`
	Action      string `placeholder:"RESOURCE.VERB" help:"What was done, e.g. user.delete."`
	Target      string `placeholder:"TYPE:ID" help:"The object acted upon, e.g. user:17."`
	Description string `placeholder:"TEXT" help:"A sentence for people."`
	Outcome     string `placeholder:"OUTCOME" help:"success (default), failure or denied."`
	Metadata    string `placeholder:"JSON" help:"Free-form context, a JSON object."`
	OccurredAt  string `name:"occurred-at" placeholder:"TIME" help:"When it happened: RFC 3339, a date, or 2h (ago). Default now."`
	ID          string `name:"id" placeholder:"UUID" help:"Event ID, the idempotency key (default: a new UUIDv7). Recording it again stores nothing."`
	PostgresFlag
}

// Run records the events and prints each one's ID, followed by "duplicate"
// when it was already stored. Every event is validated before anything is
// written, and all are stored in one atomic batch.
func (c *RecordCmd) Run(e *Env) error {
	if c.Input != "" && c.Input != "-" {
		return Usagef("unexpected argument %q: give the event with flags, or \"-\" to read events from stdin", clip(c.Input))
	}
	fromStdin := c.Input == "-" || (c.Action == "" && !*e.StdinIsTerminal)
	var events []trail.Event
	var where []string // "line N" of each event, for errors
	var err error
	ctx := e.Ctx
	if c.Tenant == "" {
		// The CLI writes to the store directly, as an operator: an event
		// that names no tenant is a platform event.
		ctx = trail.WithPlatform(ctx)
	}
	if fromStdin {
		for _, f := range []struct{ flag, v string }{{"--action", c.Action}, {"--target", c.Target}, {"--description", c.Description},
			{"--outcome", c.Outcome}, {"--metadata", c.Metadata}, {"--occurred-at", c.OccurredAt}, {"--id", c.ID}} {
			if f.v != "" && c.Input != "-" {
				return Usagef("--action is required when recording with flags (%s was given)", f.flag)
			}
			if f.v != "" {
				return Usagef("%s cannot be combined with events on stdin (only --tenant and --actor, as defaults)", f.flag)
			}
		}
		if c.Actor != "" {
			typ, id, err := ParseActor(c.Actor)
			if err != nil {
				return Usagef("--actor: %v", err)
			}
			ctx = trail.WithActor(ctx, trail.Actor{Type: typ, ID: id})
		}
		events, where, err = readEvents(e.Stdin)
		if err != nil {
			return err
		}
		// --tenant is the default of the events that name none; an event's
		// own tenant wins (so it is not the context's tenant, which an
		// event may not contradict).
		for i := range events {
			if events[i].Tenant == "" {
				events[i].Tenant = c.Tenant
			}
		}
	} else {
		ev, err := c.event(e)
		if err != nil {
			return err
		}
		events, where = []trail.Event{ev}, []string{""}
	}

	// Check every event before the database is even opened, so that bad input
	// does not leave a new empty database behind; the client's Prepare below
	// remains the authority.
	for i := range events {
		ev := events[i]
		err := ev.Fill(ctx)
		if ev.Source == "" {
			ev.Source = "cli"
		}
		ev.Changes = append([]trail.Change(nil), ev.Changes...)
		if err == nil {
			err = ev.Normalize()
		}
		if err == nil {
			err = ev.Validate()
		}
		if err != nil {
			if where[i] != "" {
				return fmt.Errorf("%s: invalid event: %w", where[i], err)
			}
			return fmt.Errorf("invalid event: %w", err)
		}
	}

	b, err := e.openEvents(c.Postgres, true) // store.go
	if err != nil {
		return err
	}
	defer b.close()
	// Prepare (fill, normalize, validate) every event first, so that one bad
	// line stores nothing; then write them in one atomic batch. The new
	// people's keys are stored once, after the loop (trail.RunBatch), not in
	// a commit each.
	prepared := make([]trail.Event, len(events))
	if err := trail.RunBatch(ctx, b.p, func(ctx context.Context) error {
		for i, ev := range events {
			p, err := b.prepare(ctx, ev)
			if err != nil {
				if where[i] != "" {
					return fmt.Errorf("%s: invalid event: %w", where[i], err)
				}
				return fmt.Errorf("invalid event: %w", err)
			}
			prepared[i] = p
		}
		return nil
	}); err != nil {
		return err
	}
	res, err := b.store.Append(ctx, prepared)
	if err != nil {
		return err
	}
	for _, r := range res {
		if r.Duplicate {
			fmt.Fprintf(e.Stdout, "%s duplicate\n", r.ID)
		} else {
			fmt.Fprintf(e.Stdout, "%s\n", r.ID)
		}
	}
	return nil
}

// event builds the event the flags describe.
func (c *RecordCmd) event(e *Env) (trail.Event, error) {
	ev := trail.Event{
		Tenant:      c.Tenant,
		Action:      c.Action,
		Description: c.Description,
		Outcome:     trail.Outcome(c.Outcome),
	}
	if c.Action == "" {
		return ev, Usagef("--action is required (e.g. --action user.delete), or pipe JSON events on stdin")
	}
	if c.Actor == "" {
		return ev, Usagef("--actor is required: type:id, e.g. user:42, or system")
	}
	typ, id, err := ParseActor(c.Actor)
	if err != nil {
		return ev, Usagef("--actor: %v", err)
	}
	ev.Actor = trail.Actor{Type: typ, ID: id}
	if c.Target != "" {
		typ, id, err := ParseTarget(c.Target)
		if err != nil {
			return ev, Usagef("--target: %v", err)
		}
		ev.Target = trail.Target{Type: typ, ID: id}
	}
	if !utf8.ValidString(c.Description) {
		return ev, Usagef("--description: not valid UTF-8")
	}
	if c.Metadata != "" {
		m, err := parseMetadata(c.Metadata)
		if err != nil {
			return ev, Usagef("--metadata: %v", err)
		}
		ev.Metadata = m
	}
	if c.OccurredAt != "" {
		t, err := ParseTime(c.OccurredAt, e.Now(), e.Loc)
		if err != nil {
			return ev, Usagef("--occurred-at: %v", err)
		}
		ev.OccurredAt = t
	}
	if c.ID != "" {
		id, err := uuid.Parse(c.ID)
		if err != nil || id == uuid.Nil {
			return ev, Usagef("--id: %q is not a UUID", clip(c.ID))
		}
		ev.ID = id
	}
	return ev, nil
}

func parseMetadata(s string) (map[string]any, error) {
	if !utf8.ValidString(s) {
		return nil, errors.New("not valid UTF-8")
	}
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", jsonErr(err))
	}
	if m == nil {
		return nil, errors.New("not a JSON object: null")
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("not a JSON object: text after the object")
	}
	return m, nil
}

// readEvents parses stdin: JSON Lines, or any sequence of JSON objects and
// arrays of objects (so a pretty-printed event or an exported array works
// too). Fields are strict: an unknown field is an error, not a silent loss,
// and so is what trail.CheckEventJSON refuses (a member given twice, an
// explicit nil UUID id or zero occurred_at).
// It returns the events and where each started ("line N").
func readEvents(r io.Reader) ([]trail.Event, []string, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxStdinBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading stdin: %w", err)
	}
	if len(data) > MaxStdinBytes {
		return nil, nil, Usagef("stdin holds more than %d MiB of events; split it", MaxStdinBytes>>20)
	}
	// encoding/json would quietly replace invalid UTF-8 with U+FFFD: refuse it,
	// naming the line.
	if !utf8.Valid(data) {
		line := 1
		for len(data) > 0 {
			r, n := utf8.DecodeRune(data)
			if r == utf8.RuneError && n <= 1 {
				break
			}
			if r == '\n' {
				line++
			}
			data = data[n:]
		}
		return nil, nil, Usagef("line %d: not valid UTF-8", line)
	}
	// lineAt names the line of off. Offsets only grow, so the newlines are
	// counted once, from the previous offset (counting from the start each
	// time made a million-line input quadratic: minutes before any write).
	line, counted := 1, 0
	lineAt := func(off int64) string {
		end := min(int(off), len(data))
		line += bytes.Count(data[counted:end], []byte{'\n'})
		counted = end
		return "line " + strconv.Itoa(line)
	}
	var events []trail.Event
	var where []string
	pos := int64(0)
	for {
		pos = skipSpace(data, pos)
		if pos >= int64(len(data)) {
			break
		}
		at := lineAt(pos)
		switch data[pos] {
		case '{':
			d := strictDecoder(data[pos:])
			var ev trail.Event
			if err := d.Decode(&ev); err != nil {
				return nil, nil, Usagef("%s: %v", at, jsonErr(err))
			}
			if err := trail.CheckEventJSON(data[pos : pos+d.InputOffset()]); err != nil {
				return nil, nil, Usagef("%s: invalid event: %v", at, err)
			}
			events, where = append(events, ev), append(where, at)
			pos += d.InputOffset()
		case '[':
			d := json.NewDecoder(bytes.NewReader(data[pos:]))
			var raws []json.RawMessage
			if err := d.Decode(&raws); err != nil {
				return nil, nil, Usagef("%s: %v", at, jsonErr(err))
			}
			for i, raw := range raws {
				var ev trail.Event
				if err := strictDecoder(raw).Decode(&ev); err != nil {
					return nil, nil, Usagef("%s, element %d: %v", at, i, jsonErr(err))
				}
				if err := trail.CheckEventJSON(raw); err != nil {
					return nil, nil, Usagef("%s, element %d: invalid event: %v", at, i, err)
				}
				events, where = append(events, ev), append(where, fmt.Sprintf("%s, element %d", at, i))
			}
			pos += d.InputOffset()
		default:
			return nil, nil, Usagef("%s: expected a JSON object (one event per line), found %q", at, clip(string(data[pos:min(pos+16, int64(len(data)))])))
		}
	}
	if len(events) == 0 {
		return nil, nil, Usagef("no events on stdin: give JSON Lines, one event object per line, or use flags (--action …)")
	}
	return events, where, nil
}

func strictDecoder(b []byte) *json.Decoder {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	d.DisallowUnknownFields()
	return d
}

func skipSpace(b []byte, i int64) int64 {
	for i < int64(len(b)) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// jsonErr rewords encoding/json's errors for people: it names Go types.
func jsonErr(err error) string {
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("invalid JSON: field %q cannot be a JSON %s", te.Field, te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "invalid JSON: unexpected end of input"
	}
	return "invalid JSON: " + err.Error()
}

package trailui

import (
	"bytes"
	"encoding/json"
	"slices"
	"sort"
	"time"

	"github.com/trailhq/trail"
)

// Placeholders the privacy layer writes in place of values.
const (
	redactedValue = "[redacted]"
	erasedValue   = "[erased]"
)

// FieldState is one field of a reconstructed object.
type FieldState struct {
	Field string
	// Value is the field's JSON value; empty when Removed or Redacted.
	Value json.RawMessage
	// Removed: the last change deleted the field.
	Removed bool
	// Redacted: the last change was withheld by policy; the value is unknown.
	Redacted bool
	// Since is when the field last changed, and by which event.
	Since   time.Time
	EventID string
}

// State is an object as of a time, rebuilt from the diffs of its history.
type State struct {
	At     time.Time
	Fields []FieldState
	// Events is how many events were applied.
	Events int
	// Truncated: more changes exist than were read, so the oldest were not
	// applied and fields they alone set are missing.
	Truncated bool
	// Deleted is true when the last event applied was a *.delete action.
	Deleted bool
}

// Reconstruct applies the changes of evs (any order) that occurred at or
// before at, oldest first, and returns the fields they leave. Fields no
// recorded change touched are unknown and absent.
func Reconstruct(evs []trail.Event, at time.Time) State {
	sorted := slices.Clone(evs)
	sort.SliceStable(sorted, func(i, j int) bool {
		if !sorted[i].OccurredAt.Equal(sorted[j].OccurredAt) {
			return sorted[i].OccurredAt.Before(sorted[j].OccurredAt)
		}
		return bytes.Compare(sorted[i].ID[:], sorted[j].ID[:]) < 0
	})
	st := State{At: at}
	fields := map[string]*FieldState{}
	for _, ev := range sorted {
		if ev.OccurredAt.After(at) {
			break
		}
		st.Events++
		st.Deleted = len(ev.Action) > 7 && ev.Action[len(ev.Action)-7:] == ".delete"
		for _, c := range ev.Changes {
			fs := fields[c.Field]
			if fs == nil {
				fs = &FieldState{Field: c.Field}
				fields[c.Field] = fs
			}
			fs.Since, fs.EventID = ev.OccurredAt, ev.ID.String()
			fs.Value, fs.Removed, fs.Redacted = nil, false, false
			switch {
			case c.Redacted:
				fs.Redacted = true
			case c.New == nil:
				fs.Removed = true
			default:
				fs.Value = c.New
			}
		}
	}
	for _, fs := range fields {
		st.Fields = append(st.Fields, *fs)
	}
	slices.SortFunc(st.Fields, func(a, b FieldState) int {
		switch {
		case a.Field < b.Field:
			return -1
		case a.Field > b.Field:
			return 1
		}
		return 0
	})
	return st
}

// diffRow is one change as the diff table shows it.
type diffRow struct {
	Field    string
	Kind     string // added, removed, changed, redacted
	Old, New value
}

// value is a JSON value for display.
type value struct {
	Text    string
	Present bool
	Special string // "redacted" or "erased" when the value is a placeholder
}

func showValue(raw json.RawMessage) value {
	if raw == nil {
		return value{}
	}
	v := value{Present: true, Text: string(raw)}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		v.Text = s
		switch s {
		case redactedValue:
			v.Special = "redacted"
		case erasedValue:
			v.Special = "erased"
		}
		return v
	}
	var buf bytes.Buffer
	if json.Indent(&buf, raw, "", "  ") == nil {
		v.Text = buf.String()
	}
	return v
}

func diffRows(cs []trail.Change) []diffRow {
	rows := make([]diffRow, 0, len(cs))
	for _, c := range cs {
		r := diffRow{Field: c.Field, Old: showValue(c.Old), New: showValue(c.New)}
		switch {
		case c.Redacted:
			r.Kind = "redacted"
		case c.Old == nil && c.New != nil:
			r.Kind = "added"
		case c.New == nil && c.Old != nil:
			r.Kind = "removed"
		default:
			r.Kind = "changed"
		}
		rows = append(rows, r)
	}
	return rows
}

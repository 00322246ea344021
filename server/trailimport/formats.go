package trailimport

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/trailhq/trail"
)

// seed reads the design note's AuditLog.
func (im *importer) seed(ctx context.Context) error {
	im.contentTypes(ctx)
	q := "SELECT * FROM " + im.cfg.Table + order("id")
	return im.query(ctx, q, []string{"id", "action", "user_id", "timestamp", "content_type_id", "object_id", "description"}, func(row map[string]any) error {
		key := text(row["id"])
		at, err := when(row["timestamp"])
		if err != nil {
			im.skip(Skipped{key, err.Error()})
			return nil
		}
		action, ok := SeedAction(text(row["action"]))
		if !ok {
			im.skip(Skipped{key, fmt.Sprintf("action %q cannot be read as resource.verb", clip(text(row["action"])))})
			return nil
		}
		ev := trail.Event{
			OccurredAt:  at,
			Actor:       userActor(row["user_id"]),
			Action:      action,
			Description: text(row["description"]),
		}
		if obj := text(row["object_id"]); obj != "" {
			ev.Target = trail.Target{Type: im.model(row["content_type_id"]), ID: obj}
		}
		im.tenant(&ev, row)
		im.source(&ev, key)
		ev.Metadata["legacy_action"] = text(row["action"])
		return im.emit(ctx, ev)
	})
}

var nonAction = regexp.MustCompile(`[^a-z0-9_-]+`)

// SeedAction turns an AuditLog action ("USER_DELETE",
// "SUBSCRIPTION_CHANGE") into a Trail action ("user.delete",
// "subscription.change"): lower-cased, the first underscore made the dot.
// A one-word action ("LOGIN") becomes "legacy.login".
func SeedAction(s string) (string, bool) {
	s = nonAction.ReplaceAllString(strings.ToLower(strings.TrimSpace(s)), "_")
	s = strings.Trim(s, "_-")
	if s == "" {
		return "", false
	}
	a := s
	if res, verb, ok := strings.Cut(s, "_"); ok && res != "" && verb != "" {
		a = res + "." + strings.Trim(verb, "_-")
	} else {
		a = "legacy." + s
	}
	if !trail.ValidAction(a) {
		a = "legacy.x" + strings.ReplaceAll(s, ".", "_")
	}
	return a, trail.ValidAction(a)
}

// auditlogVerbs are django-auditlog's LogEntry.Action values.
var auditlogVerbs = map[int64]string{0: "create", 1: "update", 2: "delete", 3: "access"}

// auditlog reads django-auditlog's LogEntry.
func (im *importer) auditlog(ctx context.Context) error {
	im.contentTypes(ctx)
	q := "SELECT * FROM " + im.cfg.Table + order("id")
	return im.query(ctx, q, []string{"id", "content_type_id", "object_pk", "object_repr", "action", "changes", "actor_id", "remote_addr", "timestamp"}, func(row map[string]any) error {
		key := text(row["id"])
		at, err := when(row["timestamp"])
		if err != nil {
			im.skip(Skipped{key, err.Error()})
			return nil
		}
		code, _ := row["action"].(int64)
		verb, ok := auditlogVerbs[code]
		if !ok {
			im.skip(Skipped{key, fmt.Sprintf("action %v is not one of django-auditlog's (0 create, 1 update, 2 delete, 3 access)", row["action"])})
			return nil
		}
		changes, err := AuditlogChanges(text(row["changes"]))
		if err != nil {
			im.skip(Skipped{key, err.Error()})
			return nil
		}
		for i := range changes { // nothing before a creation, nothing after a deletion
			switch verb {
			case "create":
				changes[i].Old = nil
			case "delete":
				changes[i].New = nil
			}
		}
		model := im.model(row["content_type_id"])
		ev := trail.Event{
			OccurredAt: at,
			Actor:      userActor(row["actor_id"]),
			Action:     model + "." + verb,
			Target:     trail.Target{Type: model, ID: text(row["object_pk"]), Name: text(row["object_repr"])},
			Changes:    changes,
		}
		ev.Metadata = map[string]any{}
		if addr := text(row["remote_addr"]); addr != "" {
			if net.ParseIP(addr) != nil {
				ev.Actor.IP = addr
			} else {
				ev.Metadata["remote_addr"] = addr
			}
		}
		if extra := text(row["additional_data"]); extra != "" && extra != "null" {
			var v any
			if json.Unmarshal([]byte(extra), &v) == nil {
				ev.Metadata["additional_data"] = v
			}
		}
		im.tenant(&ev, row)
		im.source(&ev, key)
		return im.emit(ctx, ev)
	})
}

// AuditlogChanges reads LogEntry.changes, {"field": [old, new], …} with
// the values as django-auditlog wrote them (their str(); "None" for no
// value), into Trail changes sorted by field. A many-to-many change
// ({"type": "m2m", …}) is kept whole as the new value.
func AuditlogChanges(s string) ([]trail.Change, error) {
	if s == "" || s == "null" {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("changes are not a JSON object: %v", err)
	}
	fields := make([]string, 0, len(m))
	for f := range m {
		fields = append(fields, f)
	}
	slices.Sort(fields)
	var out []trail.Change
	for _, f := range fields {
		var pair []json.RawMessage
		if err := json.Unmarshal(m[f], &pair); err != nil || len(pair) != 2 {
			var obj map[string]any
			if json.Unmarshal(m[f], &obj) == nil {
				out = append(out, trail.Change{Field: f, New: m[f]})
				continue
			}
			return nil, fmt.Errorf("changes[%q] is neither [old, new] nor an object", clip(f))
		}
		c := trail.Change{Field: f, Old: noneNull(pair[0]), New: noneNull(pair[1])}
		out = append(out, c)
	}
	return out, nil
}

// noneNull turns django-auditlog's "None" into JSON null.
func noneNull(v json.RawMessage) json.RawMessage {
	if string(v) == `"None"` {
		return json.RawMessage("null")
	}
	return v
}

// simpleHistory reads a django-simple-history table: one row per saved
// version of an object, ordered by object and time, so that each update is
// compared with the version before it.
func (im *importer) simpleHistory(ctx context.Context) error {
	obj := strings.ToLower(im.cfg.ObjectColumn)
	if obj == "" {
		obj = "id"
	}
	model := im.cfg.Model
	if model == "" {
		model = HistoryModel(im.cfg.Table)
	}
	if !validSegment(model) {
		return fmt.Errorf("trailimport: target type %q from table %s is not a valid action segment: give the model's name", model, im.cfg.Table)
	}
	q := "SELECT * FROM " + im.cfg.Table + order(obj, "history_date", "history_id")
	var prevObj string
	var prev map[string]any
	return im.query(ctx, q, []string{obj, "history_id", "history_date", "history_type", "history_user_id"}, func(row map[string]any) error {
		key := text(row["history_id"])
		object := text(row[obj])
		if object != prevObj {
			prevObj, prev = object, nil
		}
		cur := row
		defer func() { prev = cur }()
		at, err := when(row["history_date"])
		if err != nil {
			im.skip(Skipped{key, err.Error()})
			return nil
		}
		ev := trail.Event{
			OccurredAt:  at,
			Actor:       userActor(row["history_user_id"]),
			Target:      trail.Target{Type: model, ID: object},
			Description: text(row["history_change_reason"]),
		}
		fields := modelFields(row)
		switch text(row["history_type"]) {
		case "+":
			ev.Action = model + ".create"
			for _, f := range fields {
				if row[f] != nil {
					ev.Changes = append(ev.Changes, trail.Change{Field: f, New: jsonValue(row[f])})
				}
			}
		case "~":
			ev.Action = model + ".update"
			if prev == nil {
				// The version before is not in the table (pruned, or the
				// history started after the object): the values as they
				// became, without the old ones.
				for _, f := range fields {
					ev.Changes = append(ev.Changes, trail.Change{Field: f, New: jsonValue(row[f])})
				}
				ev.Metadata = map[string]any{"previous_version": "unknown"}
				break
			}
			for _, f := range fields {
				o, n := jsonValue(prev[f]), jsonValue(row[f])
				if string(o) != string(n) {
					ev.Changes = append(ev.Changes, trail.Change{Field: f, Old: o, New: n})
				}
			}
		case "-":
			ev.Action = model + ".delete"
			for _, f := range fields {
				if row[f] != nil {
					ev.Changes = append(ev.Changes, trail.Change{Field: f, Old: jsonValue(row[f])})
				}
			}
		default:
			im.skip(Skipped{key, fmt.Sprintf("history_type %q is not +, ~ or -", clip(text(row["history_type"])))})
			return nil
		}
		if object == "" {
			im.skip(Skipped{key, "no object key in column " + obj})
			return nil
		}
		im.tenant(&ev, row)
		im.source(&ev, key)
		return im.emit(ctx, ev)
	})
}

// HistoryModel is the target type of a simple-history table:
// "core_historicalsubscription" → "subscription".
func HistoryModel(table string) string {
	t := strings.ToLower(table)
	if i := strings.LastIndexByte(t, '.'); i >= 0 {
		t = t[i+1:]
	}
	if i := strings.Index(t, "historical"); i >= 0 {
		return t[i+len("historical"):]
	}
	return t
}

// modelFields are a history row's model columns, sorted: every column but
// simple-history's own.
func modelFields(row map[string]any) []string {
	out := make([]string, 0, len(row))
	for c := range row {
		if !strings.HasPrefix(c, "history_") {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

// jsonValue is a column value as JSON: times as RFC 3339 UTC text, integers
// a double cannot hold exactly as text (as trail.Diff asks of IDs).
func jsonValue(v any) json.RawMessage {
	switch x := v.(type) {
	case time.Time:
		v = x.UTC().Format(time.RFC3339Nano)
	case int64:
		if x > 1<<53 || x < -(1<<53) {
			v = fmt.Sprint(x)
		}
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			v = fmt.Sprint(x)
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(fmt.Sprint(v))
	}
	return b
}

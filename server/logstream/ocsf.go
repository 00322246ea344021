package logstream

import (
	"encoding/json"
	"strings"

	"github.com/trailhq/trail"
)

// OCSFVersion is the OCSF schema version of the ocsf format: 1.7.0
// (github.com/ocsf/ocsf-schema, commit dc6359b4, "v1.7.0 Release Prep").
const OCSFVersion = "1.7.0"

// OCSF classes Trail maps to (docs/log-streams.md has the whole mapping).
const (
	OCSFAccountChange    = 3001
	OCSFAuthentication   = 3002
	OCSFEntityManagement = 3004
	OCSFAPIActivity      = 6003
)

// OCSF returns ev as an OCSF event of one of four classes, chosen from its
// action and target:
//   - Authentication (3002): actions under auth. or session., and actions
//     whose verb is login/logon/sign_in or logout/logoff/sign_out;
//   - Account Change (3001): a target of type user or account, or actions
//     under user. or account.;
//   - Entity Management (3004): other create/read/update/delete (and
//     enable, disable, suspend, resume…) of a target;
//   - API Activity (6003): everything else, the action as api.operation.
//
// The stream's ID and sequence number go in metadata.log_name and
// metadata.sequence, the event's ID in metadata.uid, its index in its
// tenant's log in unmapped.trail.log_seq. What OCSF has no place for
// (changes, metadata, on_behalf_of, the target, the trace ID) is under
// unmapped.trail. docs/log-streams.md has the whole mapping.
func OCSF(ev *trail.Event, stream string, seq, logSeq int64) map[string]any {
	class, activity, activityName := ocsfClass(ev)
	category := class / 1000
	out := map[string]any{
		"class_uid":     class,
		"class_name":    ocsfClassNames[class],
		"category_uid":  category,
		"category_name": ocsfCategoryNames[category],
		"activity_id":   activity,
		"activity_name": activityName,
		"type_uid":      class*100 + activity,
		"type_name":     ocsfClassNames[class] + ": " + activityName,
		"time":          ev.OccurredAt.UnixMilli(),
		"message":       ocsfMessage(ev),
	}
	switch ev.Outcome {
	case trail.OutcomeFailure:
		out["status_id"], out["status"], out["severity_id"], out["severity"] = 2, "Failure", 2, "Low"
	case trail.OutcomeDenied:
		out["status_id"], out["status"], out["severity_id"], out["severity"] = 2, "Failure", 3, "Medium"
		out["status_detail"] = "denied"
	default:
		out["status_id"], out["status"], out["severity_id"], out["severity"] = 1, "Success", 1, "Informational"
	}
	md := map[string]any{
		"version":     OCSFVersion,
		"product":     map[string]any{"name": "Trail", "vendor_name": "Trail"},
		"uid":         ev.ID.String(),
		"log_name":    stream,
		"sequence":    seq,
		"logged_time": ev.RecordedAt.UnixMilli(),
	}
	if ev.Tenant != "" {
		md["tenant_uid"] = ev.Tenant
	}
	if ev.RequestID != "" {
		md["correlation_uid"] = ev.RequestID
	}
	if ev.Source != "" {
		md["log_provider"] = ev.Source
	}
	out["metadata"] = md
	out["actor"] = ocsfActor(ev.Actor)
	if ev.Actor.IP != "" {
		out["src_endpoint"] = map[string]any{"ip": ev.Actor.IP}
	} else if class == OCSFAPIActivity {
		out["src_endpoint"] = map[string]any{"name": "unknown"}
	}
	if ev.Actor.UserAgent != "" {
		out["http_request"] = map[string]any{"user_agent": ev.Actor.UserAgent}
	}
	switch class {
	case OCSFAuthentication:
		// The user who signs in is the target when there is one (an
		// admin's action on someone's session), else the actor.
		if ev.Target.Type == "user" || ev.Target.Type == "account" {
			out["user"] = ocsfUser(ev.Target.ID, ev.Target.Name, "", "user")
		} else {
			out["user"] = ocsfUser(ev.Actor.ID, ev.Actor.Name, ev.Actor.Email, string(ev.Actor.Type))
		}
		svc := ev.Source
		if svc == "" {
			svc = "trail"
		}
		out["service"] = map[string]any{"name": svc}
	case OCSFAccountChange:
		if ev.Target.IsZero() {
			out["user"] = ocsfUser(ev.Actor.ID, ev.Actor.Name, ev.Actor.Email, string(ev.Actor.Type))
		} else {
			out["user"] = ocsfUser(ev.Target.ID, ev.Target.Name, "", "user")
		}
	case OCSFEntityManagement:
		ent := map[string]any{"type": ev.Target.Type}
		putID(ent, ev.Target.ID, ev.Target.Name)
		out["entity"] = ent
		if len(ev.Changes) > 0 && ev.Outcome == trail.OutcomeSuccess {
			data := map[string]any{}
			for _, c := range ev.Changes {
				if !c.Redacted && len(c.New) > 0 {
					data[c.Field] = json.RawMessage(c.New)
				}
			}
			res := map[string]any{"type": ev.Target.Type, "data": data}
			putID(res, ev.Target.ID, ev.Target.Name)
			out["entity_result"] = res
		}
	default:
		out["api"] = map[string]any{"operation": ev.Action}
		if !ev.Target.IsZero() {
			r := map[string]any{"type": ev.Target.Type}
			putID(r, ev.Target.ID, ev.Target.Name)
			out["resources"] = []any{r}
		}
	}
	tr := map[string]any{"action": ev.Action, "log_seq": logSeq}
	if len(ev.Changes) > 0 {
		tr["changes"] = ev.Changes
	}
	if len(ev.Metadata) > 0 {
		tr["metadata"] = ev.Metadata
	}
	if ev.Actor.OnBehalfOf != nil {
		tr["on_behalf_of"] = ev.Actor.OnBehalfOf
	}
	if ev.TraceID != "" {
		tr["trace_id"] = ev.TraceID
	}
	if !ev.Target.IsZero() {
		tr["target"] = ev.Target
	}
	out["unmapped"] = map[string]any{"trail": tr}
	return out
}

var ocsfClassNames = map[int]string{
	OCSFAccountChange: "Account Change", OCSFAuthentication: "Authentication",
	OCSFEntityManagement: "Entity Management", OCSFAPIActivity: "API Activity",
}

var ocsfCategoryNames = map[int]string{3: "Identity & Access Management", 6: "Application Activity"}

func putID(m map[string]any, id, name string) {
	if id != "" {
		m["uid"] = id
	}
	if name != "" {
		m["name"] = name
	}
	if id == "" && name == "" {
		m["name"] = "unknown"
	}
}

func ocsfUser(id, name, email, typ string) map[string]any {
	u := map[string]any{}
	putID(u, id, name)
	if email != "" {
		u["email_addr"] = email
	}
	switch typ {
	case "user":
		u["type_id"], u["type"] = 1, "User"
	case "system":
		u["type_id"], u["type"] = 3, "System"
	case "service":
		u["type_id"], u["type"] = 4, "Service"
	default:
		u["type_id"], u["type"] = 99, "Other"
	}
	return u
}

func ocsfActor(a trail.Actor) map[string]any {
	if a.Type == trail.ActorService && a.Name == "" && a.Email == "" {
		out := map[string]any{"app_name": a.ID}
		if a.ID == "" {
			out["app_name"] = "unknown"
		}
		out["user"] = ocsfUser(a.ID, a.Name, "", "service")
		return out
	}
	return map[string]any{"user": ocsfUser(a.ID, a.Name, a.Email, string(a.Type))}
}

func ocsfMessage(ev *trail.Event) string {
	if ev.Description != "" {
		return ev.Description
	}
	return ev.Action
}

// ocsfClass picks the class and activity of ev.
func ocsfClass(ev *trail.Event) (class, activity int, name string) {
	verb := ev.Action
	if i := strings.LastIndexByte(verb, '.'); i >= 0 {
		verb = verb[i+1:]
	}
	verb = strings.ToLower(verb)
	switch {
	case strings.HasPrefix(ev.Action, "auth.") || strings.HasPrefix(ev.Action, "session.") || authVerbs[verb] != 0:
		if a := authVerbs[verb]; a != 0 {
			return OCSFAuthentication, a, authNames[a]
		}
		return OCSFAuthentication, 99, "Other"
	case ev.Target.Type == "user" || ev.Target.Type == "account" || strings.HasPrefix(ev.Action, "user.") || strings.HasPrefix(ev.Action, "account."):
		a := accountVerbs[verb]
		if strings.Contains(ev.Action, "password") {
			a = 3
			if strings.Contains(ev.Action, "reset") {
				a = 4
			}
		}
		if strings.Contains(ev.Action, "mfa") {
			switch verb {
			case "enable", "add", "enroll":
				a = 10
			case "disable", "remove":
				a = 11
			}
		}
		if a == 0 {
			return OCSFAccountChange, 99, "Other"
		}
		return OCSFAccountChange, a, accountNames[a]
	case !ev.Target.IsZero() && entityVerbs[verb] != 0:
		a := entityVerbs[verb]
		return OCSFEntityManagement, a, entityNames[a]
	}
	if a := crudVerbs[verb]; a != 0 {
		return OCSFAPIActivity, a, crudNames[a]
	}
	return OCSFAPIActivity, 99, "Other"
}

var (
	authVerbs = map[string]int{"login": 1, "logon": 1, "signin": 1, "sign_in": 1, "logout": 2, "logoff": 2, "signout": 2, "sign_out": 2}
	authNames = map[int]string{1: "Logon", 2: "Logoff"}

	accountVerbs = map[string]int{"create": 1, "invite": 1, "enable": 2, "activate": 2, "disable": 5, "deactivate": 5, "suspend": 5,
		"delete": 6, "remove": 6, "lock": 9, "unlock": 12}
	accountNames = map[int]string{1: "Create", 2: "Enable", 3: "Password Change", 4: "Password Reset", 5: "Disable", 6: "Delete",
		9: "Lock", 10: "MFA Factor Enable", 11: "MFA Factor Disable", 12: "Unlock"}

	entityVerbs = map[string]int{"create": 1, "add": 1, "read": 2, "view": 2, "get": 2, "update": 3, "change": 3, "edit": 3, "set": 3,
		"delete": 4, "remove": 4, "move": 5, "enable": 8, "disable": 9, "activate": 10, "deactivate": 11, "suspend": 12, "resume": 13}
	entityNames = map[int]string{1: "Create", 2: "Read", 3: "Update", 4: "Delete", 5: "Move", 8: "Enable", 9: "Disable",
		10: "Activate", 11: "Deactivate", 12: "Suspend", 13: "Resume"}

	crudVerbs = map[string]int{"create": 1, "read": 2, "list": 2, "update": 3, "delete": 4}
	crudNames = map[int]string{1: "Create", 2: "Read", 3: "Update", 4: "Delete"}
)

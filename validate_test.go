package trail

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestValidateAcceptsValid(t *testing.T) {
	t.Parallel()
	tests := map[string]func(*Event){
		"full":                  func(*Event) {},
		"platform event":        func(e *Event) { e.Tenant = "" },
		"system actor no id":    func(e *Event) { e.Actor = Actor{Type: ActorSystem} },
		"anonymous actor":       func(e *Event) { e.Actor = Actor{Type: ActorAnonymous, IP: "198.51.100.1"} },
		"no target":             func(e *Event) { e.Target = Target{} },
		"target without name":   func(e *Event) { e.Target.Name = "" },
		"schema-qualified type": func(e *Event) { e.Target.Type = "public.users" },
		"three-part action":     func(e *Event) { e.Action = "billing.invoice.pay" },
		"action with digits":    func(e *Event) { e.Action = "v2_user.re-invite9" },
		"tenant punctuation":    func(e *Event) { e.Tenant = "org:acme.eu_1-b" },
		"max tenant":            func(e *Event) { e.Tenant = strings.Repeat("t", MaxTenantLen) },
		"max description":       func(e *Event) { e.Description = strings.Repeat("d", MaxDescriptionLen) },
		"null old value":        func(e *Event) { e.Changes = []Change{{Field: "x", Old: json.RawMessage(`null`)}} },
		"max changes": func(e *Event) {
			e.Changes = nil
			for i := range MaxChanges {
				e.Changes = append(e.Changes, Change{Field: fmt.Sprint("f", i)})
			}
		},
		"max metadata keys": func(e *Event) {
			e.Metadata = map[string]any{}
			for i := range MaxMetadataKeys {
				e.Metadata[fmt.Sprint("k", i)] = i
			}
		},
		"a little in the future": func(e *Event) { e.OccurredAt = time.Now().Add(MaxFutureSkew / 2) },
		"outcome denied":         func(e *Event) { e.Outcome = OutcomeDenied },
		"unicode description":    func(e *Event) { e.Description = "Zoë changed €5 → €10 😀\n" },
	}
	for name, edit := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ev := validEvent()
			edit(&ev)
			if err := ev.Validate(); err != nil {
				t.Errorf("Validate = %v", err)
			}
		})
	}
}

func TestValidateRules(t *testing.T) {
	t.Parallel()
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name  string
		edit  func(*Event)
		field string
		hint  string // in the reason
	}{
		{"id missing", func(e *Event) { e.ID = uuid.Nil }, "id", "required"},
		{"occurred_at missing", func(e *Event) { e.OccurredAt = time.Time{} }, "occurred_at", "required"},
		{"occurred_at before 1970", func(e *Event) { e.OccurredAt = time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC) }, "occurred_at", "1970"},
		{"occurred_at after 9999", func(e *Event) { e.OccurredAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "occurred_at", "9999"},
		{"occurred_at UTC year 1969", func(e *Event) {
			e.OccurredAt = time.Date(1970, 1, 1, 0, 30, 0, 0, time.FixedZone("CET", 3600))
		}, "occurred_at", "1969"},
		{"recorded_at before 1970", func(e *Event) { e.RecordedAt = time.UnixMicro(-11) }, "recorded_at", "1970"},
		{"recorded_at after 9999", func(e *Event) { e.RecordedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "recorded_at", "9999"},
		{"occurred_at in the future", func(e *Event) { e.OccurredAt = time.Now().Add(MaxFutureSkew + time.Hour) }, "occurred_at", "future"},
		{"tenant with space", func(e *Event) { e.Tenant = "acme corp" }, "tenant", ""},
		{"tenant leading dot", func(e *Event) { e.Tenant = ".acme" }, "tenant", ""},
		{"tenant unicode", func(e *Event) { e.Tenant = "acmé" }, "tenant", ""},
		{"tenant too long", func(e *Event) { e.Tenant = long(MaxTenantLen + 1) }, "tenant", ""},
		{"tenant newline", func(e *Event) { e.Tenant = "acme\n" }, "tenant", ""},
		{"actor type missing", func(e *Event) { e.Actor.Type = "" }, "actor.type", "required"},
		{"actor type unknown", func(e *Event) { e.Actor.Type = "robot" }, "actor.type", "robot"},
		{"actor type upper", func(e *Event) { e.Actor.Type = "User" }, "actor.type", ""},
		{"user actor without id", func(e *Event) { e.Actor.ID = "" }, "actor.id", "required"},
		{"service actor without id", func(e *Event) { e.Actor = Actor{Type: ActorService} }, "actor.id", "required"},
		{"actor id too long", func(e *Event) { e.Actor.ID = long(MaxIDLen + 1) }, "actor.id", "at most"},
		{"actor id control", func(e *Event) { e.Actor.ID = "4\t2" }, "actor.id", "control"},
		{"actor id NUL", func(e *Event) { e.Actor.ID = "4\x002" }, "actor.id", "NUL"},
		{"actor id bad utf8", func(e *Event) { e.Actor.ID = "4\xff" }, "actor.id", "UTF-8"},
		{"actor name too long", func(e *Event) { e.Actor.Name = long(MaxNameLen + 1) }, "actor.name", ""},
		{"actor name bad utf8", func(e *Event) { e.Actor.Name = "\xc3" }, "actor.name", "UTF-8"},
		{"actor email too long", func(e *Event) { e.Actor.Email = long(MaxNameLen + 1) }, "actor.email", ""},
		{"actor ip too long", func(e *Event) { e.Actor.IP = long(65) }, "actor.ip", ""},
		{"actor user agent too long", func(e *Event) { e.Actor.UserAgent = long(MaxUserAgentLen + 1) }, "actor.user_agent", ""},
		{"on_behalf_of type missing", func(e *Event) { e.Actor.OnBehalfOf = &Actor{ID: "1"} }, "actor.on_behalf_of.type", "required"},
		{"on_behalf_of id missing", func(e *Event) { e.Actor.OnBehalfOf = &Actor{Type: ActorUser} }, "actor.on_behalf_of.id", "required"},
		{"on_behalf_of email bad", func(e *Event) { e.Actor.OnBehalfOf.Email = "\x00" }, "actor.on_behalf_of.email", "NUL"},
		{"on_behalf_of nested", func(e *Event) {
			e.Actor.OnBehalfOf.OnBehalfOf = &Actor{Type: ActorUser, ID: "9"}
		}, "actor.on_behalf_of.on_behalf_of", "one level"},
		{"on_behalf_of cycle", func(e *Event) { e.Actor.OnBehalfOf = &e.Actor }, "actor.on_behalf_of.on_behalf_of", "one level"},
		{"action missing", func(e *Event) { e.Action = "" }, "action", "required"},
		{"action one segment", func(e *Event) { e.Action = "delete" }, "action", ""},
		{"action upper case", func(e *Event) { e.Action = "User.delete" }, "action", ""},
		{"action trailing dot", func(e *Event) { e.Action = "user.delete." }, "action", ""},
		{"action empty segment", func(e *Event) { e.Action = "user..delete" }, "action", ""},
		{"action digit segment", func(e *Event) { e.Action = "user.2fa" }, "action", ""},
		{"action wildcard", func(e *Event) { e.Action = "user.*" }, "action", ""},
		{"action too long", func(e *Event) { e.Action = "a." + strings.Repeat("b", MaxActionLen) }, "action", ""},
		{"target type missing", func(e *Event) { e.Target.Type = "" }, "target.type", "required"},
		{"target type upper", func(e *Event) { e.Target.Type = "User" }, "target.type", ""},
		{"target type space", func(e *Event) { e.Target.Type = "user account" }, "target.type", ""},
		{"target type too long", func(e *Event) { e.Target.Type = "t" + long(64) }, "target.type", ""},
		{"target id missing", func(e *Event) { e.Target.ID = "" }, "target.id", "required"},
		{"target only name", func(e *Event) { e.Target = Target{Name: "x"} }, "target.type", "required"},
		{"target id too long", func(e *Event) { e.Target.ID = long(MaxIDLen + 1) }, "target.id", ""},
		{"target id control", func(e *Event) { e.Target.ID = "a\x7f" }, "target.id", "control"},
		{"target name too long", func(e *Event) { e.Target.Name = long(MaxNameLen + 1) }, "target.name", ""},
		{"target name bad utf8", func(e *Event) { e.Target.Name = "\xff" }, "target.name", "UTF-8"},
		{"outcome empty", func(e *Event) { e.Outcome = "" }, "outcome", ""},
		{"outcome unknown", func(e *Event) { e.Outcome = "ok" }, "outcome", "ok"},
		{"description too long", func(e *Event) { e.Description = long(MaxDescriptionLen + 1) }, "description", "at most"},
		{"description NUL", func(e *Event) { e.Description = "a\x00" }, "description", "NUL"},
		{"description bad utf8", func(e *Event) { e.Description = "caf\xe9" }, "description", "UTF-8"},
		{"too many changes", func(e *Event) {
			e.Changes = make([]Change, MaxChanges+1)
			for i := range e.Changes {
				e.Changes[i].Field = fmt.Sprint(i)
			}
		}, "changes", "at most"},
		{"change field missing", func(e *Event) { e.Changes[1].Field = "" }, "changes[1].field", "required"},
		{"change field too long", func(e *Event) { e.Changes[0].Field = long(MaxFieldLen + 1) }, "changes[0].field", ""},
		{"change field bad utf8", func(e *Event) { e.Changes[0].Field = "\xff" }, "changes[0].field", "UTF-8"},
		{"change field twice", func(e *Event) { e.Changes[1].Field = e.Changes[0].Field }, "changes[1].field", "twice"},
		{"redacted with value", func(e *Event) { e.Changes[1].Old = json.RawMessage(`1`) }, "changes[1]", "redacted"},
		{"old not JSON", func(e *Event) { e.Changes[0].Old = json.RawMessage(`{x}`) }, "changes[0].old", "invalid JSON"},
		{"new not JSON", func(e *Event) { e.Changes[0].New = json.RawMessage(`[1,`) }, "changes[0].new", ""},
		{"new empty", func(e *Event) { e.Changes[0].New = json.RawMessage{} }, "changes[0].new", "empty"},
		{"new duplicate key", func(e *Event) { e.Changes[0].New = json.RawMessage(`{"a":1,"a":1}`) }, "changes[0].new", "duplicate"},
		{"new huge int", func(e *Event) { e.Changes[0].New = json.RawMessage(`12345678901234567891`) }, "changes[0].new", "string"},
		{"too many metadata keys", func(e *Event) {
			e.Metadata = map[string]any{}
			for i := range MaxMetadataKeys + 1 {
				e.Metadata[fmt.Sprint(i)] = true
			}
		}, "metadata", "at most"},
		{"metadata too deep", func(e *Event) { e.Metadata = deepMap(MaxJSONDepth) }, "metadata", "deeper"},
		{"metadata bad utf8", func(e *Event) { e.Metadata["x"] = "\xff" }, "metadata", "UTF-8"},
		{"metadata bad number", func(e *Event) { e.Metadata["x"] = json.Number("0x10") }, "metadata", "number"},
		{"request_id too long", func(e *Event) { e.RequestID = long(MaxIDLen + 1) }, "request_id", ""},
		{"request_id control", func(e *Event) { e.RequestID = "a\nb" }, "request_id", "control"},
		{"trace_id bad utf8", func(e *Event) { e.TraceID = "\xff" }, "trace_id", "UTF-8"},
		{"trace_id control", func(e *Event) { e.TraceID = "\x1b[31m" }, "trace_id", "control"},
		{"source too long", func(e *Event) { e.Source = long(MaxNameLen + 1) }, "source", ""},
		{"source NUL", func(e *Event) { e.Source = "\x00" }, "source", "NUL"},
		{"schema_version zero", func(e *Event) { e.SchemaVersion = 0 }, "schema_version", ""},
		{"schema_version future", func(e *Event) { e.SchemaVersion = SchemaVersion + 1 }, "schema_version", ""},
		{"schema_version negative", func(e *Event) { e.SchemaVersion = -1 }, "schema_version", ""},
		{"event too big", func(e *Event) {
			e.Metadata = map[string]any{}
			for i := range 20 {
				e.Metadata[fmt.Sprint(i)] = long(4000)
			}
		}, "event", "bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev := validEvent()
			tt.edit(&ev)
			err := ev.Validate()
			if err == nil {
				t.Fatal("Validate accepted the event")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v does not match ErrInvalid", err)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("%T is not a *ValidationError", err)
			}
			if ve.Field != tt.field {
				t.Errorf("Field = %q, want %q (%v)", ve.Field, tt.field, err)
			}
			if !strings.Contains(ve.Reason, tt.hint) {
				t.Errorf("Reason %q does not mention %q", ve.Reason, tt.hint)
			}
			if len(err.Error()) > 400 {
				t.Errorf("error message is %d bytes long", len(err.Error()))
			}
			if !strings.HasPrefix(err.Error(), tt.field+": ") {
				t.Errorf("message %q does not start with the field", err)
			}
			// Canonical refuses the same event, naming the same field,
			// unless the rule depends on the clock.
			if tt.hint != "future" {
				if _, cerr := ev.Canonical(); cerr == nil {
					t.Errorf("Canonical accepted an invalid event")
				} else if errors.As(cerr, &ve) && ve.Field != tt.field && !strings.HasPrefix(ve.Field, "changes") && ve.Field != "metadata" {
					t.Errorf("Canonical names %q, Validate %q", ve.Field, tt.field)
				}
			}
		})
	}
}

func TestValidTenantAndAction(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{"acme": true, "A1": true, "1": true, "a.b_c:d-e": true, "": false, "-a": false, "a b": false, "a/b": false, "é": false} {
		if got := ValidTenant(s); got != want {
			t.Errorf("ValidTenant(%q) = %v", s, got)
		}
	}
	for s, want := range map[string]bool{"user.delete": true, "a.b.c": true, "a1.b_c-d": true, "user": false, "user.": false, ".user": false, "User.delete": false, "user.Delete": false, "user._x": false, "": false} {
		if got := ValidAction(s); got != want {
			t.Errorf("ValidAction(%q) = %v", s, got)
		}
	}
}

// TestMatchersAgreeWithPatterns checks the hand-written matchers against the
// regular expressions they replace, on edge cases and random strings.
func TestMatchersAgreeWithPatterns(t *testing.T) {
	t.Parallel()
	inputs := []string{"", "a", "A", "0", ".", "a.", ".a", "a.b", "a..b", "a.b.", "a.1", "a.b1", "a_b.c-d", "a:b", "-", "_a",
		"a.b.c.d", "é", "a\n", "a.B", "ab.cd*", "a.b c", "a.b\x00", "z.z", "a-.b_", "a.b.", "abc"}
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := "aZ09._:-*éx. "
	for range 20000 {
		n := r.IntN(8)
		var b strings.Builder
		for range n {
			b.WriteByte(alphabet[r.IntN(len(alphabet))])
		}
		inputs = append(inputs, b.String())
	}
	for _, s := range inputs {
		if got, want := matchTenant(s), tenantRE.MatchString(s); got != want {
			t.Errorf("matchTenant(%q) = %v, regexp says %v", s, got, want)
		}
		if got, want := matchAction(s, 2), actionRE.MatchString(s); got != want {
			t.Errorf("matchAction(%q, 2) = %v, regexp says %v", s, got, want)
		}
		if got, want := matchAction(s, 1), actionPrefixRE.MatchString(s); got != want {
			t.Errorf("matchAction(%q, 1) = %v, regexp says %v", s, got, want)
		}
		if got, want := matchTargetType(s), targetTypeRE.MatchString(s); got != want {
			t.Errorf("matchTargetType(%q) = %v, regexp says %v", s, got, want)
		}
	}
}

func TestValidationErrorIs(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("event 3: %w", &ValidationError{Field: "action", Reason: "required"})
	if !errors.Is(err, ErrInvalid) {
		t.Error("wrapped ValidationError does not match ErrInvalid")
	}
	if errors.Is(err, ErrNotFound) {
		t.Error("ValidationError matches ErrNotFound")
	}
	if got := err.Error(); got != "event 3: action: required" {
		t.Errorf("message %q", got)
	}
}

func TestClipLongValues(t *testing.T) {
	t.Parallel()
	ev := validEvent()
	ev.Action = strings.Repeat("X", 1<<20)
	err := ev.Validate()
	if err == nil || len(err.Error()) > 300 {
		t.Errorf("error for a 1 MB action is %d bytes", len(err.Error()))
	}
	if got := clip("ab\xffc"); got != "ab\uFFFDc" {
		t.Errorf("clip = %q", got)
	}
}

// TestValidatePersonalFields: actor.ip must be an IP address and names,
// e-mail addresses and user agents hold no control characters. Normalize
// refuses them too, since after a privacy Transform Validate sees only
// ciphertext; Canonical keeps accepting them, as events stored before the
// rule must still seal and archive.
func TestValidatePersonalFields(t *testing.T) {
	t.Parallel()
	encrypted := "enc:v1:AAAAAAAAAAA:" + strings.Repeat("A", 60)
	refused := []struct {
		name  string
		edit  func(*Event)
		field string
		hint  string
	}{
		{"ip octet 999", func(e *Event) { e.Actor.IP = "999.1.1.1" }, "actor.ip", "not an IPv4 or IPv6 address"},
		{"ip three octets", func(e *Event) { e.Actor.IP = "1.2.3" }, "actor.ip", "address"},
		{"ip leading zero", func(e *Event) { e.Actor.IP = "203.0.113.07" }, "actor.ip", "address"},
		{"ip bracketed", func(e *Event) { e.Actor.IP = "[2001:db8::1]" }, "actor.ip", "address"},
		{"ip with space", func(e *Event) { e.Actor.IP = " 203.0.113.7" }, "actor.ip", "address"},
		{"ip host name", func(e *Event) { e.Actor.IP = "localhost" }, "actor.ip", "address"},
		{"ip zone with a space", func(e *Event) { e.Actor.IP = "fe80::1%eth 0" }, "actor.ip", "zone"},
		{"ip zone with a newline", func(e *Event) { e.Actor.IP = "fe80::1%eth0\n" }, "actor.ip", "zone"},
		{"ip zone on IPv4", func(e *Event) { e.Actor.IP = "203.0.113.7%eth0" }, "actor.ip", "address"},
		{"ip posing as ciphertext", func(e *Event) { e.Actor.IP = "enc:v1:999.1.1.1" }, "actor.ip", "address"},
		{"ip of on_behalf_of", func(e *Event) { e.Actor.OnBehalfOf.IP = "1.1.1.1.1" }, "actor.on_behalf_of.ip", "address"},
		{"email newline", func(e *Event) { e.Actor.Email = "ada@acme.example\nBcc: eve@evil.example" }, "actor.email", "control"},
		{"email CR", func(e *Event) { e.Actor.Email = "ada\r@acme.example" }, "actor.email", "control"},
		{"email tab", func(e *Event) { e.Actor.Email = "ada\t@acme.example" }, "actor.email", "control"},
		{"email DEL", func(e *Event) { e.Actor.Email = "ada\x7f@acme.example" }, "actor.email", "control"},
		{"on_behalf_of email newline", func(e *Event) { e.Actor.OnBehalfOf.Email = "a@b\n" }, "actor.on_behalf_of.email", "control"},
		{"name newline", func(e *Event) { e.Actor.Name = "Ada\nLovelace" }, "actor.name", "control"},
		{"name escape", func(e *Event) { e.Actor.Name = "\x1b[31mAda" }, "actor.name", "control"},
		{"user agent newline", func(e *Event) { e.Actor.UserAgent = "curl/8\r\nX-Evil: 1" }, "actor.user_agent", "control"},
		{"target name newline", func(e *Event) { e.Target.Name = "Pro\nplan" }, "target.name", "control"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, step := range []struct {
				name string
				run  func(*Event) error
			}{{"Validate", (*Event).Validate}, {"Normalize", (*Event).Normalize}} {
				ev := validEvent()
				tt.edit(&ev)
				err := step.run(&ev)
				var ve *ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("%s = %v, want a *ValidationError", step.name, err)
				}
				if ve.Field != tt.field || !strings.Contains(ve.Reason, tt.hint) {
					t.Errorf("%s = %v; want field %s, reason with %q", step.name, err, tt.field, tt.hint)
				}
			}
			ev := validEvent()
			tt.edit(&ev)
			if _, err := ev.Canonical(); err != nil {
				t.Errorf("Canonical refuses an event as it may be stored already: %v", err)
			}
		})
	}
	accepted := map[string]func(*Event){
		"IPv4":                  func(e *Event) { e.Actor.IP = "198.51.100.1" },
		"IPv6":                  func(e *Event) { e.Actor.IP = "2001:db8::1" },
		"IPv6 upper case":       func(e *Event) { e.Actor.IP = "2001:DB8::A" },
		"IPv4-mapped IPv6":      func(e *Event) { e.Actor.IP = "::ffff:203.0.113.7" },
		"IPv6 link-local zone":  func(e *Event) { e.Actor.IP = "fe80::1%eth0" },
		"IPv6 zone index":       func(e *Event) { e.Actor.IP = "fe80::1%2" },
		"no ip":                 func(e *Event) { e.Actor.IP = "" },
		"encrypted ip":          func(e *Event) { e.Actor.IP = encrypted },
		"encrypted email":       func(e *Event) { e.Actor.Email = encrypted },
		"user agent with a tab": func(e *Event) { e.Actor.UserAgent = "curl/8\t(x)" },
		"unicode name":          func(e *Event) { e.Actor.Name = "Zoë \u2028 O'Brien" },
	}
	for name, edit := range accepted {
		ev := validEvent()
		edit(&ev)
		if err := ev.Normalize(); err != nil {
			t.Errorf("%s: Normalize = %v", name, err)
		}
		if err := ev.Validate(); err != nil {
			t.Errorf("%s: Validate = %v", name, err)
		}
	}
}

// TestNormalizeStripsPort: an actor IP taken from http.Request.RemoteAddr
// keeps its address; a bad address is still refused.
func TestNormalizeStripsPort(t *testing.T) {
	for in, want := range map[string]string{"203.0.113.9:51234": "203.0.113.9", "[2001:db8::1]:443": "2001:db8::1", "203.0.113.9": "203.0.113.9"} {
		ev := Event{Tenant: "acme", Action: "user.login", Actor: Actor{Type: ActorUser, ID: "1", IP: in}}
		if err := ev.Normalize(); err != nil || ev.Actor.IP != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, ev.Actor.IP, err, want)
		}
	}
	ev := Event{Tenant: "acme", Action: "user.login", Actor: Actor{Type: ActorUser, ID: "1", IP: "999.1.1.1:80"}}
	if err := ev.Normalize(); err == nil {
		t.Error("999.1.1.1:80 accepted")
	}
}

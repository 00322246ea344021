package trailprivacy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestActionFor(t *testing.T) {
	t.Parallel()
	const src = `
password          omit      # deployment rule beats the deny-list
*.secret_answer   hmac
metadata.card.*   hmac
email             pii
metadata.**.ssn_hash keep
address.*.street  redact
*tok*             redact
session_count     keep

[tenant acme]
email             hmac
card              keep
defaults off

[tenant globex]
session_count     redact
`
	p, err := ParsePolicy(src)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		tenant, path string
		want         Action
	}{
		// Deployment rules.
		{"", "password", ActionOmit},
		{"", "user.password", ActionOmit}, // a name matches at any depth
		{"", "PassWord", ActionOmit},      // case-insensitive
		{"", "user_password", ActionOmit}, // words
		{"", "profile.secret_answer", ActionHMAC},
		{"", "secret_answer", ActionRedact},             // *.x wants two segments; deny-list "secret" still hits
		{"", "a.b.secret_answer", ActionRedact},         // ditto
		{"", "metadata.card.number", ActionHMAC},        // a rule below a deny-listed name still applies
		{"", "metadata.contact.email", ActionPII},       // name at depth
		{"", "contact_email", ActionPII},                // words
		{"", "emails", ActionKeep},                      // whole words only
		{"", "address.home.street", ActionRedact},       // * is one segment
		{"", "address.street", ActionKeep},              // ... exactly one
		{"", "address.home.street.line1", ActionRedact}, // a match covers what is below
		{"", "csrftokens", ActionRedact},                // glob inside a segment
		{"", "session_count", ActionKeep},               // deployment keep overrides the deny-list
		{"", "metadata.x.y.ssn_hash", ActionKeep},       // ** spans segments
		{"", "metadata.ssn_hash", ActionKeep},           // ** may be empty
		{"", "ssn_hash", ActionRedact},                  // deny-list
		{"", "plan", ActionKeep},
		// Deny-list defaults.
		{"", "X-Api-Key", ActionRedact},
		{"", "headers.Authorization", ActionRedact},
		{"", "apiKey", ActionRedact},
		{"", "APIKey", ActionRedact},
		{"", "newPassword", ActionOmit}, // camelCase words: the deployment's password rule
		{"", "metadata.card", ActionRedact},
		{"", "metadata.cards.brand", ActionKeep},
		{"", "metadata.pass_word", ActionOmit},
		{"", "private_key", ActionRedact},
		{"", "set-cookie", ActionRedact},
		{"", "session_id", ActionRedact},
		{"", "card_last4", ActionRedact},
		{"", "iban", ActionRedact},
		{"", "user.cvv", ActionRedact},
		{"", "company", ActionKeep}, // contains "pan" but not as a word
		{"", "tokenizer", ActionRedact},
		{"", "keyboard", ActionKeep},
		{"", "passwords", ActionKeep}, // not the word password; plural is another word
		// Tenant overrides.
		{"acme", "email", ActionHMAC},
		{"acme", "metadata.card.number", ActionHMAC}, // tenant keeps card, the deployment's glob below still applies
		{"acme", "metadata.card", ActionKeep},
		{"acme", "ssn", ActionKeep},      // defaults off for acme
		{"acme", "password", ActionOmit}, // deployment rules still apply
		{"globex", "session_count", ActionRedact},
		{"globex", "ssn", ActionRedact},
		{"globex", "email", ActionPII},
		{"unknown-tenant", "email", ActionPII},
	}
	for _, tc := range cases {
		if got := p.ActionFor(tc.tenant, tc.path); got != tc.want {
			t.Errorf("ActionFor(%q, %q) = %s, want %s", tc.tenant, tc.path, got, tc.want)
		}
	}
}

func TestDefaultsOff(t *testing.T) {
	t.Parallel()
	p, err := ParsePolicy("defaults off\n[tenant strict]\ndefaults on\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.ActionFor("", "password"); got != ActionKeep {
		t.Errorf("defaults off: password = %s", got)
	}
	if got := p.ActionFor("strict", "password"); got != ActionRedact {
		t.Errorf("tenant defaults on: password = %s", got)
	}
	if got := DefaultPolicy().ActionFor("", "metadata.auth.Bearer_Token"); got != ActionRedact {
		t.Errorf("default policy: %s", got)
	}
	for _, name := range DefaultDenyList() {
		if got := DefaultPolicy().ActionFor("t", "x."+strings.ToUpper(name)); got != ActionRedact {
			t.Errorf("deny-list entry %q not redacted: %s", name, got)
		}
	}
}

func TestParsePolicyErrors(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, src, want string }{
		{"unknown action", "password encrypt", `line 1: unknown action "encrypt"`},
		{"missing action", "\n\npassword", "line 3:"},
		{"three fields", "password redact now", "line 1:"},
		{"empty segment", "a..b redact", "empty path segment"},
		{"leading dot", ".a redact", "empty path segment"},
		{"double star inside", "a**b.c redact", "** must be a whole segment"},
		{"match all", "** redact", "would match everything"},
		{"no letters", "___ redact", "no letters or digits"},
		{"bad section", "[acme]", "want [tenant NAME]"},
		{"unclosed section", "[tenant acme", "want [tenant NAME]"},
		{"bad tenant", "[tenant bad/tenant]", "not a valid tenant"},
		{"duplicate tenant", "[tenant a]\n[tenant a]", `line 2: tenant "a" has a second section`},
		{"bad defaults", "defaults maybe", "want on or off"},
		{"json unknown field", `{"rules": [], "extra": 1}`, "unknown field"},
		{"json bad action", `{"rules": [{"match": "a", "action": "redact"}, {"match": "b", "action": "hide"}]}`, `rules[1]: unknown action "hide"`},
		{"json tenant rule", `{"tenants": {"acme": {"rules": [{"match": "", "action": "omit"}]}}}`, "tenants.acme.rules[0]: empty pattern"},
		{"json bad tenant", `{"tenants": {"a b": {}}}`, "not a valid tenant"},
		{"json trailing", `{} {}`, "more than one JSON value"},
		{"invalid utf8", "pass\xffword redact", "UTF-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePolicy(tc.src)
			if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParsePolicy(%q) = %v, want ErrPolicy containing %q", tc.src, err, tc.want)
			}
		})
	}
}

func TestParsePolicyForms(t *testing.T) {
	t.Parallel()
	text := "defaults off\npassword omit\nmetadata.card.* hmac\n\n[tenant acme]\ndefaults on\nemail pii\n"
	p, err := ParsePolicy(text)
	if err != nil {
		t.Fatal(err)
	}
	if p.String() != text {
		t.Fatalf("String() =\n%s\nwant\n%s", p.String(), text)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	q, err := ParsePolicy(string(b))
	if err != nil {
		t.Fatalf("parse own JSON %s: %v", b, err)
	}
	if q.String() != text {
		t.Fatalf("JSON round trip =\n%s\nwant\n%s", q.String(), text)
	}
	if !p.usesKeys() || DefaultPolicy().usesKeys() {
		t.Fatal("usesKeys")
	}
}

func FuzzParsePolicy(f *testing.F) {
	f.Add("password redact\n*.x omit\n[tenant a]\ndefaults off\nemail pii\n")
	f.Add(`{"defaults": false, "rules": [{"match": "metadata.**.k", "action": "hmac"}], "tenants": {"t": {"rules": []}}}`)
	f.Add("a*b*c keep # comment\n")
	f.Fuzz(func(t *testing.T, src string) {
		p, err := ParsePolicy(src)
		if err != nil {
			if !errors.Is(err, ErrPolicy) {
				t.Fatalf("error %v does not match ErrPolicy", err)
			}
			return
		}
		// What parses prints in a form that parses to the same policy.
		q, err := ParsePolicy(p.String())
		if err != nil {
			t.Fatalf("reparse of %q: %v", p.String(), err)
		}
		if q.String() != p.String() {
			t.Fatalf("round trip changed the policy:\n%s\n%s", p.String(), q.String())
		}
		_ = p.ActionFor("t", "metadata.a.b")
	})
}

// TestDenyListExamples checks the examples docs/privacy.md gives.
func TestDenyListExamples(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	for _, path := range []string{"password", "password_hash", "newPassword", "client_secret", "access_token", "csrf_token",
		"X-Api-Key", "Authorization", "Set-Cookie", "session_id", "card_last4", "card.number", "cvv", "ssn", "iban", "PassWord", "APIKEY"} {
		if got := p.ActionFor("t", path); got != ActionRedact {
			t.Errorf("%s: %s, want redact", path, got)
		}
	}
	for _, path := range []string{"passwords", "company", "keyboard", "tokens", "plan", "email"} {
		if got := p.ActionFor("t", path); got != ActionKeep {
			t.Errorf("%s: %s, want keep", path, got)
		}
	}
}

func TestWithoutDefaults(t *testing.T) {
	t.Parallel()
	p, err := ParsePolicy("email hmac\n[tenant acme]\ndefaults on\n[tenant beta]\nphone pii\n")
	if err != nil {
		t.Fatal(err)
	}
	q := p.WithoutDefaults()
	for _, c := range []struct {
		p            *Policy
		tenant, path string
		want         Action
	}{
		{p, "", "password", ActionRedact},
		{q, "", "password", ActionKeep},
		{q, "beta", "password", ActionKeep},
		{q, "acme", "password", ActionRedact},
		{q, "", "email", ActionHMAC},
		{q, "beta", "phone", ActionPII},
		{(*Policy)(nil).WithoutDefaults(), "", "token", ActionKeep},
	} {
		if got := c.p.ActionFor(c.tenant, c.path); got != c.want {
			t.Errorf("ActionFor(%q, %q) = %s, want %s", c.tenant, c.path, got, c.want)
		}
	}
}

package trailcli

import (
	"strings"
	"testing"
)

// TestPolicyErrorShowsNoFileContent: --policy naming a file that is not a
// policy (an .env, a .netrc, a cloud credentials file) is bad usage whose
// one line names the file, the line or rule and what a policy wants there,
// and never a byte of what the file holds.
func TestPolicyErrorShowsNoFileContent(t *testing.T) {
	const secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
	db := tempDB(t)
	for _, c := range []struct {
		name, content, want string
	}{
		{".env", "AWS_SECRET_ACCESS_KEY=" + secret + "\n", "line 1: not a policy rule"},
		{"key value", "# my keys\n\ntoken " + secret + "\n", "line 3: unknown action"},
		{"netrc", "machine api.example login alice password " + secret + "\n", "line 1: not a policy rule"},
		{"two words, secret first", secret + "..x pii\n", "line 1: pattern has an empty path segment"},
		{"section", "[" + secret + "]\n", "line 1: not a section header"},
		{"tenant section", "[tenant " + secret + "!]\n", "line 1: not a valid tenant name"},
		{"defaults", "defaults " + secret + "\n", "line 1: defaults: want on or off"},
		{"credentials JSON", `{"type":"service_account","private_key":"` + secret + `"}`, "policy: not a JSON policy"},
		{"JSON rule", `{"rules":[{"match":"` + secret + `..x","action":"pii"}]}`, "rules[0]: pattern has an empty path segment"},
		{"JSON tenant", `{"tenants":{"` + secret + ` x":{"rules":[]}}}`, "tenants: not a valid tenant name"},
	} {
		p := writeFile(t, "policy", c.content)
		r := run(t, db, env{}, "--policy", p, "query")
		if r.code != ExitUsage || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, p) || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 and %q", c.name, r.code, r.stderr, c.want)
		}
		for _, leak := range []string{secret[:8], "AWS_", "alice", "private_key", "service_account"} {
			if strings.Contains(r.stderr, leak) {
				t.Errorf("%s: the error shows the file's %q: %q", c.name, leak, r.stderr)
			}
		}
	}
}

package logstream

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail"
)

// TestSignGolden: Sign matches signatures computed independently (Python's
// hmac module) in testdata/webhook-signatures.json.
func TestSignGolden(t *testing.T) {
	b, err := os.ReadFile("testdata/webhook-signatures.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Secret    string `json:"secret"`
		Timestamp int64  `json:"timestamp"`
		Body      string `json:"body"`
		Signature string `json:"signature"`
	}
	if err := json.Unmarshal(b, &cases); err != nil || len(cases) == 0 {
		t.Fatal(err)
	}
	for _, c := range cases {
		if got := Sign(c.Secret, c.Timestamp, []byte(c.Body)); got != c.Signature {
			t.Errorf("Sign(%q, %d, %q) = %s, want %s", c.Secret, c.Timestamp, c.Body, got, c.Signature)
		}
	}
}

var rfc5424 = regexp.MustCompile(`^<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) ([!-~]{1,255}) trail - ([!-~]{1,32}) \[trail@32473 stream="((?:[^"\\\]]|\\["\\\]])*)" seq="(\d+)"(?: tenant="((?:[^"\\\]]|\\["\\\]])*)")?\] `)

// TestSyslogMessageGolden pins one message byte for byte.
func TestSyslogMessageGolden(t *testing.T) {
	ev := sampleEvent("user.delete", func(e *trail.Event) { e.Outcome = trail.OutcomeDenied; e.Tenant = `ac"me]` })
	got := string(SyslogMessage(ev, "host 1", "ls_1", 7, []byte(`{"x":1}`)))
	want := `<108>1 2026-12-01T09:30:00.123456Z host_1 trail - user.delete [trail@32473 stream="ls_1" seq="7" tenant="ac\"me\]"] {"x":1}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// FuzzSyslogMessage: whatever the action, tenant and host name, the
// header is well-formed RFC 5424 and the structured data unescapes back
// to the tenant.
func FuzzSyslogMessage(f *testing.F) {
	f.Add("user.delete", "acme", "host", "success")
	f.Add("a b\nc", `t"]\`, "", "denied")
	f.Add(strings.Repeat("x", 40), "ü", "h\x00", "failure")
	f.Fuzz(func(t *testing.T, action, tenant, host, outcome string) {
		ev := &trail.Event{Action: action, Tenant: tenant, Outcome: trail.Outcome(outcome), OccurredAt: time.Unix(1796629743, 5000)}
		m := SyslogMessage(ev, host, "ls_1", 3, []byte("{}"))
		sm := rfc5424.FindSubmatch(m)
		if sm == nil {
			t.Fatalf("not RFC 5424: %q", m)
		}
		if tenant != "" {
			un := strings.NewReplacer(`\\`, `\`, `\"`, `"`, `\]`, `]`).Replace(string(sm[7]))
			if un != strings.ToValidUTF8(tenant, "?") {
				t.Fatalf("tenant %q came back as %q", tenant, un)
			}
		}
		if !strings.HasSuffix(string(m), "] {}") {
			t.Fatalf("MSG: %q", m)
		}
	})
}

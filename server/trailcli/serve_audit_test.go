package trailcli

import (
	"strings"
	"testing"
)

// TestServeAuditAppendsFlag: --audit-appends below 0 is bad input (exit 2,
// one line naming the flag).
func TestServeAuditAppendsFlag(t *testing.T) {
	r := run(t, tempDB(t), env{}, "serve", "--addr", "127.0.0.1:0", "--audit-appends", "-1")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "--audit-appends") || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

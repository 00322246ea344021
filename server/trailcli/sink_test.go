package trailcli

import (
	"strings"
	"testing"
)

// TestSinkBadFlags: trail sink and trail serve --nats refuse bad flags with
// one line and exit 2, before opening anything.
func TestSinkBadFlags(t *testing.T) {
	db := tempDB(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"sink"}, "--nats (TRAIL_NATS) is required"},
		{[]string{"sink", "--nats", "nats://127.0.0.1:1", "--nats-replicas", "2"}, "--nats-replicas: must be 1, 3 or 5"},
		{[]string{"sink", "--nats", "nats://127.0.0.1:1", "--nats-partitions", "0"}, "--nats-partitions: must be 1 to 1024"},
		{[]string{"sink", "--nats", "nats://127.0.0.1:1", "--batch", "0"}, "--batch: must be 1 to 10000"},
		{[]string{"sink", "--nats", "nats://127.0.0.1:1", "--ack-wait", "10ms"}, "--ack-wait: must be at least 1s, and --pinned-ttl more than --ack-wait"},
		{[]string{"sink", "--nats", "nats://127.0.0.1:1", "--ack-wait", "20s"}, "--ack-wait: must be at least 1s, and --pinned-ttl more than --ack-wait"},
		{[]string{"serve", "--addr", "127.0.0.1:0", "--nats", "nats://127.0.0.1:1", "--nats-replicas", "4"}, "--nats-replicas: must be 1, 3 or 5"},
	} {
		r := run(t, db, env{}, c.args...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("trail %s: exit %d, stderr %q; want 2 and %q", strings.Join(c.args, " "), r.code, r.stderr, c.want)
		}
	}
}

// TestSinkNATSUnreachable: a server nobody listens on is one line, exit 1.
func TestSinkNATSUnreachable(t *testing.T) {
	r := run(t, tempDB(t), env{}, "sink", "--nats", "nats://127.0.0.1:1")
	if r.code != 1 || !strings.Contains(r.stderr, "--nats nats://127.0.0.1:1") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

package trailcli

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TRAIL_STREAMS_PER_KEY caps the streams of one key: the second live tail
// of the admin key is refused with 429 while the first one is open.
func TestServeStreamsPerKey(t *testing.T) {
	t.Setenv("TRAIL_STREAMS_PER_KEY", "1")
	base, key, _ := startServe(t, tempDB(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/tail", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && sc.Text() != ": streaming" {
	}
	if resp.StatusCode != http.StatusOK || sc.Err() != nil {
		t.Fatalf("first tail: %d %v", resp.StatusCode, sc.Err())
	}
	req2, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/tail", nil)
	req2.Header.Set("Authorization", "Bearer "+key)
	resp2, err := http.DefaultClient.Do(req2)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	if resp2.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second tail: %d, want 429", resp2.StatusCode)
	}
	if body, _ := io.ReadAll(resp2.Body); !strings.Contains(string(body), "1 streams") {
		t.Fatalf("second tail: %s", body)
	}
	if _, body := get(t, base+"/metrics", ""); !strings.Contains(string(body), "\ntrail_streams_refused_total{kind=\"tail\"} 1\n") {
		t.Fatalf("/metrics:\n%s", body)
	}
}

func TestServeStreamFlags(t *testing.T) {
	for _, args := range [][]string{{"--stream-write-timeout", "0s"}, {"--streams-per-key", "-1"}} {
		r := run(t, tempDB(t), env{}, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, args[0]) {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
}

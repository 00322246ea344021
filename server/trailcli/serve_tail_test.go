package trailcli

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// An event `trail record` writes into the file `trail serve` serves reaches
// an open GET /v1/tail once; with --tail-poll 0 it does not.
func TestServeTailSeesRecord(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want bool
	}{
		{"polling", []string{"--tail-poll", "20ms"}, true},
		{"off", []string{"--tail-poll", "0"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := tempDB(t)
			base, key, _ := startServe(t, db, c.args...)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/tail?action=user.*", nil)
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			lines := make(chan string, 100)
			go func() {
				defer close(lines)
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() {
					lines <- sc.Text()
				}
			}()
			for l := range lines {
				if l == ": streaming" {
					break
				}
			}
			id := strings.TrimSpace(mustRun(t, db, env{}, "record", "--tenant", "acme", "--actor", "user:42",
				"--action", "user.delete", "--target", "user:17", "--description", "Deleted from another process").stdout)
			n := 0
			timeout := time.After(2 * time.Second) // a hundred polls
			for done := false; !done; {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatal("the stream ended")
					}
					if strings.HasPrefix(l, "id: ") && strings.TrimPrefix(l, "id: ") == id {
						n++
					}
				case <-timeout:
					done = true
				}
			}
			if want := map[bool]int{true: 1, false: 0}[c.want]; n != want {
				t.Fatalf("the recorded event arrived %d times, want %d", n, want)
			}
		})
	}
}

func TestServeTailFlags(t *testing.T) {
	for _, args := range [][]string{{"--tail-poll", "-1s"}, {"--tail-lookback", "0s"}} {
		r := run(t, tempDB(t), env{}, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, args[0]) {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
}

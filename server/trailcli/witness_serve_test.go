package trailcli

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailseal/sealtest"
)

var witnessListenRE = regexp.MustCompile(`witness listening on (http://127\.0\.0\.1:\d+)`)

// trail witness serve receives what trail seal --witness http://… sends
// (with the token), and trail verify reads it back over HTTP and from its
// directory; a wrong token is refused, and seal says so.
func TestWitnessServe(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	term, w := false, 0
	e := &Env{Ctx: ctx, Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Loc: time.UTC, StdinIsTerminal: &term, Width: &w}
	done := make(chan int, 1)
	go func() {
		done <- e.Main([]string{"witness", "serve", "--dir", dir, "--addr", "127.0.0.1:0", "--token", "tok"})
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("witness serve exit %d: %s", code, errb.String())
		}
	}()
	var base string
	for base == "" {
		if m := witnessListenRE.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("witness serve exited %d: %s", code, errb.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	db := tempDB(t)
	st, err := trailsqlite.Open(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(context.Background(), sealtest.Events(t, "acme", 0, 4)); err != nil {
		t.Fatal(err)
	}
	st.Close()
	t.Setenv(WitnessTokenEnv, "wrong")
	if r := run(t, db, env{}, "seal", "--witness", base); r.code == 0 || !strings.Contains(r.stderr, "401") {
		t.Fatalf("seal with a wrong token: %d %q", r.code, r.stderr)
	}
	t.Setenv(WitnessTokenEnv, "tok")
	mustRun(t, db, env{}, "seal", "--witness", base) // the next run re-sends the newest head; a new checkpoint needs new events
	st, _ = trailsqlite.Open(context.Background(), db, nil)
	st.Append(context.Background(), sealtest.Events(t, "acme", 4, 2))
	st.Close()
	mustRun(t, db, env{}, "seal", "--witness", base)
	for _, wit := range []string{base, "dir:" + dir} {
		r := mustRun(t, db, env{}, "verify", "--witness", wit)
		if !strings.Contains(r.stdout, "OK:") || !strings.Contains(r.stdout, "1 witnessed checkpoints") {
			t.Fatalf("verify --witness %s: %q", wit, r.stdout)
		}
	}
}

package trailcli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/trailhq/trail/server/trailwitness"
	"github.com/trailhq/trail/trailseal"
)

// WitnessCmd is `trail witness`.
type WitnessCmd struct {
	Serve WitnessServeCmd `cmd:"" help:"Run an HTTP witness receiver: it keeps the checkpoints and heads sealers POST in a directory, never replacing one (run it where the database's administrator has no access)."`
}

// WitnessServeCmd is `trail witness serve`: trailwitness.Handler over a
// directory, the receiver side of `--witness https://…`.
type WitnessServeCmd struct {
	Dir   string `name:"dir" required:"" placeholder:"DIR" help:"Where the objects are kept (created 0700)."`
	Addr  string `name:"addr" default:"127.0.0.1:8091" help:"Listen address (put TLS in front of it, or keep it on a private network)."`
	Token string `name:"token" env:"TRAIL_WITNESS_TOKEN" placeholder:"TOKEN" help:"Bearer token every request must carry (env TRAIL_WITNESS_TOKEN)."`
}

// Run serves until interrupted.
func (c *WitnessServeCmd) Run(e *Env) error {
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	l, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return Usagef("--addr: %v", err)
	}
	srv := &http.Server{Handler: &trailwitness.Handler{Dir: trailseal.DirWitness{Dir: c.Dir}, Token: c.Token}, ReadHeaderTimeout: 10 * time.Second}
	if c.Token == "" {
		fmt.Fprintln(e.Stderr, "trail: warning: no --token: anyone who reaches this address can add objects (never replace or delete one)")
	}
	fmt.Fprintf(e.Stdout, "Trail witness listening on http://%s (objects in %s)\n", l.Addr(), c.Dir)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-e.Ctx.Done():
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

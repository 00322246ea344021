// Command trail records and finds audit events: who did what, to which
// object, in which tenant. See `trail --help`; the commands live in package
// github.com/trailhq/trail/server/trailcli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/trailhq/trail/server/trailcli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := trailcli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Command saas is the seed's story as a small service on PostgreSQL, audited
// by Trail: tenants, their users and their subscriptions.
//
//   - Deleting a user is captured by triggers (trail capture on the users
//     table): the code that deletes records nothing itself, and a DELETE
//     typed in psql is captured too, attributed to the database role.
//   - Changing a plan records "Changed subscription plan to X for tenant Y"
//     with the acting user, in the same transaction as the change: a change
//     refused because the tenant's users do not fit the plan's seats rolls
//     back, and leaves no event.
//   - The operator's admin command records the same change with a system
//     actor.
//   - "Who changed that subscription?" is one query to Trail.
//
// Trail is set up with one call, trailpgx.NewClient: it migrates Trail's
// schema and encrypts the personal fields of events (actor names, e-mails,
// IP addresses) under a master key, read from TRAIL_MASTER_KEY. Make the key
// once and keep it with the service's other secrets; every command needs
// the same key, and without one they fail and say how to make it:
//
//	export TRAIL_MASTER_KEY=$(openssl rand -base64 32)
//
// Usage (DSN from --postgres or TRAIL_POSTGRES):
//
//	go run ./examples/saas setup                       # tables, capture, demo rows
//	go run ./examples/saas serve --addr 127.0.0.1:8090
//	go run ./examples/saas admin change-plan --tenant acme --plan pro
//	go run ./examples/saas who-changed --tenant acme --subscription sub_acme
//
//	curl -X PUT -H 'X-User-Id: 1' -d '{"plan":"team"}' localhost:8090/tenants/acme/subscription
//	curl -X DELETE -H 'X-User-Id: 1' localhost:8090/tenants/acme/users/2
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "saas:", err)
		os.Exit(1)
	}
}

const usage = `usage: saas <command> [flags]
  setup                                      create the tables, turn on capture, add demo rows
  serve [--addr 127.0.0.1:8090]              serve the HTTP API
  admin change-plan --tenant T --plan P      change a plan as the operator (system actor)
  who-changed --tenant T --subscription ID   print who changed a subscription
common flags: --postgres DSN (or TRAIL_POSTGRES) --schema saas --trail-schema trail
environment: TRAIL_MASTER_KEY, the key Trail encrypts personal data under (make one: openssl rand -base64 32)`

// run is main without the process: tests call it.
func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	name := args[0]
	args = args[1:]
	if name == "admin" {
		if len(args) == 0 || args[0] != "change-plan" {
			return errors.New(usage)
		}
		name, args = "admin change-plan", args[1:]
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dsn := fs.String("postgres", envOr("TRAIL_POSTGRES", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"), "PostgreSQL DSN")
	schema := fs.String("schema", "saas", "the app's schema")
	trailSchema := fs.String("trail-schema", "trail", "Trail's schema")
	addr := fs.String("addr", "127.0.0.1:8090", "listen address (serve)")
	tenant := fs.String("tenant", "", "tenant ID")
	plan := fs.String("plan", "", "plan: "+strings.Join(Plans, ", "))
	sub := fs.String("subscription", "", "subscription ID")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%s: %w\n%s", name, err, usage)
	}
	pool, err := pgxpool.New(ctx, *dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	app, err := NewApp(ctx, pool, *schema, *trailSchema)
	if err != nil {
		return err
	}
	defer app.Close()
	switch name {
	case "setup":
		if err := app.Setup(ctx); err != nil {
			return err
		}
		if err := app.Seed(ctx); err != nil {
			return err
		}
		fmt.Fprintf(out, "Ready: tenants acme and globex, users 1-4, subscriptions sub_acme and sub_globex; users are captured by triggers.\n")
		return nil
	case "serve":
		srv := &http.Server{Addr: *addr, Handler: app.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			<-ctx.Done()
			srv.Shutdown(context.WithoutCancel(ctx))
		}()
		fmt.Fprintf(out, "Serving on http://%s\n", *addr)
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	case "admin change-plan":
		if *tenant == "" || *plan == "" {
			return errors.New("admin change-plan: --tenant and --plan are required")
		}
		res, err := app.AdminChangePlan(ctx, *tenant, *plan)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "Changed the plan of tenant %s to %s (event %s, actor %s).\n", *tenant, *plan, res.ID, AdminActor)
		return nil
	case "who-changed":
		if *tenant == "" || *sub == "" {
			return errors.New("who-changed: --tenant and --subscription are required")
		}
		evs, err := app.WhoChanged(ctx, *tenant, *sub)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			fmt.Fprintf(out, "Nobody has changed subscription %s of tenant %s.\n", *sub, *tenant)
		}
		for _, ev := range evs {
			fmt.Fprintf(out, "%s  %-22s  %s\n", ev.OccurredAt.Format(time.RFC3339), ev.Actor, ev.Description)
		}
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", name, usage)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailpgx"
)

// Plans a subscription may be on.
var Plans = []string{"free", "team", "pro", "enterprise"}

// Seats is how many users each plan allows; enterprise has no limit.
var Seats = map[string]int{"free": 2, "team": 10, "pro": 50}

// AdminActor is who the admin command acts as: not a person, the
// operator's tool.
var AdminActor = trail.Actor{Type: trail.ActorSystem, ID: "saas-admin", Name: "saas admin change-plan"}

// Errors the service answers 4xx for.
var (
	ErrNotFound = errors.New("not found")
	ErrBadPlan  = fmt.Errorf("unknown plan (one of %v)", Plans)
	ErrTooSmall = errors.New("the tenant has more users than the plan has seats")
)

// App is the SaaS service: its own tables in one schema, Trail's store in
// another, the same database and pool.
type App struct {
	pool        *pgxpool.Pool
	schema      string // the app's schema, quoted
	trailSchema string
	trail       *trail.Client[pgx.Tx]
	// audit is what ChangePlan records with: the client, or in tests a
	// trailtest.TxRecorder, which takes the same real transactions.
	audit trail.TxRecorder[pgx.Tx]
}

// NewApp connects the app to pool with its tables in appSchema and Trail in
// trailSchema, and brings Trail's schema up to date. Personal fields of
// events (actor names, e-mails, IP addresses) are encrypted under the master
// key in TRAIL_MASTER_KEY; without one NewApp fails and says how to make it.
// Call Setup once before serving, and Close when done.
func NewApp(ctx context.Context, pool *pgxpool.Pool, appSchema, trailSchema string) (*App, error) {
	// The one call that sets Trail up: migrations, the privacy layer (its
	// keys in Trail's schema), and a client that records in our
	// transactions and reads events back decrypted.
	client, err := trailpgx.NewClient(ctx, pool, &trailpgx.ClientConfig{
		Store:  trailpgx.Config{Schema: trailSchema},
		Source: "saas",
	})
	if err != nil {
		return nil, err
	}
	return &App{pool: pool, schema: pgx.Identifier{appSchema}.Sanitize(), trailSchema: trailSchema, trail: client, audit: client}, nil
}

// Trail is Trail's client, for reading the audit trail: its Query, Get and
// History return events with their personal fields decrypted.
func (a *App) Trail() *trail.Client[pgx.Tx] { return a.trail }

// Close releases what NewApp opened (not the pool).
func (a *App) Close() error { return a.trail.Close() }

func (a *App) table(name string) string { return a.schema + "." + name }

// Setup creates the app's tables and turns on trigger capture of users:
// every insert, update and delete of a user becomes an event, whatever code
// (or person in psql) makes it. Idempotent.
func (a *App) Setup(ctx context.Context) error {
	_, err := a.pool.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+a.schema+`;
	CREATE TABLE IF NOT EXISTS `+a.table("tenants")+` (id text PRIMARY KEY, name text NOT NULL);
	CREATE TABLE IF NOT EXISTS `+a.table("users")+` (
		id bigint PRIMARY KEY, tenant_id text NOT NULL REFERENCES `+a.table("tenants")+`,
		email text NOT NULL, name text NOT NULL, password_hash text NOT NULL DEFAULT '',
		updated_at timestamptz NOT NULL DEFAULT now());
	CREATE TABLE IF NOT EXISTS `+a.table("subscriptions")+` (
		id text PRIMARY KEY, tenant_id text NOT NULL REFERENCES `+a.table("tenants")+`,
		plan text NOT NULL, seats int NOT NULL DEFAULT 1, updated_at timestamptz NOT NULL DEFAULT now())`)
	if err != nil {
		return fmt.Errorf("saas: setup: %w", err)
	}
	_, err = trailpgx.EnableCapture(ctx, a.pool, a.table("users"), trailpgx.CaptureOptions{
		Schema: a.trailSchema, TenantColumn: "tenant_id", Ignore: []string{"updated_at"}, Redact: []string{"password_hash"},
	})
	if err != nil && !errors.Is(err, trailpgx.ErrCaptureEnabled) {
		return err
	}
	return nil
}

// Seed adds the story's tenants, users and subscriptions (no-op when they
// exist). It runs as the system: the inserts of users are captured with the
// actor system:saas-seed.
func (a *App) Seed(ctx context.Context) error {
	ctx = trail.WithActor(ctx, trail.Actor{Type: trail.ActorSystem, ID: "saas-seed"})
	return trailpgx.WithTx(ctx, a.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
		INSERT INTO `+a.table("tenants")+` VALUES ('acme', 'Acme Corp'), ('globex', 'Globex') ON CONFLICT DO NOTHING;
		INSERT INTO `+a.table("users")+` (id, tenant_id, email, name, password_hash) VALUES
			(1, 'acme', 'alice@acme.example', 'Alice', 'x1'), (2, 'acme', 'bob@acme.example', 'Bob', 'x2'),
			(3, 'globex', 'grace@globex.example', 'Grace', 'x3'), (4, 'globex', 'hank@globex.example', 'Hank', 'x4'),
			(5, 'globex', 'ivy@globex.example', 'Ivy', 'x5')
			ON CONFLICT DO NOTHING;
		INSERT INTO `+a.table("subscriptions")+` (id, tenant_id, plan) VALUES ('sub_acme', 'acme', 'free'), ('sub_globex', 'globex', 'team')
			ON CONFLICT DO NOTHING`)
		return err
	})
}

// DeleteUser deletes a user of tenant as the actor in ctx. Nothing here
// records an event: the capture trigger on users does, with the actor,
// tenant and request that trailpgx.WithTx put in the transaction.
func (a *App) DeleteUser(ctx context.Context, tenant string, userID int64) error {
	ctx = trail.WithTenant(ctx, tenant)
	return trailpgx.WithTx(ctx, a.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM `+a.table("users")+` WHERE id = $1 AND tenant_id = $2`, userID, tenant)
		if err == nil && tag.RowsAffected() == 0 {
			err = fmt.Errorf("user %d of tenant %s: %w", userID, tenant, ErrNotFound)
		}
		return err
	})
}

// ChangePlan moves the tenant's subscription to plan as the actor in ctx,
// and records "Changed subscription plan to X for tenant Y" in the same
// transaction: the event exists if and only if the change commits. A plan
// with fewer seats than the tenant has users is refused (ErrTooSmall) by a
// check that runs last, after the event is recorded, on the state the
// transaction would commit: the rollback takes the event with the change.
func (a *App) ChangePlan(ctx context.Context, tenant, plan string) (trail.Result, error) {
	if !slices.Contains(Plans, plan) {
		return trail.Result{}, fmt.Errorf("plan %q: %w", plan, ErrBadPlan)
	}
	ctx = trail.WithTenant(ctx, tenant)
	var res trail.Result
	err := trailpgx.WithTx(ctx, a.pool, func(tx pgx.Tx) error {
		var subID, old, tenantName string
		err := tx.QueryRow(ctx, `SELECT s.id, s.plan, t.name FROM `+a.table("subscriptions")+` s
			JOIN `+a.table("tenants")+` t ON t.id = s.tenant_id WHERE s.tenant_id = $1 FOR UPDATE OF s`, tenant).Scan(&subID, &old, &tenantName)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("subscription of tenant %s: %w", tenant, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE `+a.table("subscriptions")+` SET plan = $1, updated_at = now() WHERE id = $2`, plan, subID); err != nil {
			return err
		}
		res, err = a.audit.RecordTx(ctx, tx, trail.Event{
			Action:      "subscription.update",
			Target:      trail.Target{Type: "subscription", ID: subID, Name: tenantName},
			Description: fmt.Sprintf("Changed subscription plan to %s for tenant %s", plan, tenantName),
			Changes:     []trail.Change{trail.Changed("plan", old, plan)},
		})
		if err != nil {
			return err
		}
		limit, limited := Seats[plan]
		if !limited {
			return nil
		}
		var users int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+a.table("users")+` WHERE tenant_id = $1`, tenant).Scan(&users); err != nil {
			return err
		}
		if users > limit {
			return fmt.Errorf("plan %s has %d seats, tenant %s has %d users: %w", plan, limit, tenant, users, ErrTooSmall)
		}
		return nil
	})
	if err != nil {
		return trail.Result{}, err
	}
	return res, nil
}

// AdminChangePlan is ChangePlan run by the operator's command line: the
// actor is AdminActor, a system actor, not a person.
func (a *App) AdminChangePlan(ctx context.Context, tenant, plan string) (trail.Result, error) {
	return a.ChangePlan(trail.WithActor(ctx, AdminActor), tenant, plan)
}

// WhoChanged answers "who changed that subscription?": its history, newest
// first, through Trail's query API, decrypted.
func (a *App) WhoChanged(ctx context.Context, tenant, subscriptionID string) ([]trail.Event, error) {
	p, err := a.trail.History(ctx, tenant, "subscription", subscriptionID, trail.Query{Limit: trail.MaxLimit})
	if err != nil {
		return nil, err
	}
	return p.Events, nil
}

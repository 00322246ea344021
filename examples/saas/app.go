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

// AdminActor is who the admin command acts as: not a person, the
// operator's tool.
var AdminActor = trail.Actor{Type: trail.ActorSystem, ID: "saas-admin", Name: "saas admin change-plan"}

// Errors the service answers 4xx for.
var (
	ErrNotFound = errors.New("not found")
	ErrBadPlan  = fmt.Errorf("unknown plan (one of %v)", Plans)
)

// App is the SaaS service: its own tables in one schema, Trail's store in
// another, the same database and pool.
type App struct {
	pool   *pgxpool.Pool
	schema string // the app's schema, quoted
	store  *trailpgx.Store
	audit  *trail.Client[pgx.Tx]
}

// NewApp connects the app to pool with its tables in appSchema and Trail in
// trailSchema. Call Setup once before serving.
func NewApp(ctx context.Context, pool *pgxpool.Pool, appSchema, trailSchema string) (*App, error) {
	store, err := trailpgx.New(ctx, pool, &trailpgx.Config{Schema: trailSchema})
	if err != nil {
		return nil, err
	}
	// A client bound to this store (trailpgx.RecordTx uses the first store
	// created; a process with one store could use it instead).
	audit, err := trail.NewClient[pgx.Tx](store, &trail.Config{Source: "saas"})
	if err != nil {
		return nil, err
	}
	return &App{pool: pool, schema: pgx.Identifier{appSchema}.Sanitize(), store: store, audit: audit}, nil
}

// Store is Trail's store, for reading the audit trail.
func (a *App) Store() *trailpgx.Store { return a.store }

func (a *App) table(name string) string { return a.schema + "." + name }

// Setup migrates Trail, creates the app's tables and turns on trigger
// capture of users: every insert, update and delete of a user becomes an
// event, whatever code (or person in psql) makes it. Idempotent.
func (a *App) Setup(ctx context.Context) error {
	if err := a.store.Migrate(ctx); err != nil {
		return err
	}
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
	_, err = a.store.EnableCapture(ctx, a.table("users"), trailpgx.CaptureOptions{
		TenantColumn: "tenant_id", Ignore: []string{"updated_at"}, Redact: []string{"password_hash"},
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
			(3, 'globex', 'grace@globex.example', 'Grace', 'x3'), (4, 'globex', 'hank@globex.example', 'Hank', 'x4')
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
// transaction: the event exists if and only if the change commits.
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
		return err
	})
	return res, err
}

// AdminChangePlan is ChangePlan run by the operator's command line: the
// actor is AdminActor, a system actor, not a person.
func (a *App) AdminChangePlan(ctx context.Context, tenant, plan string) (trail.Result, error) {
	return a.ChangePlan(trail.WithActor(ctx, AdminActor), tenant, plan)
}

// WhoChanged answers "who changed that subscription?": its history, newest
// first, through Trail's query API.
func (a *App) WhoChanged(ctx context.Context, tenant, subscriptionID string) ([]trail.Event, error) {
	p, err := a.store.Query(ctx, trail.Query{Tenant: tenant, TargetType: "subscription", TargetID: subscriptionID, Limit: trail.MaxLimit})
	if err != nil {
		return nil, err
	}
	return p.Events, nil
}

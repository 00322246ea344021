package trailriver_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/contrib/trailriver"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/trailpgx"
	"github.com/trailhq/trail/trailprivacy"
)

type CancelArgs struct {
	SubscriptionID string        `json:"subscription_id"`
	Trail          trail.Carried `json:"trail"`
}

func (CancelArgs) Kind() string { return "cancel_subscription" }

// CancelWorker cancels a subscription and records it, in one transaction,
// as the user who asked for it.
type CancelWorker struct {
	river.WorkerDefaults[CancelArgs]
	pool   *pgxpool.Pool
	client *trail.Client[pgx.Tx]
}

func (w *CancelWorker) Work(ctx context.Context, job *river.Job[CancelArgs]) error {
	return pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		_, err := w.client.RecordTx(ctx, tx, trail.Event{
			Action: "subscription.cancel",
			Target: trail.Target{Type: "subscription", ID: job.Args.SubscriptionID},
		})
		return err
	})
}

func TestJobRecordsAsTheRequest(t *testing.T) {
	ctx := context.Background()
	base := testenv.PostgresPool(t, 8)
	var b [6]byte
	rand.Read(b[:])
	schema := "t_river_" + hex.EncodeToString(b[:])
	if _, err := base.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := base.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE; DROP SCHEMA IF EXISTS "+schema+"_trail CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	pool := base // River's tables go in schema (Config.Schema), Trail's in schema_trail
	client, err := trailpgx.NewClient(ctx, pool, &trailpgx.ClientConfig{
		Store:   trailpgx.Config{Schema: schema + "_trail"},
		Privacy: trailprivacy.Setup{Plaintext: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	driver := riverpgxv5.New(pool)
	migrator, err := rivermigrate.New(driver, &rivermigrate.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		t.Fatal(err)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &CancelWorker{pool: pool, client: client})
	rc, err := river.NewClient(driver, &river.Config{
		Schema:     schema,
		Queues:     map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
		Workers:    workers,
		Middleware: []rivertype.Middleware{trailriver.Middleware()},
	})
	if err != nil {
		t.Fatal(err)
	}
	done, cancel := rc.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed)
	defer cancel()
	if err := rc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Stop(context.Background()) })

	// The request: a signed-in user of acme, with personal data in context.
	req := trail.WithTenant(ctx, "acme")
	req = trail.WithActor(req, trail.Actor{Type: trail.ActorUser, ID: "u_nina", Name: "Nina Silva", Email: "nina@acme.test"})
	req = trail.WithRequest(req, trail.Request{ID: "req-7", IP: "203.0.113.9", UserAgent: "Firefox"})
	tx, err := pool.Begin(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.InsertTx(req, tx, CancelArgs{SubscriptionID: "sub_1", Trail: trail.Carry(req)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(req); err != nil {
		t.Fatal(err)
	}

	ev := <-done
	if ev.Kind != river.EventKindJobCompleted {
		t.Fatalf("job ended %s: %v", ev.Kind, ev.Job.Errors)
	}
	// Nothing personal in River's row.
	var args string
	if err := pool.QueryRow(ctx, "SELECT args::text FROM "+schema+".river_job WHERE id = $1", ev.Job.ID).Scan(&args); err != nil {
		t.Fatal(err)
	}
	for _, personal := range []string{"Nina", "nina@", "203.0.113.9", "Firefox"} {
		if strings.Contains(args, personal) {
			t.Errorf("the job's row holds %q: %s", personal, args)
		}
	}
	// The job's event names the request's tenant, actor and request.
	page, err := client.Query(ctx, trail.Query{Tenant: "acme", Action: "subscription.cancel"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 {
		t.Fatalf("events: %d, want 1", len(page.Events))
	}
	got := page.Events[0]
	if got.Actor.Type != trail.ActorUser || got.Actor.ID != "u_nina" || got.RequestID != "req-7" || got.Target.ID != "sub_1" {
		t.Errorf("the job's event %+v: want actor user u_nina, request req-7, target sub_1", got)
	}
}

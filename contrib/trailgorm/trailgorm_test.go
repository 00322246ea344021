package trailgorm_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/contrib/trailgorm"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailpgx"
	"github.com/trailhq/trail/trailprivacy"
	"github.com/trailhq/trail/trailsql"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Subscription is audited: it implements Audited and Tenanted.
type Subscription struct {
	ID       uint `gorm:"primaryKey"`
	TenantID string
	Plan     string
	Seats    int
	APIToken string `trail:"redact"`
	gorm.Model
}

func (Subscription) TrailType() string      { return "subscription" }
func (s *Subscription) TrailTenant() string { return s.TenantID }

// Note is not audited.
type Note struct {
	ID   uint `gorm:"primaryKey"`
	Text string
}

// Invoice is audited by being listed in Config.Models.
type Invoice struct {
	ID     uint `gorm:"primaryKey"`
	Amount int
}

type env struct {
	db     *gorm.DB
	client interface {
		Query(ctx context.Context, q trail.Query) (trail.Page, error)
	}
	count func(t *testing.T, table string) int
}

func setupPostgres(t *testing.T) env {
	var b [6]byte
	rand.Read(b[:])
	schema := "t_gorm_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	admin, err := sql.Open("pgx", testenv.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if err := admin.PingContext(ctx); err != nil {
		testenv.Unavailable(t, "PostgreSQL", err)
	}
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE; DROP SCHEMA IF EXISTS "+schema+"_trail CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	// The service's tables live in their own schema (search_path on every
	// connection); Trail's in another.
	cfg, err := pgx.ParseConfig(testenv.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = schema
	sqlDB := stdlib.OpenDB(*cfg)
	// One connection: RecordTx must not need a second one while GORM's
	// transaction holds it (it once did, to learn the partitions).
	sqlDB.SetMaxOpenConns(1)
	client, err := trailsql.NewClient(ctx, sqlDB, &trailpgx.ClientConfig{
		Store:   trailpgx.Config{Schema: schema + "_trail"},
		Privacy: trailprivacy.Setup{Plaintext: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	db, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	return finish(t, db, client)
}

func setupSQLite(t *testing.T) env {
	ctx := context.Background()
	client, err := trailsqlite.NewClient(ctx, filepath.Join(t.TempDir(), "app.db"), &trailsqlite.ClientConfig{
		Privacy: trailprivacy.Setup{Plaintext: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	// GORM runs its SQL on the store's own handle, so that the service's
	// writes and Trail's share one transaction (and SQLite's one writer).
	db, err := gorm.Open(sqlite.New(sqlite.Config{Conn: client.DB()}), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	return finish(t, db, client)
}

type recorder interface {
	trailgorm.Recorder
	Query(ctx context.Context, q trail.Query) (trail.Page, error)
}

func finish(t *testing.T, db *gorm.DB, client recorder) env {
	if err := db.Use(trailgorm.New(client, &trailgorm.Config{Models: []any{&Invoice{}}})); err != nil {
		t.Fatal(err)
	}
	if err := db.AutoMigrate(&Subscription{}, &Note{}, &Invoice{}); err != nil {
		t.Fatal(err)
	}
	return env{db: db, client: client, count: func(t *testing.T, table string) int {
		var n int64
		if err := db.Table(table).Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		return int(n)
	}}
}

func TestPlugin(t *testing.T) {
	for name, setup := range map[string]func(*testing.T) env{"postgres": setupPostgres, "sqlite": setupSQLite} {
		t.Run(name, func(t *testing.T) { suite(t, setup) })
	}
}

func ctxFor(tenant string) context.Context {
	ctx := trail.WithTenant(context.Background(), tenant)
	return trail.WithActor(ctx, trail.Actor{Type: trail.ActorUser, ID: "u_nina", Name: "Nina Silva"})
}

func events(t *testing.T, e env, tenant, action string) []trail.Event {
	t.Helper()
	p, err := e.client.Query(context.Background(), trail.Query{Tenant: tenant, Action: action, Limit: trail.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	return p.Events
}

func change(t *testing.T, ev trail.Event, field string) (old, new string, ok bool) {
	t.Helper()
	for _, c := range ev.Changes {
		if c.Field == field {
			return string(c.Old), string(c.New), true
		}
	}
	return "", "", false
}

func suite(t *testing.T, setup func(*testing.T) env) {
	e := setup(t)
	ctx := ctxFor("acme")
	db := e.db.WithContext(ctx)

	// One create, then a batch of three.
	sub := Subscription{TenantID: "acme", Plan: "free", Seats: 3, APIToken: "sk_live_1"}
	if err := db.Create(&sub).Error; err != nil {
		t.Fatal(err)
	}
	batch := []Subscription{{TenantID: "acme", Plan: "free", Seats: 1}, {TenantID: "acme", Plan: "free", Seats: 2}, {TenantID: "acme", Plan: "team", Seats: 9}}
	if err := db.Create(&batch).Error; err != nil {
		t.Fatal(err)
	}
	created := events(t, e, "acme", "subscription.create")
	if len(created) != 4 {
		t.Fatalf("creates recorded %d events, want 4", len(created))
	}
	for _, ev := range created {
		if ev.Actor.ID != "u_nina" || ev.Target.Type != "subscription" || ev.Target.ID == "" || ev.Source != "gorm" {
			t.Errorf("create event %+v: want actor u_nina, target subscription/<id>, source gorm", ev)
		}
	}
	var first trail.Event
	for _, ev := range created {
		if ev.Target.ID == itoa(sub.ID) {
			first = ev
		}
	}
	if _, nw, ok := change(t, first, "Plan"); !ok || nw != `"free"` {
		t.Errorf("create of %d: Plan change %q (found %v), want new \"free\"; changes %+v", sub.ID, nw, ok, first.Changes)
	}
	for _, c := range first.Changes {
		if c.Field == "APIToken" && (!c.Redacted || c.New != nil) {
			t.Errorf("APIToken is tagged trail:\"redact\" but was recorded as %+v", c)
		}
	}

	// Save of one row: only the changed field, not UpdatedAt.
	sub.Seats = 5
	if err := db.Save(&sub).Error; err != nil {
		t.Fatal(err)
	}
	updates := events(t, e, "acme", "subscription.update")
	if len(updates) != 1 {
		t.Fatalf("save recorded %d update events, want 1", len(updates))
	}
	if len(updates[0].Changes) != 1 || updates[0].Changes[0].Field != "Seats" || string(updates[0].Changes[0].Old) != "3" || string(updates[0].Changes[0].New) != "5" {
		t.Errorf("save: changes %+v, want only Seats 3 -> 5", updates[0].Changes)
	}

	// A batch update by condition: one event per row it changed.
	res := db.Model(&Subscription{}).Where("plan = ?", "free").Update("plan", "pro")
	if res.Error != nil || res.RowsAffected != 3 {
		t.Fatalf("batch update: %v, %d rows", res.Error, res.RowsAffected)
	}
	updates = events(t, e, "acme", "subscription.update")
	if len(updates) != 4 {
		t.Fatalf("after the batch update: %d update events, want 4", len(updates))
	}
	pro := 0
	for _, ev := range updates {
		if old, nw, ok := change(t, ev, "Plan"); ok && old == `"free"` && nw == `"pro"` {
			pro++
		}
	}
	if pro != 3 {
		t.Errorf("batch update: %d events with Plan free -> pro, want 3", pro)
	}

	// An update that changes nothing records nothing.
	if err := db.Model(&Subscription{}).Where("plan = ?", "pro").Update("plan", "pro").Error; err != nil {
		t.Fatal(err)
	}
	if n := len(events(t, e, "acme", "subscription.update")); n != 4 {
		t.Errorf("a no-op update added events: %d, want 4", n)
	}

	// A rolled-back transaction leaves neither the row nor its event.
	boom := errors.New("boom")
	err := db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&Subscription{TenantID: "acme", Plan: "rolled-back"}).Error; err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("transaction: %v", err)
	}
	if n := len(events(t, e, "acme", "subscription.create")); n != 4 {
		t.Errorf("a rolled-back create left an event: %d creates, want 4", n)
	}

	// A batch delete: one event per deleted row, with its last values.
	res = db.Where("seats < ?", 3).Delete(&Subscription{})
	if res.Error != nil || res.RowsAffected != 2 {
		t.Fatalf("batch delete: %v, %d rows", res.Error, res.RowsAffected)
	}
	deletes := events(t, e, "acme", "subscription.delete")
	if len(deletes) != 2 {
		t.Fatalf("batch delete recorded %d events, want 2", len(deletes))
	}
	for _, ev := range deletes {
		if old, _, ok := change(t, ev, "Seats"); !ok || (old != "1" && old != "2") {
			t.Errorf("delete event %+v: want Seats old 1 or 2", ev.Changes)
		}
	}

	// No tenant in the context: the write fails and is rolled back.
	noTenant := e.db.WithContext(trail.WithActor(context.Background(), trail.Actor{Type: trail.ActorUser, ID: "u_nina"}))
	before := e.count(t, "invoices")
	if err := noTenant.Create(&Invoice{Amount: 10}).Error; !errors.Is(err, trail.ErrNoTenant) {
		t.Errorf("create without a tenant: %v, want trail.ErrNoTenant", err)
	}
	if n := e.count(t, "invoices"); n != before {
		t.Errorf("the refused create left %d rows, want %d", n, before)
	}

	// A row of another tenant than the context's is refused.
	if err := db.Create(&Subscription{TenantID: "globex", Plan: "free"}).Error; !errors.Is(err, trail.ErrTenantMismatch) {
		t.Errorf("create of a globex row in an acme request: %v, want trail.ErrTenantMismatch", err)
	}

	// Listed in Config.Models: audited with a snake_case type.
	if err := db.Create(&Invoice{Amount: 42}).Error; err != nil {
		t.Fatal(err)
	}
	if n := len(events(t, e, "acme", "invoice.create")); n != 1 {
		t.Errorf("invoice.create events: %d, want 1", n)
	}

	// Not audited: no event.
	if err := db.Create(&Note{Text: "hi"}).Error; err != nil {
		t.Fatal(err)
	}
	if n := len(events(t, e, "acme", "note.*")); n != 0 {
		t.Errorf("an unaudited model recorded %d events", n)
	}

	// Without GORM's transaction the write is refused before it is made.
	skip := e.db.Session(&gorm.Session{SkipDefaultTransaction: true, Context: ctx})
	before = e.count(t, "subscriptions")
	if err := skip.Create(&Subscription{TenantID: "acme", Plan: "x"}).Error; !errors.Is(err, trailgorm.ErrNoTransaction) {
		t.Errorf("create with SkipDefaultTransaction: %v, want ErrNoTransaction", err)
	}
	if n := e.count(t, "subscriptions"); n != before {
		t.Errorf("the refused create left a row: %d, want %d", n, before)
	}
	// Inside db.Transaction it works again.
	if err := skip.Transaction(func(tx *gorm.DB) error {
		return tx.Create(&Subscription{TenantID: "acme", Plan: "in-tx"}).Error
	}); err != nil {
		t.Errorf("create in db.Transaction with SkipDefaultTransaction: %v", err)
	}
	_ = json.Valid
}

func itoa(n uint) string {
	b, _ := json.Marshal(n)
	return string(b)
}

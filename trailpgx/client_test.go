package trailpgx_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/trailpgx"
	"github.com/trailhq/trail/trailprivacy"
)

// newMasterKey sets TRAIL_MASTER_KEY to a fresh key for the test.
func newMasterKey(t *testing.T) {
	t.Helper()
	var k [32]byte
	rand.Read(k[:])
	t.Setenv("TRAIL_MASTER_KEY", base64.StdEncoding.EncodeToString(k[:]))
}

// The secrets and personal data a new service's event carries in
// TestNewClientStoresNoPlaintext.
var (
	secretValues   = []string{"hunter2-password", "tok_live_4242", "meta-password-value", "meta-token-value"}
	personalValues = []string{"Alice Chen", "alice@example.com", "203.0.113.9", "AliceBrowser/1.0", "Acme Subscription"}
)

func personalEvent() (context.Context, trail.Event) {
	ctx := trail.WithTenant(context.Background(), "acme")
	ctx = trail.WithActor(ctx, trail.Actor{Type: trail.ActorUser, ID: "42", Name: "Alice Chen", Email: "alice@example.com"})
	ctx = trail.WithRequest(ctx, trail.Request{ID: "req-1", IP: "203.0.113.9", UserAgent: "AliceBrowser/1.0"})
	return ctx, trail.Event{
		Action: "user.update",
		Target: trail.Target{Type: "subscription", ID: "sub_1", Name: "Acme Subscription"},
		Changes: []trail.Change{
			trail.Changed("password_hash", "old", "hunter2-password"),
			trail.Changed("api_token", nil, "tok_live_4242"),
			trail.Changed("plan", "free", "pro"),
		},
		Metadata: map[string]any{"password": "meta-password-value", "token": "meta-token-value", "ticket": "OPS-311"},
	}
}

// schemaText returns every row of every table in schema as text: what a
// dump of the schema's data holds.
func schemaText(t *testing.T, p *pgxpool.Pool, schema string) string {
	t.Helper()
	ctx := context.Background()
	rows, err := p.Query(ctx, `SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables
		WHERE table_schema = $1 AND table_type = 'BASE TABLE'`, schema)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) < 3 {
		t.Fatalf("schema %s has only %v", schema, tables)
	}
	var b strings.Builder
	for _, tbl := range tables {
		rows, err := p.Query(ctx, `SELECT t::text FROM `+tbl+` t`)
		if err != nil {
			t.Fatal(err)
		}
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(strings.Join(texts, "\n"))
	}
	return b.String()
}

// TestNewClientStoresNoPlaintext is the README's path for a new service on
// PostgreSQL with no privacy configuration beyond TRAIL_MASTER_KEY: one
// call, RecordTx in its own transaction. No secret and no personal value
// reaches the database in plaintext, and the client reads them back.
func TestNewClientStoresNoPlaintext(t *testing.T) {
	newMasterKey(t)
	p := testPool(t)
	schema := testenv.FreshSchema(t, p)
	ctx := context.Background()
	client, err := trailpgx.NewClient(ctx, p, &trailpgx.ClientConfig{Store: trailpgx.Config{Schema: schema}, Source: "billing"})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	rctx, ev := personalEvent()
	var res trail.Result
	err = trailpgx.WithTx(rctx, p, func(tx pgx.Tx) error {
		res, err = client.RecordTx(rctx, tx, ev)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	dump := schemaText(t, p, schema)
	if !strings.Contains(dump, res.ID.String()) {
		t.Fatalf("the dump does not hold the event %s", res.ID)
	}
	for _, v := range append(secretValues, personalValues...) {
		if strings.Contains(dump, v) {
			t.Errorf("%q is stored in plaintext in schema %s", v, schema)
		}
	}
	if !strings.Contains(dump, "OPS-311") {
		t.Error("an ordinary metadata value is missing from the dump")
	}

	// Reads through the client come back readable; secrets stay redacted.
	got, err := client.Get(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Actor.Email != "alice@example.com" || got.Actor.IP != "203.0.113.9" || got.Target.Name != "Acme Subscription" {
		t.Errorf("Get did not reveal: actor %+v, target %+v", got.Actor, got.Target)
	}
	if got.Metadata["password"] != trail.Redacted || !got.Changes[0].Redacted {
		t.Errorf("secrets not redacted: %v %+v", got.Metadata, got.Changes)
	}
	page, err := client.Query(ctx, trail.Query{Tenant: "acme"})
	if err != nil || len(page.Events) != 1 || page.Events[0].Actor.Name != "Alice Chen" {
		t.Fatalf("Query: %v %+v", err, page)
	}
	page, err = client.History(ctx, "acme", "subscription", "sub_1", trail.Query{})
	if err != nil || len(page.Events) != 1 || page.Events[0].Actor.UserAgent != "AliceBrowser/1.0" {
		t.Fatalf("History: %v %+v", err, page)
	}
	// The raw store returns the stored form.
	raw, err := client.Store().Get(ctx, res.ID)
	if err != nil || !strings.HasPrefix(raw.Actor.Email, "enc:v1:") {
		t.Fatalf("stored email %q (%v)", raw.Actor.Email, err)
	}
}

// TestNewClientNeedsMasterKey: without a key, NewClient fails saying how to
// set one or opt out, and writes nothing.
func TestNewClientNeedsMasterKey(t *testing.T) {
	t.Setenv("TRAIL_MASTER_KEY", "")
	p := testPool(t)
	schema := testenv.FreshSchema(t, p)
	_, err := trailpgx.NewClient(context.Background(), p, &trailpgx.ClientConfig{Store: trailpgx.Config{Schema: schema}})
	if !errors.Is(err, trailprivacy.ErrNoMasterKey) {
		t.Fatalf("err = %v, want ErrNoMasterKey", err)
	}
	for _, want := range []string{"TRAIL_MASTER_KEY", "Plaintext", "KMS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	var n int
	if err := p.QueryRow(context.Background(), `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, schema).Scan(&n); err != nil || n != 0 {
		t.Errorf("schema %s exists after a refused setup (%d, %v)", schema, n, err)
	}

	// A malformed key is an error too, never a fallback.
	t.Setenv("TRAIL_MASTER_KEY", "not-a-key")
	if _, err := trailpgx.NewClient(context.Background(), p, &trailpgx.ClientConfig{Store: trailpgx.Config{Schema: schema}}); err == nil || !strings.Contains(err.Error(), "TRAIL_MASTER_KEY") {
		t.Errorf("malformed key: err = %v", err)
	}
}

// TestNewClientPlaintext: the explicit opt-out stores personal fields as
// given, and still redacts secrets.
func TestNewClientPlaintext(t *testing.T) {
	t.Setenv("TRAIL_MASTER_KEY", "")
	p := testPool(t)
	schema := testenv.FreshSchema(t, p)
	ctx := context.Background()
	client, err := trailpgx.NewClient(ctx, p, &trailpgx.ClientConfig{Store: trailpgx.Config{Schema: schema}, Privacy: trailprivacy.Setup{Plaintext: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	rctx, ev := personalEvent()
	if err := trailpgx.WithTx(rctx, p, func(tx pgx.Tx) error { _, err := client.RecordTx(rctx, tx, ev); return err }); err != nil {
		t.Fatal(err)
	}
	dump := schemaText(t, p, schema)
	if !strings.Contains(dump, "alice@example.com") {
		t.Error("Plaintext did not store the e-mail as given")
	}
	for _, v := range secretValues {
		if strings.Contains(dump, v) {
			t.Errorf("secret %q stored by a Plaintext client", v)
		}
	}
}

// TestNewClientTenantGuards: no tenant, or a conflicting one, is an error
// and writes nothing.
func TestNewClientTenantGuards(t *testing.T) {
	newMasterKey(t)
	p := testPool(t)
	schema := testenv.FreshSchema(t, p)
	ctx := context.Background()
	client, err := trailpgx.NewClient(ctx, p, &trailpgx.ClientConfig{Store: trailpgx.Config{Schema: schema}})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	actor := trail.WithActor(ctx, trail.Actor{Type: trail.ActorUser, ID: "1"})
	if _, err := client.Record(actor, trail.Event{Action: "user.login"}); !errors.Is(err, trail.ErrNoTenant) {
		t.Errorf("no tenant: %v", err)
	}
	if _, err := client.Record(trail.WithTenant(actor, "acme"), trail.Event{Tenant: "globex", Action: "user.login"}); !errors.Is(err, trail.ErrTenantMismatch) {
		t.Errorf("conflicting tenant: %v", err)
	}
	if _, err := client.Query(ctx, trail.Query{}); !errors.Is(err, trail.ErrInvalidQuery) {
		t.Errorf("query without tenant: %v", err)
	}
	page, err := client.Query(ctx, trail.Query{AllTenants: true})
	if err != nil || len(page.Events) != 0 {
		t.Fatalf("refused events were stored: %v %d", err, len(page.Events))
	}
	if _, err := client.Record(trail.WithPlatform(actor), trail.Event{Action: "platform.maintenance"}); err != nil {
		t.Errorf("platform event: %v", err)
	}
}

// TestKeysInAnotherSchema: a reader whose key store is another schema than
// the one the data was written with gets an error naming the subject and
// the schema, not a tampering report.
func TestKeysInAnotherSchema(t *testing.T) {
	newMasterKey(t)
	p := testPool(t)
	schema := testenv.FreshSchema(t, p)
	other := testenv.FreshSchema(t, p)
	ctx := context.Background()
	client, err := trailpgx.NewClient(ctx, p, &trailpgx.ClientConfig{Store: trailpgx.Config{Schema: schema}})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	rctx, ev := personalEvent()
	res, err := client.Record(rctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	// The same events, read with keys looked up in another schema.
	store, err := trailpgx.New(ctx, p, &trailpgx.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	db := openSQL(t)
	ks, err := trailprivacy.NewSQLKeyStoreIn(db, other)
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Init(ctx); err != nil {
		t.Fatal(err)
	}
	kms, _, err := trailprivacy.OpenMasterKey(trailprivacy.MasterKeyConfig{Env: mustEnv(t)})
	if err != nil {
		t.Fatal(err)
	}
	priv, err := trailprivacy.New(ctx, trailprivacy.Config{KMS: kms, Keys: ks})
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := trail.NewClient[pgx.Tx](store, &trail.Config{Transform: priv})
	if err != nil {
		t.Fatal(err)
	}
	_, err = wrong.Get(ctx, res.ID)
	if !errors.Is(err, trailprivacy.ErrNoKey) || errors.Is(err, trailprivacy.ErrTampered) {
		t.Fatalf("err = %v, want ErrNoKey", err)
	}
	for _, want := range []string{"no key for subject user:42", `schema "` + other + `"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// openSQL opens a database/sql handle on the test server, for key stores.
func openSQL(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", testenv.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mustEnv(t *testing.T) string {
	t.Helper()
	v := os.Getenv("TRAIL_MASTER_KEY")
	if v == "" {
		t.Fatal("TRAIL_MASTER_KEY is not set")
	}
	return v
}

// TestStrayKeysRefused: keys an earlier NewSQLKeyStore left in the
// search_path's schema stop the key store from starting beside them, with
// the statement that moves them.
func TestStrayKeysRefused(t *testing.T) {
	newMasterKey(t)
	p := testPool(t)
	old := testenv.FreshSchema(t, p)
	target := testenv.FreshSchema(t, p)
	ctx := context.Background()
	db, err := sql.Open("pgx", testenv.PostgresDSN()+"&search_path="+old)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+old); err != nil {
		t.Fatal(err)
	}
	// Keys written where NewSQLKeyStore used to put them: the search_path.
	legacy, err := trailprivacy.NewSQLKeyStoreIn(db, old)
	if err != nil {
		t.Fatal(err)
	}
	if err := legacy.Init(ctx); err != nil {
		t.Fatal(err)
	}
	kms, _, err := trailprivacy.OpenMasterKey(trailprivacy.MasterKeyConfig{Env: mustEnv(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := trailprivacy.New(ctx, trailprivacy.Config{KMS: kms, Keys: legacy}); err != nil {
		t.Fatal(err)
	}
	ks, err := trailprivacy.NewSQLKeyStoreIn(db, target)
	if err != nil {
		t.Fatal(err)
	}
	err = ks.Init(ctx)
	want := "ALTER TABLE " + old + ".trail_subject_keys SET SCHEMA " + target
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Init = %v, want an error saying %q", err, want)
	}
	// After the move the store starts and finds the keys.
	if _, err := db.ExecContext(ctx, want); err != nil {
		t.Fatal(err)
	}
	if err := ks.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := trailprivacy.New(ctx, trailprivacy.Config{KMS: kms, Keys: ks}); err != nil {
		t.Fatal(err)
	}
}

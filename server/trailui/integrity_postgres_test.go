package trailui_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/trailpgx"
	"github.com/trailhq/trail/trailseal"
)

// On PostgreSQL too, the detail page verifies the event as stored: a sealed
// event is verified and its proof checks offline; its diff edited by a
// superuser (triggers off) is a mismatch of its leaf.
func TestDetailIntegrityPostgres(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.PostgresDSN())
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		testenv.Unavailable(t, "PostgreSQL", err)
		return
	}
	t.Cleanup(pool.Close)
	var b [6]byte
	rand.Read(b[:])
	schema := "t_ui_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	st, err := trailpgx.New(ctx, pool, &trailpgx.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() { db.Close() })
	ks, err := trailserver.NewPostgresKeyStore(ctx, db, schema)
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := trailserver.CreateKey(ctx, ks, trailserver.NewKeyRequest{Tenant: "acme", Role: trailserver.RoleReader, Name: "acme key"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var evs []trail.Event
	for i, plan := range []string{"pro", "team", "enterprise"} {
		ev := trail.Event{Tenant: "acme", Actor: trail.Actor{Type: trail.ActorUser, ID: "42"}, Action: "subscription.update",
			Target: trail.Target{Type: "subscription", ID: "sub_acme"}, Changes: []trail.Change{trail.Changed("plan", "free", plan)},
			Metadata: map[string]any{"n": i}, OccurredAt: time.Now().Add(time.Duration(i-3) * time.Minute)}
		if err := ev.Normalize(); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	if _, err := st.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	signer, vkey := newSigner(t)
	sl, err := trailseal.NewSealer(st, &trailseal.Config{Signer: signer, Origin: testOrigin})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sl.SealAll(ctx); err != nil {
		t.Fatal(err)
	}
	srv, err := trailserver.New(trailserver.Config{Store: st, Keys: ks, RateLimit: -1,
		Integrity: &trailserver.Integrity{Log: st, Origin: testOrigin, PublicKey: vkey}})
	if err != nil {
		t.Fatal(err)
	}
	s := &site{t: t, srv: srv, ts: httptest.NewServer(srv), secret: map[string]string{"acme": secret}}
	t.Cleanup(func() { srv.Close(); s.ts.Close() })

	c := s.client()
	c.login("acme")
	id := evs[1].ID
	section, state, check := c.integrity(id)
	wantState(t, section, "verified", "", state, check)
	code, proof, _ := c.download(section)
	if code != 200 {
		t.Fatalf("download: %d %s", code, proof)
	}
	verifyOffline(t, vkey, proof, true)

	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE `+pgx.Identifier{schema, "events"}.Sanitize()+
			` SET changes = jsonb_set(changes, '{0,new}', '"forged-plan"') WHERE id = $1`, id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	section, state, check = c.integrity(id)
	wantState(t, section, "mismatch", "leaf", state, check)
	mustContain(t, section, "does not hash to its leaf")
	if _, state, _ := c.integrity(evs[0].ID); state != "verified" {
		t.Fatalf("an untouched event of the log: %s", state)
	}
}

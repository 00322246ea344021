// Package keystoretest is the contract every trailprivacy.KeyStore passes:
// the in-memory store and the database/sql store on PostgreSQL here, and on
// SQLite from the server module (which can import the SQLite driver).
package keystoretest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/trailhq/trail/trailprivacy"
)

// Run checks that ks meets the KeyStore contract. ks must be empty; Run
// writes tenants "", "acme", "globex", "b-tenant" and "race".
func Run(t *testing.T, ks trailprivacy.KeyStore) {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 10, 0, 0, 123456000, time.UTC)
	key := func(tenant, subject, id string) trailprivacy.SubjectKey {
		return trailprivacy.SubjectKey{Tenant: tenant, Subject: subject, ID: id, KEKID: "local:A", Wrapped: []byte("wrapped-" + id), CreatedAt: now}
	}
	if _, err := ks.Current(ctx, "acme", "user:1"); !errors.Is(err, trailprivacy.ErrKeyNotFound) {
		t.Fatalf("Current on empty store = %v", err)
	}
	got, err := ks.Create(ctx, key("acme", "user:1", "k1"))
	if err != nil || got.ID != "k1" || string(got.Wrapped) != "wrapped-k1" || !got.CreatedAt.Equal(now) {
		t.Fatalf("Create = %+v, %v", got, err)
	}
	// A second Create for the same subject returns the existing live key.
	got, err = ks.Create(ctx, key("acme", "user:1", "k2"))
	if err != nil || got.ID != "k1" {
		t.Fatalf("second Create = %+v, %v; want the first key", got, err)
	}
	// Same subject in another tenant, and the platform tenant, are separate.
	for _, tenant := range []string{"globex", ""} {
		if got, err := ks.Create(ctx, key(tenant, "user:1", "k3"+tenant)); err != nil || got.ID != "k3"+tenant {
			t.Fatalf("Create in tenant %q = %+v, %v", tenant, got, err)
		}
	}
	if got, err := ks.Current(ctx, "acme", "user:1"); err != nil || got.ID != "k1" || got.Destroyed() {
		t.Fatalf("Current = %+v, %v", got, err)
	}
	if got, err := ks.Get(ctx, "acme", "user:1", "k1"); err != nil || got.ID != "k1" {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if _, err := ks.Get(ctx, "globex", "user:1", "k1"); !errors.Is(err, trailprivacy.ErrKeyNotFound) {
		t.Fatalf("Get of another tenant's key ID = %v", err)
	}

	// Destroy.
	if err := ks.Destroy(ctx, "acme", "user:nobody", now); !errors.Is(err, trailprivacy.ErrUnknownSubject) {
		t.Fatalf("Destroy unknown = %v", err)
	}
	later := now.Add(time.Hour)
	if err := ks.Destroy(ctx, "acme", "user:1", later); err != nil {
		t.Fatal(err)
	}
	if err := ks.Destroy(ctx, "acme", "user:1", later); !errors.Is(err, trailprivacy.ErrAlreadyForgotten) {
		t.Fatalf("second Destroy = %v", err)
	}
	if _, err := ks.Current(ctx, "acme", "user:1"); !errors.Is(err, trailprivacy.ErrKeyNotFound) {
		t.Fatalf("Current after Destroy = %v", err)
	}
	tomb, err := ks.Get(ctx, "acme", "user:1", "k1")
	if err != nil || !tomb.Destroyed() || tomb.Wrapped != nil || !tomb.DestroyedAt.Equal(later) {
		t.Fatalf("tombstone = %+v, %v", tomb, err)
	}
	if got, err := ks.Current(ctx, "globex", "user:1"); err != nil || got.Destroyed() {
		t.Fatalf("other tenant's key after Destroy = %+v, %v", got, err)
	}
	// A destroyed key's ID is never reused; a new key may be created.
	if _, err := ks.Create(ctx, key("acme", "user:1", "k1")); err == nil {
		t.Fatal("Create reused a destroyed key's ID")
	}
	if got, err := ks.Create(ctx, key("acme", "user:1", "k4")); err != nil || got.ID != "k4" {
		t.Fatalf("Create after Destroy = %+v, %v", got, err)
	}

	// Replace (rotation) only when still wrapped by the old KEK.
	k4 := key("acme", "user:1", "k4")
	k4.Wrapped, k4.KEKID = []byte("rewrapped"), "local:B"
	if ok, err := ks.Replace(ctx, k4, "local:Z"); err != nil || ok {
		t.Fatalf("Replace with a wrong old KEK = %v, %v", ok, err)
	}
	if ok, err := ks.Replace(ctx, k4, "local:A"); err != nil || !ok {
		t.Fatalf("Replace = %v, %v", ok, err)
	}
	if got, _ := ks.Current(ctx, "acme", "user:1"); got.KEKID != "local:B" || string(got.Wrapped) != "rewrapped" {
		t.Fatalf("after Replace = %+v", got)
	}
	tomb.Wrapped, tomb.KEKID = []byte("x"), "local:B"
	if ok, _ := ks.Replace(ctx, tomb, "local:A"); ok {
		t.Fatal("Replace revived a destroyed key")
	}

	// List pages through live keys in (tenant, subject) order.
	for i := range 5 {
		if _, err := ks.Create(ctx, key("b-tenant", fmt.Sprintf("user:%d", i), fmt.Sprintf("L%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	var all []string
	var at, as string
	for {
		page, err := ks.List(ctx, at, as, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if len(page) > 2 {
			t.Fatalf("page of %d > limit", len(page))
		}
		for _, k := range page {
			if k.Destroyed() {
				t.Fatalf("List returned a destroyed key %+v", k)
			}
			all = append(all, k.Tenant+"/"+k.Subject+"/"+k.ID)
		}
		at, as = page[len(page)-1].Tenant, page[len(page)-1].Subject
	}
	want := []string{"/user:1/k3", "acme/user:1/k4", "b-tenant/user:0/L0", "b-tenant/user:1/L1", "b-tenant/user:2/L2",
		"b-tenant/user:3/L3", "b-tenant/user:4/L4", "globex/user:1/k3globex"}
	if fmt.Sprint(all) != fmt.Sprint(want) {
		t.Fatalf("List =\n%v\nwant\n%v", all, want)
	}

	// Concurrent creators of one subject agree on one key.
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Go(func() {
			got, err := ks.Create(ctx, key("race", "user:1", fmt.Sprintf("r%d", i)))
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = got.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent Create gave different keys: %v", ids)
		}
	}
}

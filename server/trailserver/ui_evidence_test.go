package trailserver_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailseal"
)

// getCounter is a real store whose Gets are counted.
type getCounter struct {
	trail.Store
	gets atomic.Int64
}

func (g *getCounter) Get(ctx context.Context, id uuid.UUID) (trail.Event, error) {
	g.gets.Add(1)
	return g.Store.Get(ctx, id)
}

// TestUIDetailReadsEventOnce: the detail page reads the event from the
// store once: its integrity check uses the stored form the page's read
// already has, and still shows "verified" for a sealed, checkpointed event.
func TestUIDetailReadsEventOnce(t *testing.T) {
	ctx := context.Background()
	events, ks := openSQLite(t) // harness_test.go
	st := events.(*trailsqlite.Store)
	_, secret, err := trailserver.CreateKey(ctx, ks, trailserver.NewKeyRequest{All: true, Role: trailserver.RoleReader, Name: "reader"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ev := trail.Event{Tenant: "acme", Actor: trail.Actor{Type: trail.ActorUser, ID: "u1"}, Action: "user.update",
		Target: trail.Target{Type: "user", ID: "u1"}, Changes: []trail.Change{trail.Changed("plan", "free", "pro")}}
	if err := ev.Normalize(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, []trail.Event{ev}); err != nil {
		t.Fatal(err)
	}
	const origin = "trail.test"
	skey, vkey, err := trailseal.GenerateSigningKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := trailseal.ParseSigningKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := trailseal.NewSealer(st, &trailseal.Config{Signer: signer, Origin: origin})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sealer.SealAll(ctx); err != nil {
		t.Fatal(err)
	}
	counted := &getCounter{Store: st}
	srv, err := trailserver.New(trailserver.Config{Store: counted, Keys: ks, RateLimit: -1, Logger: slog.New(slog.DiscardHandler),
		Integrity: &trailserver.Integrity{Log: st, Origin: origin, PublicKey: vkey}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	b := newUIBrowser(t)
	if code := b.signIn(ts.URL, secret); code != http.StatusSeeOther {
		t.Fatalf("sign in: %d", code)
	}
	before := counted.gets.Load()
	code, body := b.get(ts.URL, "/ui/events/"+ev.ID.String())
	if code != http.StatusOK || !strings.Contains(body, `id="integrity-badge">verified<`) {
		t.Fatalf("detail: %d, no verified badge:\n%s", code, body)
	}
	if n := counted.gets.Load() - before; n != 1 {
		t.Fatalf("the detail page read the event %d times, want 1", n)
	}
}

package trailui_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailprivacy"
)

// TestUIReveals: behind the privacy layer, every UI page that shows events
// (list, detail, object history, actor, export) shows the personal fields
// revealed (names; the e-mail address where the page shows it), and "[erased]" once the subject is forgotten; the store holds
// ciphertext only.
func TestUIReveals(t *testing.T) {
	const name, email = "Alice Zebedee", "alice.ui@example.org"
	ctx := context.Background()
	st, err := trailsqlite.Open(ctx, filepath.Join(t.TempDir(), "trail.db"), &trailsqlite.Config{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ks, err := trailserver.NewSQLKeyStore(ctx, st.DB(), trailserver.DialectSQLite)
	if err != nil {
		t.Fatal(err)
	}
	kms, err := trailprivacy.NewLocalKMS(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	keys := trailprivacy.NewSQLKeyStore(st.DB())
	if err := keys.Init(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := trailprivacy.New(ctx, trailprivacy.Config{KMS: kms, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	ev := trail.Event{Tenant: "acme", Actor: trail.Actor{Type: trail.ActorUser, ID: "42", Name: name, Email: email},
		Action: "user.update", Target: trail.Target{Type: "user", ID: "42", Name: name},
		Description: "Changed the plan", Changes: []trail.Change{trail.Changed("plan", "free", "pro")}}
	if err := ev.Normalize(); err != nil {
		t.Fatal(err)
	}
	if err := p.Transform(ctx, &ev); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, []trail.Event{ev}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(ev.Actor.Email, email) {
		t.Fatal("the transform left the e-mail address readable")
	}
	_, secret, err := trailserver.CreateKey(ctx, ks, trailserver.NewKeyRequest{Tenant: "acme", Role: trailserver.RoleReader, Name: "reader"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := trailserver.New(trailserver.Config{Store: st, Keys: ks, RateLimit: -1, Transform: p, Reveal: p})
	if err != nil {
		t.Fatal(err)
	}
	s := &site{t: t, store: st, keys: ks, srv: srv, ts: httptest.NewServer(srv), secret: map[string]string{"reader": secret}}
	t.Cleanup(func() { srv.Close(); s.ts.Close() })
	c := s.client()
	c.login("reader")

	pages := []string{
		"/ui/?tenant=acme&action=user.update",
		"/ui/events/" + ev.ID.String(),
		"/ui/objects/user/42?tenant=acme",
		"/ui/actors/user:42?tenant=acme",
		"/ui/export?format=jsonl&tenant=acme&action=user.update",
	}
	for _, path := range pages {
		code, body, _ := c.get(path)
		// Lists show the actor's and target's names; detail and export
		// the e-mail address too.
		full := strings.Contains(path, "/events/") || strings.Contains(path, "/export")
		if code != 200 || !strings.Contains(body, name) || full && !strings.Contains(body, email) || strings.Contains(body, "enc:v1:") {
			t.Errorf("%s: %d, name shown %v, e-mail shown %v, ciphertext shown %v", path, code,
				strings.Contains(body, name), strings.Contains(body, email), strings.Contains(body, "enc:v1:"))
		}
	}
	if err := p.Forget(ctx, "acme", "user:42"); err != nil {
		t.Fatal(err)
	}
	for _, path := range pages {
		code, body, _ := c.get(path)
		if code != 200 || strings.Contains(body, email) || strings.Contains(body, name) || !strings.Contains(body, trailprivacy.Erased) || strings.Contains(body, "enc:v1:") {
			t.Errorf("%s after forget: %d: %.300s", path, code, body)
		}
	}
}

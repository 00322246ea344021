package trailui_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailseal"
)

// The detail page shows what the integrity wiring knows: sealed at leaf N
// and covered by a checkpoint, or pending.
func TestDetailIntegrityState(t *testing.T) {
	s := newSiteWith(t, nil, 500, func(st *trailsqlite.Store) *trailserver.Integrity {
		skey, vkey, err := trailseal.GenerateSigningKey("trail.test")
		if err != nil {
			t.Fatal(err)
		}
		signer, _, err := trailseal.ParseSigningKey(skey)
		if err != nil {
			t.Fatal(err)
		}
		sl, err := trailseal.NewSealer(st, &trailseal.Config{Signer: signer, Origin: "trail.test"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sl.SealAll(context.Background()); err != nil {
			t.Fatal(err)
		}
		return &trailserver.Integrity{Log: st, Origin: "trail.test", PublicKey: vkey}
	})
	leaf, err := s.store.LeafOf(context.Background(), s.acmeSub)
	if err != nil {
		t.Fatal(err)
	}
	late := trail.Event{Tenant: "acme", Actor: trail.Actor{Type: trail.ActorUser, ID: "9"}, Action: "project.create", OccurredAt: time.Now()}
	if err := late.Normalize(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.store.Append(context.Background(), []trail.Event{late}); err != nil {
		t.Fatal(err)
	}
	c := s.client()
	c.login("acme")
	code, body, _ := c.get("/ui/events/" + s.acmeSub.String())
	if code != http.StatusOK {
		t.Fatal(code)
	}
	section := body[strings.Index(body, `id="integrity"`):]
	section = section[:strings.Index(section, "</section>")]
	mustContain(t, section, "sealed", "Leaf <span class=\"mono\">"+strconv.FormatInt(leaf.Seq, 10)+"</span>", "log <span class=\"mono\">acme</span>", "Covered by checkpoint")
	_, body, _ = c.get("/ui/events/" + late.ID.String())
	mustContain(t, body, "pending", "not sealed yet")
}

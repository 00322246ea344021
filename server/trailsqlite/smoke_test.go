package trailsqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/trailhq/trail"
)

func TestSmoke(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "t.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := trail.Event{Tenant: "acme", Actor: trail.Actor{Type: "user", ID: "42"}, Action: "subscription.update",
		Description: "Changed subscription plan to pro", Changes: []trail.Change{trail.Changed("plan", "free", "pro")},
		Metadata: map[string]any{"a": 1.5, "b": []any{1, "x"}}}
	if err := ev.Normalize(); err != nil {
		t.Fatal(err)
	}
	res, err := s.Append(ctx, []trail.Event{ev, ev})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	p, err := s.Query(ctx, trail.Query{Tenant: "acme", Action: "subscription.*", Text: "PLAN", Field: "plan"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", p)
	c, err := s.Counts(ctx, trail.CountQuery{})
	t.Logf("%+v %v", c, err)
}
